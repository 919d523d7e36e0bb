//! One segment of a partition: `{base_offset:020}.log` with its sparse offset index
//! (`.index`: u32 relative offset, u32 file position) and time index (`.timeindex`: i64 max
//! timestamp so far, u32 relative offset). Index entries are written after the log bytes they
//! describe, so an index may lag the log after a crash but never lead it; recovery checks both.
//!
//! The active segment's file is allocated ahead of its data in steps of [`PREALLOCATE_BYTES`]
//! (`fallocate`, which reads back as zeros). Appends inside the allocation do not change the file
//! size, so the fdatasync behind acks=all writes data only and does not wait for a journal commit
//! of the size change. The valid length is therefore not the file length: recovery finds it by
//! scanning and treats zeros after the last batch as unused allocation. Sealing a segment, and
//! closing the log, trim the file to its data.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::codec::{self, BatchHeader, DecodeError, HEADER_LEN};
use crate::error::{LogError, Result};

/// How far ahead of its data the active segment's file is allocated.
pub const PREALLOCATE_BYTES: u64 = 8 << 20;

const INDEX_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

/// `all records before rel_offset have timestamps <= max_timestamp`; `rel_offset` starts at `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub rel_offset: u32,
    pub position: u32,
    pub max_timestamp: i64,
}

/// Whether a segment may end in an incomplete batch that recovery cuts off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailPolicy {
    /// The active segment: a crash can leave its last batch half-written.
    TruncateIncomplete,
    /// A sealed segment was fsynced before the next one was created: any damage is corruption.
    RefuseDamage,
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Valid bytes in the log file.
    pub size: u64,
    /// Length of the file on disk: `size` plus allocated, unused space (zeros).
    allocated: u64,
    pub next_offset: u64,
    /// Largest record timestamp in the segment, `i64::MIN` when empty.
    pub max_timestamp: i64,
    /// Wall-clock ms when the segment got its first record (for roll by age).
    pub first_append_ms: Option<i64>,
    pub index: Vec<IndexEntry>,
    index_file: File,
    time_index_file: File,
    persisted_entries: usize,
    bytes_since_entry: u64,
}

pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn sibling(path: &Path, ext: &str) -> PathBuf {
    path.with_extension(ext)
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(LogError::io(format!("cannot open {}", path.display())))
}

impl Segment {
    /// Creates an empty segment.
    pub fn create(dir: &Path, base_offset: u64) -> Result<Self> {
        let path = log_path(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(LogError::io(format!("cannot create segment {}", path.display())))?;
        let seg = Self::with_files(path, base_offset, file)?;
        seg.index_file.set_len(0).map_err(LogError::io("truncate index"))?;
        seg.time_index_file.set_len(0).map_err(LogError::io("truncate time index"))?;
        Ok(seg)
    }

    /// An empty in-memory view of a segment over its log file, with its index files opened.
    fn with_files(path: PathBuf, base_offset: u64, file: File) -> Result<Self> {
        let index_file = open_rw(&sibling(&path, "index"))?;
        let time_index_file = open_rw(&sibling(&path, "timeindex"))?;
        Ok(Self {
            base_offset,
            path,
            file: Arc::new(file),
            size: 0,
            allocated: 0,
            next_offset: base_offset,
            max_timestamp: i64::MIN,
            first_append_ms: None,
            index: Vec::new(),
            index_file,
            time_index_file,
            persisted_entries: 0,
            bytes_since_entry: 0,
        })
    }

    /// Opens an existing segment, validating it as `policy` says, and repairs its indexes.
    pub fn open(path: PathBuf, base_offset: u64, policy: TailPolicy, index_interval: u32) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(LogError::io(format!("cannot open segment {}", path.display())))?;
        let file_len = file.metadata().map_err(LogError::io(format!("stat {}", path.display())))?.len();
        let mut seg = Self::with_files(path, base_offset, file)?;
        seg.size = file_len;
        let loaded = seg.load_index(file_len);
        // A stored index is trusted only if its entries are ordered, inside the file, and its last
        // entry points at a batch boundary with the offset it claims. Anything else (missing file,
        // torn entry, garbage after a crash) means: rebuild it from the log, which is the truth.
        let trusted = match loaded {
            Some(mut entries) => {
                // Entries at the end of the data point into the unused allocation (zeros) after a
                // crash: start from the last entry before them, so only the tail is scanned, not
                // the whole segment. The dropped entries are re-created by the scan.
                let stored = entries.len();
                let header_of_zeros = |pos: u64| {
                    let end = pos + HEADER_LEN as u64;
                    end <= file_len && seg.is_zero(pos, end).unwrap_or(false)
                };
                while entries.last().is_some_and(|e| header_of_zeros(e.position as u64)) {
                    entries.pop();
                }
                if entries.len() < stored {
                    seg.truncate_index_files(entries.len())?;
                }
                if seg.entry_is_batch_start(entries.last()) { entries } else { Vec::new() }
            }
            None => Vec::new(),
        };
        let rebuilt = trusted.is_empty();
        seg.index = trusted;
        let (start_pos, start_offset) = match seg.index.last() {
            Some(e) => (e.position as u64, base_offset + e.rel_offset as u64),
            None => (0, base_offset),
        };
        seg.max_timestamp = seg.index.last().map_or(i64::MIN, |e| e.max_timestamp);
        seg.persisted_entries = if rebuilt { 0 } else { seg.index.len() };
        seg.scan_from(start_pos, start_offset, file_len, policy, index_interval)?;
        seg.allocated = seg.size;
        if rebuilt {
            seg.rewrite_index_files()?;
        } else {
            seg.persist_index()?;
        }
        Ok(seg)
    }

