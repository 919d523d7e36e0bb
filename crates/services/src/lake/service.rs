//! The lake service: consumer group `eventline-lake` on every topic (dead-letter ones included),
//! writing Parquet files (see [`super::files`]) and, when configured, the same rows to a
//! PostgreSQL warehouse (see [`super::warehouse`]).
//!
//! Records are deferred in memory per partition and written when a buffer reaches
//! `max_file_records` records or `max_file_bytes` bytes, or the oldest is `max_file_age` old
//! (default 60 s: data is queryable within a minute); then, and only then, their offsets are
//! committed. On assignment each partition seeks to the offset after its highest complete file —
//! the files, not the committed offsets, are the truth — so a SIGKILL at any moment leaves every
//! record in the lake exactly once after a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventline_log::{EventLog, LogError, OffsetReset, Record};
use eventline_pipeline::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Outcome, RuntimeError};
use tokio::sync::watch;

use super::files::{self, date_of};
use super::layout::Row;
use super::warehouse::Warehouse;

/// The lake service's consumer group.
pub const LAKE_GROUP: &str = "eventline-lake";

/// When a buffer becomes a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roll {
    pub max_records: usize,
    pub max_bytes: usize,
    pub max_age: Duration,
}

impl Default for Roll {
    fn default() -> Self {
        Self { max_records: 100_000, max_bytes: 64 << 20, max_age: Duration::from_secs(60) }
    }
}

/// What the lake has written.
#[derive(Debug, Default)]
pub struct LakeCounters {
    pub records: std::sync::atomic::AtomicU64,
    pub files: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct LakeService {
    log: Arc<dyn EventLog>,
    root: PathBuf,
    roll: Roll,
    warehouse: Option<Arc<Warehouse>>,
    group: String,
    counters: Arc<LakeCounters>,
}

impl std::fmt::Debug for LakeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeService").field("root", &self.root).field("group", &self.group).finish()
    }
}

/// A partition's buffer: (topic, partition).
type BufferKey = (Arc<str>, u32);

#[derive(Default)]
struct Buffer {
    rows: Vec<Row>,
    bytes: usize,
    since: Option<Instant>,
}

struct Writer {
    log: Arc<dyn EventLog>,
    root: PathBuf,
    roll: Roll,
    warehouse: Option<Arc<Warehouse>>,
    buffers: BTreeMap<BufferKey, Buffer>,
    /// Highest offset taken per partition (shared with `sync`'s progress check).
    seen: Arc<Mutex<HashMap<(String, u32), u64>>>,
    counters: Arc<LakeCounters>,
}

impl Writer {
    fn due(&self) -> bool {
        self.buffers.values().any(|b| {
            b.rows.len() >= self.roll.max_records
                || b.bytes >= self.roll.max_bytes
                || b.since.is_some_and(|t| t.elapsed() >= self.roll.max_age)
        })
    }

