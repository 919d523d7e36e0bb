//! One topic-partition: an ordered chain of segments, the last one active.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::options::EmbeddedOptions;
use super::segment::{self, Segment, TailPolicy};
use crate::codec::{self, BatchHeader};
use crate::error::{LogError, Result};
use crate::record::Record;

/// How far the partition is known to be on stable storage, or why it cannot get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    UpTo(u64),
    Failed(String),
}

#[derive(Debug)]
struct State {
    segments: Vec<Segment>,
    /// Sealed segments whose data the flusher has not fsynced yet.
    unsynced_sealed: Vec<Arc<File>>,
    /// A segment file was created or deleted since the directory was last fsynced.
    dir_dirty: bool,
}

#[derive(Debug)]
pub struct Partition {
    pub topic: Arc<str>,
    pub id: u32,
    pub dir: PathBuf,
    state: RwLock<State>,
    durable: watch::Sender<Durability>,
    /// Woken when the durable offset advances (consumers of acks=all topics wait for it).
    on_durable: Arc<tokio::sync::Notify>,
    /// Where the partition is in the flusher's cycle (see `flusher::FlushState`).
    pub(super) flush_state: AtomicU8,
}

/// The first read of a fetch: 64 KiB, doubled on every further read of the same fetch.
const FIRST_READ_WINDOW: usize = 64 << 10;

