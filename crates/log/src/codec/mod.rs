//! The on-disk record batch format. Pure functions over bytes: no files, no clocks.
//!
//! A batch (all integers little-endian):
//!
//! ```text
//!  0  u64 base_offset      offset of the first record
//!  8  u32 batch_length     bytes after this field (so the batch is 12 + batch_length bytes)
//! 12  u32 crc32c           CRC-32C (Castagnoli) of every byte from offset 16 to the end
//! 16  u8  magic            format version, 1
//! 17  u8  attributes       bits 0-2: compression codec
//! 18  u16 reserved         0
//! 20  u32 record_count
//! 24  i64 base_timestamp   ms since the epoch (first record)
//! 32  i64 max_timestamp    largest record timestamp in the batch
//! 40  ... payload          the records, compressed as a whole when a codec is set
//! ```
//!
//! A record inside the payload:
//!
//! ```text
//! u32 length (of what follows) | i64 timestamp_delta | i32 key_len (-1 null) | key
//! | i32 value_len (-1 null) | value | u16 header_count | (u16 name_len | name | i32 len | value)*
//! ```
//!
//! The base offset sits outside the CRC so the writer can assign offsets after encoding, under
//! the partition lock, without recomputing the checksum.

pub mod compression;

use bytes::Bytes;
use eventline_model::topics::Compression;

use crate::record::{Header, ProduceRecord, Record};

pub const HEADER_LEN: usize = 40;
pub const MAGIC: u8 = 1;
/// The largest batch a reader accepts (compressed or not); guards allocations on corrupt input.
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// Why bytes are not a valid batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("need {needed} bytes, have {available}")]
    Incomplete { needed: usize, available: usize },
    #[error("batch length {0} is impossible")]
    BadLength(u32),
    #[error("unsupported batch format version {0}")]
    BadMagic(u8),
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("unknown compression codec id {0}")]
    BadCodec(u8),
    #[error("decompression failed: {0}")]
    Compression(String),
    #[error("record {index} is malformed: {reason}")]
    BadRecord { index: u32, reason: &'static str },
}

/// The fixed header of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    pub batch_length: u32,
    pub crc: u32,
    pub magic: u8,
    pub attributes: u8,
    pub record_count: u32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
}

impl BatchHeader {
    /// Total bytes of the batch on disk.
    pub fn total_len(&self) -> usize {
        12 + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.record_count.saturating_sub(1) as u64
    }

    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + self.record_count as u64
    }

    pub fn compression(&self) -> Result<Compression, DecodeError> {
        compression::codec_from_id(self.attributes & 0x07).ok_or(DecodeError::BadCodec(self.attributes & 0x07))
    }

    /// Parses the header at the start of `buf` and checks that the length is plausible.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Incomplete { needed: HEADER_LEN, available: buf.len() });
        }
        let h = BatchHeader {
            base_offset: u64_at(buf, 0),
            batch_length: u32_at(buf, 8),
            crc: u32_at(buf, 12),
            magic: buf[16],
            attributes: buf[17],
            record_count: u32_at(buf, 20),
            base_timestamp: i64_at(buf, 24),
            max_timestamp: i64_at(buf, 32),
        };
        let len = h.batch_length as usize;
        if !(HEADER_LEN - 12..=MAX_BATCH_BYTES).contains(&len) || h.record_count == 0 {
            return Err(DecodeError::BadLength(h.batch_length));
        }
        if h.magic != MAGIC {
            return Err(DecodeError::BadMagic(h.magic));
        }
        Ok(h)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The uncompressed size of one record in the payload.
pub fn record_size(r: &ProduceRecord) -> usize {
    4 + 8
        + 4
        + r.key.as_ref().map_or(0, |k| k.len())
        + 4
        + r.value.as_ref().map_or(0, |v| v.len())
        + 2
        + r.headers.iter().map(|h| 2 + h.key.len() + 4 + h.value.as_ref().map_or(0, |v| v.len())).sum::<usize>()
}

fn put_opt(out: &mut Vec<u8>, b: Option<&Bytes>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
}