    /// Writes every buffer: warehouse rows first (idempotent), then the files. The buffers are
    /// cleared only when every file is in place; after a failure they are kept, and the next
    /// attempt writes the same files again (same rows, same names: a rename replaces a file
    /// written before the failure with an identical one).
    async fn write_all(&mut self) -> Result<(), String> {
        // Runs of one partition and date, in offset order: (buffer key, date, rows range).
        let mut runs: Vec<(BufferKey, String, std::ops::Range<usize>)> = Vec::new();
        for (key, buffer) in &self.buffers {
            let mut start = 0;
            for i in 1..=buffer.rows.len() {
                let cut = i == buffer.rows.len()
                    || date_of(buffer.rows[i].event_time()) != date_of(buffer.rows[start].event_time());
                if cut {
                    runs.push((key.clone(), date_of(buffer.rows[start].event_time()), start..i));
                    start = i;
                }
            }
        }
        if runs.is_empty() {
            return Ok(());
        }
        if let Some(w) = &self.warehouse {
            for (key, _, range) in &runs {
                w.insert(&key.0, &self.buffers[key].rows[range.clone()]).await?;
            }
        }
        let root = self.root.clone();
        let buffers = std::mem::take(&mut self.buffers);
        let (buffers, written) = tokio::task::spawn_blocking(move || {
            let mut records = 0;
            let mut result = Ok(());
            for (key, date, range) in &runs {
                let refs: Vec<&Row> = buffers[key].rows[range.clone()].iter().collect();
                if let Err(e) = files::write(&root, &key.0, date, &refs) {
                    result = Err(e);
                    break;
                }
                records += range.len();
            }
            (buffers, result.map(|()| (records, runs.len())))
        })
        .await
        .map_err(|e| e.to_string())?;
        let (records, n_files) = match written {
            Ok(w) => w,
            Err(e) => {
                self.buffers = buffers;
                return Err(e);
            }
        };
        self.counters.records.fetch_add(records as u64, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("eventline_lake_records_total").increment(records as u64);
        metrics::counter!("eventline_lake_files_total").increment(n_files as u64);
        self.counters.files.fetch_add(n_files as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl Handler for Writer {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for r in records {
            let b = self.buffers.entry((r.topic.clone(), r.partition)).or_default();
            if b.rows.last().is_some_and(|last| r.offset <= last.offset) {
                continue;
            }
            b.bytes += r.value.as_ref().map_or(0, |v| v.len()) + 64;
            b.since.get_or_insert_with(Instant::now);
            b.rows.push(Row::of(&r.topic, r));
            let s = seen.entry((r.topic.to_string(), r.partition)).or_insert(r.offset);
            *s = (*s).max(r.offset);
        }
        Ok(vec![Outcome::Deferred; records.len()])
    }

    async fn flush(&mut self, force: bool) -> Result<bool, HandlerError> {
        if self.buffers.is_empty() {
            return Ok(true);
        }
        if !force && !self.due() {
            return Ok(false);
        }
        self.write_all().await.map_err(HandlerError::new)?;
        Ok(true)
    }

    async fn on_assign(&mut self, partitions: &[(String, u32)]) -> Result<Vec<(String, u32, u64)>, HandlerError> {
        let mut by_topic: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
        let mut seeks = Vec::new();
        for (topic, partition) in partitions {
            if !by_topic.contains_key(topic) {
                let root = self.root.clone();
                let t = topic.clone();
                let found = tokio::task::spawn_blocking(move || files::scan(&root, &t))
                    .await
                    .map_err(HandlerError::new)?
                    .map_err(HandlerError::new)?;
                by_topic.insert(topic.clone(), files::resume_points(&found));
            }
            let at = match by_topic[topic].get(partition) {
                Some(next) => *next,
                // Nothing in the lake yet: from the oldest record the log holds.
                None => self.log.watermarks(topic, *partition).await.map_err(HandlerError::new)?.0,
            };
            seeks.push((topic.clone(), *partition, at));
        }
        Ok(seeks)
    }

    async fn on_revoke(&mut self, partitions: &[(String, u32)]) {
        for (t, p) in partitions {
            self.buffers.retain(|(bt, bp), _| !(&**bt == t.as_str() && bp == p));
        }
    }
}

impl LakeService {
    pub fn new(log: Arc<dyn EventLog>, root: PathBuf, roll: Roll, warehouse: Option<Arc<Warehouse>>) -> Self {
        Self { log, root, roll, warehouse, group: LAKE_GROUP.to_owned(), counters: Arc::default() }
    }

    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    fn log_error(&self, source: LogError) -> RuntimeError {
        RuntimeError::Log { group: self.group.clone(), source }
    }

    pub fn counters(&self) -> Arc<LakeCounters> {
        self.counters.clone()
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// The topics the lake keeps: every topic the log has when the lake starts, dead-letter
    /// topics included (a topic created later is picked up at the next start).
    pub async fn topics(&self) -> Result<Vec<String>, LogError> {
        Ok(self.log.list_topics().await?.into_iter().map(|t| t.spec.name).collect())
    }

    fn runtime(&self, topics: &[String]) -> ConsumerRuntime {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let mut config = ConsumerConfig::new(self.group.clone(), &names, OffsetReset::Earliest);
        config.batch = 5000;
        ConsumerRuntime::new(self.log.clone(), config)
    }

    fn writer(&self, seen: Arc<Mutex<HashMap<(String, u32), u64>>>) -> Writer {
        Writer {
            log: self.log.clone(),
            root: self.root.clone(),
            roll: self.roll,
            warehouse: self.warehouse.clone(),
            buffers: BTreeMap::new(),
            seen,
            counters: self.counters.clone(),
        }
    }

    /// Keeps the lake in step with the log until `stop` turns true (then writes what it holds).
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        let topics = self.topics().await.map_err(|e| self.log_error(e))?;
        tracing::info!(group = %self.group, root = %self.root.display(), topics = topics.len(), "lake consuming");
        self.runtime(&topics).run(self.writer(Arc::default()), stop).await.map(|_| ())
    }

    /// Catches up to the end every topic had when it started, writes, commits and returns.
    pub async fn sync(&self) -> Result<u64, RuntimeError> {
        let topics = self.topics().await.map_err(|e| self.log_error(e))?;
        let mut ends = Vec::new();
        for t in &topics {
            let d = self.log.describe_topic(t).await.map_err(|e| self.log_error(e))?;
            for p in d.partitions {
                if p.end_offset > p.start_offset {
                    ends.push((t.clone(), p.partition, p.end_offset));
                }
            }
        }
        let seen: Arc<Mutex<HashMap<(String, u32), u64>>> = Arc::default();
        let (stop, stopped) = watch::channel(false);
        let runtime = self.runtime(&topics);
        let writer = self.writer(seen.clone());
        let root = self.root.clone();
        let monitor = async {
            // The resume points say what the lake already holds.
            let mut held: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
            for t in &topics {
                let (root, t2) = (root.clone(), t.clone());
                let found =
                    tokio::task::spawn_blocking(move || files::scan(&root, &t2)).await.ok().and_then(Result::ok);
                held.insert(t.clone(), found.map(|f| files::resume_points(&f)).unwrap_or_default());
            }
            loop {
                let done = {
                    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    ends.iter().all(|(t, p, end)| {
                        held.get(t).and_then(|h| h.get(p)).is_some_and(|n| n >= end)
                            || seen.get(&(t.clone(), *p)).is_some_and(|o| o + 1 >= *end)
                    })
                };
                if done {
                    let _ = stop.send(true);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let (result, ()) = tokio::join!(runtime.run(writer, stopped), monitor);
        result?;
        Ok(self.counters.records.load(std::sync::atomic::Ordering::Relaxed))
    }
}