fn parse_base(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

impl Partition {
    /// Opens (creating if empty) the partition in `dir`, recovering it after any crash.
    pub fn open(
        topic: Arc<str>,
        id: u32,
        dir: PathBuf,
        opts: &EmbeddedOptions,
        on_durable: Arc<tokio::sync::Notify>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(LogError::io(format!("create {}", dir.display())))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(LogError::io(format!("list {}", dir.display())))? {
            let path = entry.map_err(LogError::io(format!("list {}", dir.display())))?.path();
            match parse_base(&path) {
                Some(base) => bases.push((base, path)),
                None => {
                    // Index files without their log (the log was deleted by retention and the crash
                    // came before the index went too) are leftovers: remove them.
                    let ext = path.extension().and_then(|e| e.to_str());
                    if matches!(ext, Some("index" | "timeindex")) && !path.with_extension("log").exists() {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        bases.sort();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let count = bases.len();
        for (i, (base, path)) in bases.into_iter().enumerate() {
            let policy = if i + 1 == count { TailPolicy::TruncateIncomplete } else { TailPolicy::RefuseDamage };
            let seg = Segment::open(path, base, policy, opts.index_interval_bytes)?;
            if let Some(prev) = segments.last() {
                // The chain must be contiguous: a missing segment file or a sealed segment that
                // ends early would make offsets silently disappear.
                if prev.next_offset != seg.base_offset {
                    return Err(LogError::Hole {
                        file: prev.path.clone(),
                        end: prev.next_offset,
                        next_file: seg.path.clone(),
                        next: seg.base_offset,
                    });
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0)?);
        }
        let end = segments.last().map_or(0, |s| s.next_offset);
        let (durable, _) = watch::channel(Durability::UpTo(end));
        Ok(Self {
            topic,
            id,
            dir,
            state: RwLock::new(State { segments, unsynced_sealed: Vec::new(), dir_dirty: true }),
            durable,
            on_durable,
            flush_state: AtomicU8::new(0),
        })
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Start and end offsets.
    pub fn watermarks(&self) -> (u64, u64) {
        let s = self.read_state();
        (s.segments[0].base_offset, s.segments.last().map_or(0, |x| x.next_offset))
    }

    pub fn size_bytes(&self) -> u64 {
        self.read_state().segments.iter().map(|s| s.size).sum()
    }

    /// Appends encoded batches (`batches` holds them back to back, `counts` their record counts),
    /// assigning offsets. Returns the base offset of each batch.
    pub fn append(&self, batches: &mut [u8], now_ms: i64, opts: &EmbeddedOptions) -> Result<Vec<u64>> {
        let mut s = self.write_state();
        let mut bases = Vec::new();
        let mut at = 0usize;
        while at < batches.len() {
            let mut header = BatchHeader::parse(&batches[at..]).expect("batches were encoded by this process");
            let len = header.total_len();
            let needs_roll = {
                let active = s.segments.last().expect("a partition always has an active segment");
                !active.is_empty()
                    && (active.size + len as u64 > opts.segment_bytes
                        || active.first_append_ms.is_some_and(|t| now_ms - t >= opts.segment_age.as_millis() as i64))
            };
            if needs_roll {
                self.roll(&mut s)?;
            }
            let active = s.segments.last_mut().expect("active segment");
            let base = active.next_offset;
            codec::set_base_offset(&mut batches[at..at + len], base);
            header.base_offset = base;
            active.append(&batches[at..at + len], &header, now_ms, opts.index_interval_bytes)?;
            bases.push(base);
            at += len;
        }
        s.segments.last_mut().expect("active segment").persist_index()?;
        Ok(bases)
    }

    /// Seals the active segment and starts a new one at the next offset.
    fn roll(&self, s: &mut State) -> Result<()> {
        let active = s.segments.last_mut().expect("active segment");
        active.persist_index()?;
        active.release_allocation()?;
        let next = active.next_offset;
        s.unsynced_sealed.push(active.file.clone());
        s.segments.push(Segment::create(&self.dir, next)?);
        s.dir_dirty = true;
        Ok(())
    }

    /// fsyncs everything written so far and publishes the durable offset. Called by the flusher.
    pub fn flush(&self) {
        // Snapshot under the lock, sync outside it so appends continue meanwhile.
        let (sealed, active_file, end, dir_dirty) = {
            let mut s = self.write_state();
            let active = s.segments.last().expect("active segment");
            let snapshot = (active.file.clone(), active.next_offset);
            let dir_dirty = std::mem::take(&mut s.dir_dirty);
            (std::mem::take(&mut s.unsynced_sealed), snapshot.0, snapshot.1, dir_dirty)
        };
        let result = (|| -> std::io::Result<()> {
            // fsync, not fdatasync: sealing trimmed the file's preallocated tail.
            for f in &sealed {
                f.sync_all()?;
            }
            active_file.sync_data()?;
            if dir_dirty {
                File::open(&self.dir)?.sync_all()?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                let advanced = self.durable.send_if_modified(|d| match d {
                    Durability::UpTo(old) if *old < end => {
                        *d = Durability::UpTo(end);
                        true
                    }
                    _ => false,
                });
                if advanced {
                    self.on_durable.notify_waiters();
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; acks=all producers will get an error");
                self.durable.send_replace(Durability::Failed(format!("fsync of {} failed: {e}", self.dir.display())));
            }
        }
    }

    /// Syncs the index files too (on close).
    pub fn sync_all(&self) -> Result<()> {
        let mut s = self.write_state();
        for seg in s.segments.iter_mut() {
            seg.persist_index()?;
            seg.release_allocation()?;
            seg.sync()?;
        }
        s.unsynced_sealed.clear();
        Ok(())
    }

    pub fn durability(&self) -> watch::Receiver<Durability> {
        self.durable.subscribe()
    }

    /// The offset below which every record is fsynced (the end, when an fsync failed: readers are
    /// not held back by a failure producers are told about).
    pub fn durable_end(&self) -> u64 {
        match &*self.durable.borrow() {
            Durability::UpTo(o) => *o,
            Durability::Failed(_) => self.watermarks().1,
        }
    }

    /// Reads records from `offset` on: up to `max_records`, about `max_bytes` of batches.
    pub fn read(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut offset = offset;
        while out.len() < max_records {
            let (file, pos, limit, path) = {
                let s = self.read_state();
                let start = s.segments[0].base_offset;
                let end = s.segments.last().map_or(0, |x| x.next_offset);
                if offset < start || offset > end {
                    return Err(LogError::OffsetOutOfRange {
                        topic: self.topic.to_string(),
                        partition: self.id,
                        offset,
                        start,
                        end,
                    });
                }
                if offset == end {
                    break;
                }
                let i = s.segments.partition_point(|x| x.base_offset <= offset) - 1;
                let seg = &s.segments[i];
                (seg.file.clone(), seg.position_for(offset), seg.size, seg.path.clone())
            };
            let before = out.len();
            self.read_segment(&file, &path, pos, limit, offset, max_records, max_bytes, &mut out)?;
            match out.last() {
                Some(last) if out.len() > before => offset = last.offset + 1,
                // Nothing at or after `offset` in this segment: its records were all below it, so
                // the next segment starts exactly at `offset` and the next round finds it.
                _ => {
                    let s = self.read_state();
                    let Some(next) = s.segments.iter().find(|x| x.base_offset > offset) else { break };
                    offset = next.base_offset;
                }
            }
            if out.len() >= max_records {
                break;
            }
        }
        out.truncate(max_records);
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_segment(
        &self,
        file: &File,
        path: &Path,
        mut pos: u64,
        limit: u64,
        offset: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Record>,
    ) -> Result<()> {
        let start_len = out.len();
        let mut read_bytes = 0usize;
        // Start with a small window and double it while more is wanted: a fetch of a few records
        // reads a few pages, not `max_bytes` (a batch larger than the window is still read whole).
        let mut window = FIRST_READ_WINDOW;
        while pos < limit && out.len() - start_len < max_records && read_bytes < max_bytes {
            let want = window.min(max_bytes - read_bytes).min(8 << 20);
            window = window.saturating_mul(2);
            let (buf, next) = segment::read_batches(file, pos, limit, want)
                .map_err(LogError::io(format!("read {}", path.display())))?;
            if buf.is_empty() {
                let mut hdr = [0u8; codec::HEADER_LEN];
                let reason = std::os::unix::fs::FileExt::read_exact_at(file, &mut hdr, pos)
                    .map_err(|e| e.to_string())
                    .and_then(|_| {
                        BatchHeader::parse(&hdr)
                            .map(|_| "batch larger than the segment".into())
                            .map_err(|e| e.to_string())
                    })
                    .unwrap_or_else(|e| e);
                return Err(LogError::Corrupt { file: path.to_owned(), position: pos, reason });
            }
            read_bytes += buf.len();
            let mut at = 0usize;
            while at < buf.len() {
                let h = BatchHeader::parse(&buf[at..]).expect("read_batches returns whole batches");
                let len = h.total_len();
                if h.next_offset() > offset {
                    let decode_err = |source| LogError::Decode {
                        topic: self.topic.to_string(),
                        partition: self.id,
                        offset: h.base_offset,
                        source,
                    };
                    codec::verify(&h, &buf[at..]).map_err(decode_err)?;
                    codec::decode_records(&h, buf.slice(at..at + len), &self.topic, self.id, offset, out)
                        .map_err(decode_err)?;
                }
                at += len;
            }
            pos = next;
        }
        Ok(())
    }

    /// The first offset with a timestamp at or after `ts`, or the end offset.
    pub fn offset_for_time(&self, ts: i64) -> Result<u64> {
        let (file, path, mut pos, limit) = {
            let s = self.read_state();
            match s.segments.iter().find(|x| x.max_timestamp >= ts) {
                None => return Ok(s.segments.last().map_or(0, |x| x.next_offset)),
                Some(seg) => (seg.file.clone(), seg.path.clone(), seg.position_for_time(ts), seg.size),
            }
        };
        while pos < limit {
            let (buf, next) = segment::read_batches(&file, pos, limit, 1 << 20)
                .map_err(LogError::io(format!("read {}", path.display())))?;
            if buf.is_empty() {
                break;
            }
            let mut at = 0;
            while at < buf.len() {
                let h = BatchHeader::parse(&buf[at..]).expect("whole batches");
                if h.max_timestamp >= ts {
                    let mut recs = Vec::new();
                    codec::decode_records(&h, buf.slice(at..at + h.total_len()), &self.topic, self.id, 0, &mut recs)
                        .map_err(|source| LogError::Decode {
                            topic: self.topic.to_string(),
                            partition: self.id,
                            offset: h.base_offset,
                            source,
                        })?;
                    if let Some(r) = recs.iter().find(|r| r.timestamp >= ts) {
                        return Ok(r.offset);
                    }
                }
                at += h.total_len();
            }
            pos = next;
        }
        Ok(self.watermarks().1)
    }

    /// Deletes whole segments that are older than `retention` or beyond `retention_bytes`.
    /// Returns how many segments were removed.
    pub fn enforce_retention(
        &self,
        now_ms: i64,
        retention: Option<Duration>,
        retention_bytes: Option<u64>,
    ) -> Result<usize> {
        let mut s = self.write_state();
        let cutoff = retention.map(|r| now_ms - r.as_millis() as i64);
        let expired = |seg: &Segment| cutoff.is_some_and(|c| !seg.is_empty() && seg.max_timestamp < c);
        // An active segment whose every record expired is rolled so it can go too.
        if s.segments.last().is_some_and(expired) {
            self.roll(&mut s)?;
        }
        let mut removed = Vec::new();
        let mut total: u64 = s.segments.iter().map(|x| x.size).sum();
        while s.segments.len() > 1 {
            let first = &s.segments[0];
            let over_size = retention_bytes.is_some_and(|cap| total - first.size >= cap && total > cap);
            if !(expired(first) || over_size) {
                break;
            }
            let seg = s.segments.remove(0);
            total -= seg.size;
            removed.push(seg);
        }
        if !removed.is_empty() {
            s.dir_dirty = true;
        }
        drop(s);
        for seg in &removed {
            tracing::info!(topic = %self.topic, partition = self.id, base_offset = seg.base_offset, "retention removed segment");
            seg.delete_files();
        }
        Ok(removed.len())
    }
}
