//! Per-batch compression with the five codecs of the contract.

use std::io::{Read, Write};

use eventline_model::topics::Compression;

use super::DecodeError;

/// The codec's id in the batch header's attribute bits.
pub fn codec_id(c: Compression) -> u8 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

pub fn codec_from_id(id: u8) -> Option<Compression> {
    Some(match id {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => return None,
    })
}

/// Compresses `raw` into `out` (appending).
pub fn compress(c: Compression, raw: &[u8], out: &mut Vec<u8>) {
    match c {
        Compression::None => out.extend_from_slice(raw),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            enc.write_all(raw).expect("writing to a Vec cannot fail");
            enc.finish().expect("writing to a Vec cannot fail");
        }
        Compression::Snappy => {
            let start = out.len();
            out.resize(start + snap::raw::max_compress_len(raw.len()), 0);
            let n = snap::raw::Encoder::new().compress(raw, &mut out[start..]).expect("buffer is max_compress_len");
            out.truncate(start + n);
        }
        Compression::Lz4 => out.extend_from_slice(&lz4_flex::compress_prepend_size(raw)),
        Compression::Zstd => {
            let compressed = zstd::bulk::compress(raw, 1).expect("zstd compression of memory cannot fail");
            out.extend_from_slice(&compressed);
        }
    }
}

/// Decompresses a payload, refusing to grow beyond `limit` bytes (a corrupt or hostile length
/// must not make the reader allocate gigabytes).
pub fn decompress(c: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let bad = |what: &str| DecodeError::Compression(format!("{c}: {what}"));
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_limited(flate2::read::GzDecoder::new(data), limit).map_err(|e| bad(&e)),
        Compression::Snappy => {
            let len = snap::raw::decompress_len(data).map_err(|e| bad(&e.to_string()))?;
            if len > limit {
                return Err(bad("payload larger than the batch limit"));
            }
            snap::raw::Decoder::new().decompress_vec(data).map_err(|e| bad(&e.to_string()))
        }
        Compression::Lz4 => {
            if data.len() < 4 {
                return Err(bad("missing size prefix"));
            }
            let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
            if len > limit {
                return Err(bad("payload larger than the batch limit"));
            }
            lz4_flex::decompress_size_prepended(data).map_err(|e| bad(&e.to_string()))
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| bad(&e.to_string()))?;
            read_limited(decoder, limit).map_err(|e| bad(&e))
        }
    }
}

/// Reads a streaming decoder to the end, refusing output beyond `limit` bytes.
fn read_limited(reader: impl Read, limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out).map_err(|e| e.to_string())?;
    if out.len() > limit {
        return Err("payload larger than the batch limit".into());
    }
    Ok(out)
}