    /// Reads the index files; `None` if they are inconsistent with each other or the log.
    fn load_index(&self, file_len: u64) -> Option<Vec<IndexEntry>> {
        let read_all = |f: &File| -> Option<Vec<u8>> {
            let len = f.metadata().ok()?.len() as usize;
            let mut buf = vec![0u8; len];
            f.read_exact_at(&mut buf, 0).ok()?;
            Some(buf)
        };
        let idx = read_all(&self.index_file)?;
        let tix = read_all(&self.time_index_file)?;
        // A torn trailing entry (crash mid-write) is ignored: the scan re-creates it.
        let n = (idx.len() / INDEX_ENTRY).min(tix.len() / TIME_ENTRY);
        let mut entries = Vec::with_capacity(n);
        let mut prev: Option<IndexEntry> = None;
        for i in 0..n {
            let o = &idx[i * INDEX_ENTRY..];
            let t = &tix[i * TIME_ENTRY..];
            let e = IndexEntry {
                rel_offset: u32::from_le_bytes(o[0..4].try_into().ok()?),
                position: u32::from_le_bytes(o[4..8].try_into().ok()?),
                max_timestamp: i64::from_le_bytes(t[0..8].try_into().ok()?),
            };
            let t_rel = u32::from_le_bytes(t[8..12].try_into().ok()?);
            let ordered = prev.is_none_or(|p| e.rel_offset > p.rel_offset && e.position > p.position);
            if t_rel != e.rel_offset || !ordered || e.position as u64 > file_len {
                return None;
            }
            prev = Some(e);
            entries.push(e);
        }
        Some(entries)
    }

    /// Keeps the first `entries` entries of both index files.
    fn truncate_index_files(&mut self, entries: usize) -> Result<()> {
        self.index_file.set_len((entries * INDEX_ENTRY) as u64).map_err(LogError::io("truncate index"))?;
        self.time_index_file.set_len((entries * TIME_ENTRY) as u64).map_err(LogError::io("truncate time index"))
    }

    fn entry_is_batch_start(&self, entry: Option<&IndexEntry>) -> bool {
        let Some(e) = entry else { return true };
        if e.position as u64 == self.size {
            return true; // points at the end: checked by the scan (which finds no batch there)
        }
        let mut hdr = [0u8; HEADER_LEN];
        if self.file.read_exact_at(&mut hdr, e.position as u64).is_err() {
            return false;
        }
        matches!(BatchHeader::parse(&hdr), Ok(h) if h.base_offset == self.base_offset + e.rel_offset as u64)
    }