/// Encodes `records` as one batch with base offset 0 (the writer patches it with
/// [`set_base_offset`]). `now_ms` stamps records that carry no timestamp. `scratch` is reused
/// between calls to avoid allocations on the hot path.
pub fn encode_batch<'a>(
    records: impl IntoIterator<Item = &'a ProduceRecord>,
    compression: Compression,
    now_ms: i64,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> u32 {
    let records = records.into_iter();
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    let raw: &mut Vec<u8> = if compression == Compression::None { out } else { scratch };
    if compression != Compression::None {
        raw.clear();
    }
    let mut count = 0u32;
    let mut base_ts = None;
    let mut max_ts = i64::MIN;
    for r in records {
        let ts = r.timestamp.unwrap_or(now_ms);
        let base = *base_ts.get_or_insert(ts);
        max_ts = max_ts.max(ts);
        let size = record_size(r) as u32 - 4;
        raw.extend_from_slice(&size.to_le_bytes());
        raw.extend_from_slice(&(ts.wrapping_sub(base)).to_le_bytes());
        put_opt(raw, r.key.as_ref());
        put_opt(raw, r.value.as_ref());
        raw.extend_from_slice(&(r.headers.len() as u16).to_le_bytes());
        for h in &r.headers {
            raw.extend_from_slice(&(h.key.len() as u16).to_le_bytes());
            raw.extend_from_slice(h.key.as_bytes());
            put_opt(raw, h.value.as_ref());
        }
        count += 1;
    }
    if compression != Compression::None {
        compression::compress(compression, scratch, out);
    }
    let total = out.len() - start;
    let hdr = &mut out[start..start + HEADER_LEN];
    hdr[8..12].copy_from_slice(&((total - 12) as u32).to_le_bytes());
    hdr[16] = MAGIC;
    hdr[17] = compression::codec_id(compression);
    hdr[20..24].copy_from_slice(&count.to_le_bytes());
    hdr[24..32].copy_from_slice(&base_ts.unwrap_or(now_ms).to_le_bytes());
    hdr[32..40].copy_from_slice(&(if count == 0 { now_ms } else { max_ts }).to_le_bytes());
    let crc = crc32c::crc32c(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
    count
}

/// Sets the base offset of the batch that starts at `batch[0]`.
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    batch[0..8].copy_from_slice(&base_offset.to_le_bytes());
}

/// Checks the CRC of a complete batch (`buf` holds exactly the batch or more).
pub fn verify(header: &BatchHeader, buf: &[u8]) -> Result<(), DecodeError> {
    let total = header.total_len();
    if buf.len() < total {
        return Err(DecodeError::Incomplete { needed: total, available: buf.len() });
    }
    let computed = crc32c::crc32c(&buf[16..total]);
    if computed != header.crc {
        return Err(DecodeError::Checksum { stored: header.crc, computed });
    }
    Ok(())
}

/// Decodes the records of one verified batch whose bytes are `batch` (exactly the batch), pushing
/// those at or after `min_offset`. Values and keys share `batch`'s buffer (no copies) unless the
/// batch is compressed.
pub fn decode_records(
    header: &BatchHeader,
    batch: Bytes,
    topic: &std::sync::Arc<str>,
    partition: u32,
    min_offset: u64,
    out: &mut Vec<Record>,
) -> Result<(), DecodeError> {
    let payload = batch.slice(HEADER_LEN..header.total_len());
    let payload = match header.compression()? {
        Compression::None => payload,
        c => Bytes::from(compression::decompress(c, &payload, MAX_BATCH_BYTES)?),
    };
    let p = &payload[..];
    let mut at = 0usize;
    for index in 0..header.record_count {
        let bad = |reason| DecodeError::BadRecord { index, reason };
        if p.len() < at + 4 {
            return Err(bad("truncated length"));
        }
        let len = u32_at(p, at) as usize;
        let rec_start = at + 4;
        let rec_end = rec_start.checked_add(len).filter(|&e| e <= p.len()).ok_or(bad("length beyond payload"))?;
        let offset = header.base_offset + index as u64;
        at = rec_end;
        if offset < min_offset {
            continue;
        }
        let mut cur = rec_start;
        let need = |cur: usize, n: usize| if cur + n <= rec_end { Ok(()) } else { Err(bad("field beyond record")) };
        need(cur, 8)?;
        let timestamp = header.base_timestamp.wrapping_add(i64_at(p, cur));
        cur += 8;
        let opt = |cur: &mut usize| -> Result<Option<Bytes>, DecodeError> {
            need(*cur, 4)?;
            let n = i32_at(p, *cur);
            *cur += 4;
            if n < 0 {
                return Ok(None);
            }
            let n = n as usize;
            need(*cur, n)?;
            let v = payload.slice(*cur..*cur + n);
            *cur += n;
            Ok(Some(v))
        };
        let key = opt(&mut cur)?;
        let value = opt(&mut cur)?;
        need(cur, 2)?;
        let hcount = u16_at(p, cur);
        cur += 2;
        let mut headers = Vec::with_capacity(hcount as usize);
        for _ in 0..hcount {
            need(cur, 2)?;
            let n = u16_at(p, cur) as usize;
            cur += 2;
            need(cur, n)?;
            let name = std::str::from_utf8(&p[cur..cur + n]).map_err(|_| bad("header name is not UTF-8"))?.to_owned();
            cur += n;
            let value = opt(&mut cur)?;
            headers.push(Header { key: name, value });
        }
        out.push(Record { topic: topic.clone(), partition, offset, timestamp, key, value, headers });
    }
    Ok(())
}

/// Decodes every batch in `buf` (a run of whole batches), verifying each CRC.
pub fn decode_all(buf: &[u8], topic: &str, partition: u32) -> Result<Vec<Record>, DecodeError> {
    let topic: std::sync::Arc<str> = topic.into();
    let buf = Bytes::copy_from_slice(buf);
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let h = BatchHeader::parse(&buf[at..])?;
        verify(&h, &buf[at..])?;
        decode_records(&h, buf.slice(at..at + h.total_len()), &topic, partition, 0, &mut out)?;
        at += h.total_len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