    /// Walks batches from `pos` to the end of the file, verifying each, extending the in-memory
    /// index, and deciding what to do with a bad tail according to `policy`.
    fn scan_from(
        &mut self,
        mut pos: u64,
        mut expected: u64,
        file_len: u64,
        policy: TailPolicy,
        interval: u32,
    ) -> Result<()> {
        const CHUNK: usize = 4 << 20;
        let mut buf = BytesMut::new();
        let mut buf_start = pos;
        loop {
            if pos >= file_len {
                break;
            }
            let rel = (pos - buf_start) as usize;
            // Refill when the header or the whole batch is not in the buffer.
            let need = match BatchHeader::parse(&buf[rel.min(buf.len())..]) {
                Ok(h) if rel + h.total_len() <= buf.len() => None,
                Ok(h) => Some(h.total_len().max(CHUNK)),
                Err(_) if buf.len() - rel.min(buf.len()) >= HEADER_LEN => None, // genuinely bad header
                Err(_) => Some(CHUNK),
            };
            if let Some(want) = need {
                let n = (want as u64).min(file_len - pos) as usize;
                buf.clear();
                buf.resize(n, 0);
                self.file
                    .read_exact_at(&mut buf, pos)
                    .map_err(LogError::io(format!("read {}", self.path.display())))?;
                buf_start = pos;
            }
            let rel = (pos - buf_start) as usize;
            let rest = &buf[rel..];
            let outcome = BatchHeader::parse(rest).and_then(|h| {
                codec::verify(&h, rest)?;
                if h.base_offset != expected {
                    return Err(DecodeError::BadRecord { index: 0, reason: "batch offset out of sequence" });
                }
                Ok(h)
            });
            match outcome {
                Ok(h) => {
                    let len = h.total_len() as u64;
                    self.note_batch(pos, len, h.next_offset(), h.max_timestamp, interval);
                    expected = h.next_offset();
                    pos += len;
                }
                Err(e) => {
                    let remaining = file_len - pos;
                    let zeros_from = |from: u64| self.is_zero(from.min(file_len), file_len);
                    // Allocated space that was never written (preallocation, or a file extended
                    // but not written before a power loss) reads as zeros up to the end.
                    if zeros_from(pos)? {
                        // Sealed segments are trimmed when sealed; a crash can come before the trim
                        // reaches the disk. Zeros hold no records, and the chain check in
                        // `Partition::open` still refuses a sealed segment that ends early.
                        tracing::debug!(file = %self.path.display(), position = pos, "trimming unused allocation");
                        self.trim_to(pos)?;
                        break;
                    }
                    let incomplete = match BatchHeader::parse(rest) {
                        // The header is cut short: the writer was stopped mid-write.
                        Err(DecodeError::Incomplete { .. }) => true,
                        // The batch it announces runs past the end of the file, or nothing but
                        // unwritten allocation follows it: the writer was stopped mid-batch.
                        Ok(h) => h.total_len() as u64 > remaining || zeros_from(pos + h.total_len() as u64)?,
                        Err(_) => false,
                    };
                    if incomplete && policy == TailPolicy::TruncateIncomplete {
                        // Only the final batch can be torn: nothing after it was ever written, and a
                        // batch that was not written whole was never acknowledged at acks=all.
                        tracing::warn!(file = %self.path.display(), position = pos, reason = %e,
                            "truncating an incomplete batch at the end of the active segment");
                        self.trim_to(pos)?;
                        break;
                    }
                    // Damage followed by more data, or inside a sealed segment: this is not a torn
                    // write. Refuse rather than silently dropping records that may have been acked.
                    return Err(LogError::Corrupt { file: self.path.clone(), position: pos, reason: e.to_string() });
                }
            }
        }
        self.size = pos;
        self.next_offset = expected;
        Ok(())
    }

    /// Whether the file holds only zero bytes in `from..to`.
    fn is_zero(&self, from: u64, to: u64) -> Result<bool> {
        let mut buf = vec![0u8; (1 << 20).min((to - from) as usize)];
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(buf.len());
            self.file
                .read_exact_at(&mut buf[..n], at)
                .map_err(LogError::io(format!("read {}", self.path.display())))?;
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }

    /// Cuts the file at `len` and makes the new length durable.
    fn trim_to(&mut self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(LogError::io(format!("truncate {}", self.path.display())))?;
        self.file.sync_all().map_err(LogError::io(format!("fsync {}", self.path.display())))?;
        self.allocated = len;
        Ok(())
    }

    /// Gives back the allocation beyond the data (when the segment is sealed or the log closed).
    /// The new length reaches the disk with the next fsync of the file.
    pub fn release_allocation(&mut self) -> Result<()> {
        if self.allocated > self.size {
            self.file.set_len(self.size).map_err(LogError::io(format!("truncate {}", self.path.display())))?;
            self.allocated = self.size;
        }
        Ok(())
    }

    /// Records that a batch of `len` bytes now ends at `pos + len`.
    fn note_batch(&mut self, pos: u64, len: u64, next_offset: u64, max_ts: i64, interval: u32) {
        self.max_timestamp = self.max_timestamp.max(max_ts);
        self.bytes_since_entry += len;
        if self.bytes_since_entry >= interval as u64 {
            self.bytes_since_entry = 0;
            self.index.push(IndexEntry {
                rel_offset: (next_offset - self.base_offset) as u32,
                position: (pos + len) as u32,
                max_timestamp: self.max_timestamp,
            });
        }
    }

    /// Appends one encoded batch (base offset already set) at the end of the segment.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader, now_ms: i64, interval: u32) -> Result<()> {
        let pos = self.size;
        let end = pos + batch.len() as u64;
        if end > self.allocated {
            let want = end.div_ceil(PREALLOCATE_BYTES) * PREALLOCATE_BYTES;
            fs4::FileExt::allocate(&*self.file, want)
                .map_err(LogError::io(format!("allocate space for {}", self.path.display())))?;
            self.allocated = want;
        }
        self.file.write_all_at(batch, pos).map_err(LogError::io(format!("append to {}", self.path.display())))?;
        self.size += batch.len() as u64;
        self.next_offset = header.next_offset();
        self.first_append_ms.get_or_insert(now_ms);
        self.note_batch(pos, batch.len() as u64, header.next_offset(), header.max_timestamp, interval);
        Ok(())
    }

    /// Writes index entries not yet on disk.
    pub fn persist_index(&mut self) -> Result<()> {
        let new = &self.index[self.persisted_entries..];
        if new.is_empty() {
            return Ok(());
        }
        let mut o = Vec::with_capacity(new.len() * INDEX_ENTRY);
        let mut t = Vec::with_capacity(new.len() * TIME_ENTRY);
        for e in new {
            o.extend_from_slice(&e.rel_offset.to_le_bytes());
            o.extend_from_slice(&e.position.to_le_bytes());
            t.extend_from_slice(&e.max_timestamp.to_le_bytes());
            t.extend_from_slice(&e.rel_offset.to_le_bytes());
        }
        let at = self.persisted_entries as u64;
        self.index_file.write_all_at(&o, at * INDEX_ENTRY as u64).map_err(LogError::io("write offset index"))?;
        self.time_index_file.write_all_at(&t, at * TIME_ENTRY as u64).map_err(LogError::io("write time index"))?;
        self.persisted_entries = self.index.len();
        Ok(())
    }

    fn rewrite_index_files(&mut self) -> Result<()> {
        self.index_file.set_len(0).map_err(LogError::io("truncate index"))?;
        self.time_index_file.set_len(0).map_err(LogError::io("truncate time index"))?;
        self.persisted_entries = 0;
        self.persist_index()
    }

    /// Flushes the log and index files to stable storage, the log file's length included.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_all().map_err(LogError::io(format!("fsync {}", self.path.display())))?;
        self.index_file.sync_data().map_err(LogError::io("fsync index"))?;
        self.time_index_file.sync_data().map_err(LogError::io("fsync time index"))
    }

    /// The file position to start reading at to find `offset` (the last index entry at or before it).
    pub fn position_for(&self, offset: u64) -> u64 {
        let rel = offset.saturating_sub(self.base_offset);
        let i = self.index.partition_point(|e| e.rel_offset as u64 <= rel);
        if i == 0 { 0 } else { self.index[i - 1].position as u64 }
    }

    /// The file position of the first batch that may hold a record at or after `timestamp`.
    pub fn position_for_time(&self, timestamp: i64) -> u64 {
        let i = self.index.partition_point(|e| e.max_timestamp < timestamp);
        if i == 0 { 0 } else { self.index[i - 1].position as u64 }
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) {
        for p in [self.path.clone(), sibling(&self.path, "index"), sibling(&self.path, "timeindex")] {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::warn!(file = %p.display(), error = %e, "could not delete segment file");
            }
        }
    }
}

/// Reads whole batches from `file` starting at `pos`, stopping at `limit` or after about
/// `max_bytes` (at least one batch). Returns the bytes and the position after them.
pub fn read_batches(file: &File, pos: u64, limit: u64, max_bytes: usize) -> std::io::Result<(Bytes, u64)> {
    if pos >= limit {
        return Ok((Bytes::new(), pos));
    }
    let want = (max_bytes as u64).min(limit - pos).max(HEADER_LEN as u64).min(limit - pos) as usize;
    let mut buf = BytesMut::zeroed(want);
    file.read_exact_at(&mut buf, pos)?;
    // Keep only whole batches; if the first batch is larger than what was read, read it whole.
    let mut end = 0usize;
    while let Ok(h) = BatchHeader::parse(&buf[end..]) {
        if end + h.total_len() > buf.len() {
            if end == 0 && pos + h.total_len() as u64 <= limit {
                let mut whole = BytesMut::zeroed(h.total_len());
                file.read_exact_at(&mut whole, pos)?;
                return Ok((whole.freeze(), pos + h.total_len() as u64));
            }
            break;
        }
        end += h.total_len();
    }
    buf.truncate(end);
    Ok((buf.freeze(), pos + end as u64))
}
