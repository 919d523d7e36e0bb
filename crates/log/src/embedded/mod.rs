//! The embedded log: eventline's default backend. Everything lives under `<data-dir>/log/`:
//!
//! ```text
//! log/LOCK                                  pid of the process that owns the directory
//! log/<topic>/topic.json                    the topic's spec
//! log/<topic>/<partition>/{base:020}.log    segments, with .index and .timeindex beside them
//! log/__consumer_offsets/<group>.json       committed offsets
//! ```
//!
//! Acknowledgement levels: `acks=0` and `acks=1` return once the batch is written to the
//! operating system (it survives a crash of this process); `acks=all` returns once it is fsynced,
//! and concurrent producers share fsyncs (group commit).

mod consumer;
mod flusher;
mod groups;
mod lock;
mod offsets;
mod options;
mod partition;
mod segment;

pub use options::EmbeddedOptions;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use async_trait::async_trait;
use eventline_model::topics::{Acks, TopicSpec};

use self::consumer::EmbeddedConsumer;
use self::flusher::Flusher;
use self::groups::Coordinator;
use self::lock::DirLock;
use self::offsets::{OffsetStore, write_atomically};
use self::partition::{Durability, Partition};
use crate::codec;
use crate::error::{LogError, Result};
use crate::partitioner::Partitioner;
use crate::port::{
    EventLog, GroupConsumer, OffsetReset, PartitionInfo, PartitionLag, TopicDescription, validate_group,
};
use crate::record::{ProduceRecord, Record, RecordPosition};

const OFFSETS_DIR: &str = "__consumer_offsets";
const TOPIC_FILE: &str = "topic.json";

#[derive(Debug)]
struct Topic {
    spec: TopicSpec,
    partitions: Vec<Arc<Partition>>,
    partitioner: Partitioner,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    opts: EmbeddedOptions,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    flusher: Flusher,
    groups: Coordinator,
    offsets: OffsetStore,
    /// Woken on every append, every durable-offset advance and every group change.
    appended: Arc<tokio::sync::Notify>,
    fetch_max_bytes: usize,
    retention_stop: Arc<(Mutex<bool>, Condvar)>,
    _lock: DirLock,
}

/// The embedded, durable, partitioned log.
#[derive(Clone, Debug)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `root`, recovering every partition.
    pub fn open(root: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self> {
        opts.validate().map_err(LogError::InvalidTopic)?;
        let root = root.as_ref().to_owned();
        std::fs::create_dir_all(&root).map_err(LogError::io(format!("create {}", root.display())))?;
        let lock = DirLock::acquire(&root)?;
        let mut topics = BTreeMap::new();
        let appended = Arc::new(tokio::sync::Notify::new());
        for entry in std::fs::read_dir(&root).map_err(LogError::io(format!("list {}", root.display())))? {
            let entry = entry.map_err(LogError::io("list log"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".deleted-") || name.starts_with(".tmp-") {
                // An interrupted topic deletion or creation: finish or undo it.
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if !path.is_dir() || name.starts_with("__") || name.starts_with('.') {
                continue;
            }
            let topic = Self::open_topic(&path, &opts, &appended)?;
            topics.insert(topic.spec.name.clone(), Arc::new(topic));
        }
        let offsets = OffsetStore::open(root.join(OFFSETS_DIR))?;
        let inner = Arc::new(Inner {
            root,
            opts,
            topics: RwLock::new(topics),
            flusher: Flusher::start(),
            groups: Coordinator::default(),
            offsets,
            appended,
            fetch_max_bytes: 4 << 20,
            retention_stop: Arc::default(),
            _lock: lock,
        });
        let log = Self { inner };
        log.enforce_retention()?;
        log.start_retention_thread();
        Ok(log)
    }

    fn open_topic(path: &Path, opts: &EmbeddedOptions, notify: &Arc<tokio::sync::Notify>) -> Result<Topic> {
        let spec_path = path.join(TOPIC_FILE);
        let text =
            std::fs::read_to_string(&spec_path).map_err(LogError::io(format!("read {}", spec_path.display())))?;
        let spec: TopicSpec = serde_json::from_str(&text).map_err(|e| LogError::Corrupt {
            file: spec_path.clone(),
            position: 0,
            reason: format!("not a topic spec: {e}"),
        })?;
        let name: Arc<str> = spec.name.as_str().into();
        let partitions = (0..spec.partitions)
            .map(|p| Partition::open(name.clone(), p, path.join(p.to_string()), opts, notify.clone()).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Topic { spec, partitions, partitioner: Partitioner::default() })
    }

    fn start_retention_thread(&self) {
        let weak = Arc::downgrade(&self.inner);
        let stop = self.inner.retention_stop.clone();
        let every = self.inner.opts.retention_check_interval;
        let _ = std::thread::Builder::new().name("eventline-retention".into()).spawn(move || {
            let (lock, cv) = &*stop;
            loop {
                let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                let (guard, _) = cv.wait_timeout(guard, every).unwrap_or_else(|p| p.into_inner());
                if *guard {
                    return;
                }
                drop(guard);
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = (EmbeddedLog { inner }).enforce_retention() {
                    tracing::error!(error = %e, "retention failed");
                }
            }
        });
    }

    /// Deletes expired segments in every partition now. Returns how many were removed.
    pub fn enforce_retention(&self) -> Result<usize> {
        let now = now_ms();
        let mut removed = 0;
        for topic in self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).values() {
            for p in &topic.partitions {
                removed += p.enforce_retention(now, topic.spec.retention, topic.spec.retention_bytes)?;
            }
        }
        Ok(removed)
    }

    /// Makes everything written so far durable (data and indexes of every partition).
    pub fn sync_all(&self) -> Result<()> {
        for topic in self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).values() {
            for p in &topic.partitions {
                p.sync_all()?;
            }
        }
        Ok(())
    }

    /// Flushes everything to disk and stops the background threads. Further use is an error.
    pub fn close(&self) -> Result<()> {
        {
            let (lock, cv) = &*self.inner.retention_stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        self.inner.flusher.stop();
        for topic in self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).values() {
            for p in &topic.partitions {
                p.sync_all()?;
            }
        }
        Ok(())
    }

    /// The directory the log lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner.topic(name)
    }
}

impl Inner {
    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        let t = self.topic(topic)?;
        t.partitions.get(partition as usize).cloned().ok_or(LogError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
            partitions: t.partitions.len() as u32,
        })
    }
}

thread_local! {
    /// Reused encode buffers: (batches, compression scratch).
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

fn describe(t: &Topic) -> TopicDescription {
    TopicDescription {
        spec: t.spec.clone(),
        partitions: t
            .partitions
            .iter()
            .map(|p| {
                let (start, end) = p.watermarks();
                PartitionInfo {
                    partition: p.id,
                    start_offset: start,
                    end_offset: end,
                    size_bytes: Some(p.size_bytes()),
                }
            })
            .collect(),
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        spec.validate().map_err(LogError::InvalidTopic)?;
        let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
        if topics.contains_key(&spec.name) {
            return Err(LogError::TopicExists(spec.name.clone()));
        }
        // Build the topic in a temporary directory and rename it into place, so a crash never
        // leaves a topic without its spec or with some of its partitions.
        let root = &self.inner.root;
        let tmp = root.join(format!(".tmp-{}-{}", spec.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(LogError::io(format!("create {}", tmp.display())))?;
        write_atomically(&tmp, TOPIC_FILE, &serde_json::to_vec_pretty(spec).expect("spec serialises"))?;
        for p in 0..spec.partitions {
            std::fs::create_dir(tmp.join(p.to_string())).map_err(LogError::io("create partition directory"))?;
        }
        let dir = root.join(&spec.name);
        std::fs::rename(&tmp, &dir).map_err(LogError::io(format!("create {}", dir.display())))?;
        std::fs::File::open(root).and_then(|d| d.sync_all()).map_err(LogError::io("fsync log directory"))?;
        let topic = Self::open_topic(&dir, &self.inner.opts, &self.inner.appended)?;
        topics.insert(spec.name.clone(), Arc::new(topic));
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<TopicDescription>> {
        Ok(self.inner.topics.read().unwrap_or_else(|p| p.into_inner()).values().map(|t| describe(t)).collect())
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription> {
        let t = self.topic(topic)?;
        Ok(describe(&t))
    }

    async fn delete_topic(&self, topic: &str) -> Result<()> {
        let removed = self.inner.topics.write().unwrap_or_else(|p| p.into_inner()).remove(topic);
        if removed.is_none() {
            return Err(LogError::UnknownTopic(topic.to_owned()));
        }
        let root = &self.inner.root;
        let doomed = root.join(format!(".deleted-{topic}-{}", now_ms()));
        std::fs::rename(root.join(topic), &doomed).map_err(LogError::io(format!("delete topic {topic}")))?;
        std::fs::File::open(root).and_then(|d| d.sync_all()).map_err(LogError::io("fsync log directory"))?;
        std::fs::remove_dir_all(&doomed).map_err(LogError::io(format!("remove {}", doomed.display())))?;
        self.inner.offsets.drop_topic(topic)?;
        Ok(())
    }

    async fn produce(&self, topic: &str, records: Vec<ProduceRecord>, acks: Acks) -> Result<Vec<RecordPosition>> {
        let t = self.topic(topic)?;
        // Encoding and pwrite stay on the calling task: the write lands in the page cache of a
        // preallocated file (a copy, microseconds); what waits for the disk, fsync, runs on the
        // flusher's threads. Moving the write to the blocking pool was measured and not kept: at
        // 10k acks=all produce calls/s it cost a thread per call in flight (peak RSS 46 -> 400 MB)
        // and acks=all p99 0.4 -> 240-475 ms in `bench log` (BENCHMARKS.md).
        let (positions, touched) = write_records(&self.inner, &t, topic, records)?;
        self.inner.appended.notify_waiters();
        for (partition, _) in &touched {
            self.inner.flusher.request(partition);
        }
        if acks == Acks::All {
            for (partition, end) in touched {
                let mut rx = partition.durability();
                let reached = rx
                    .wait_for(|d| match d {
                        Durability::UpTo(o) => *o >= end,
                        Durability::Failed(_) => true,
                    })
                    .await
                    .map_err(|_| LogError::Closed)?;
                if let Durability::Failed(reason) = &*reached {
                    return Err(LogError::Io {
                        context: reason.clone(),
                        source: std::io::Error::other("fsync failed"),
                    });
                }
            }
        }
        Ok(positions)
    }

    async fn fetch(&self, topic: &str, partition: u32, offset: u64, max_records: usize) -> Result<Vec<Record>> {
        let p = self.inner.partition(topic, partition)?;
        let max_bytes = self.inner.fetch_max_bytes;
        blocking(move || p.read(offset, max_records, max_bytes)).await
    }

    async fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> Result<u64> {
        let p = self.inner.partition(topic, partition)?;
        blocking(move || p.offset_for_time(timestamp_ms)).await
    }

    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        Ok(self.inner.partition(topic, partition)?.watermarks())
    }

    async fn subscribe(&self, group: &str, topics: &[String], reset: OffsetReset) -> Result<Box<dyn GroupConsumer>> {
        validate_group(group)?;
        let mut subs = Vec::new();
        for name in topics {
            let t = self.topic(name)?;
            subs.push((Arc::<str>::from(name.as_str()), t.partitions.len() as u32));
        }
        let member = self.inner.groups.join(group, subs);
        self.inner.appended.notify_waiters();
        Ok(Box::new(EmbeddedConsumer {
            inner: self.inner.clone(),
            group: group.to_owned(),
            member,
            reset,
            generation: 0,
            assignment: Vec::new(),
            positions: Default::default(),
            committed: Default::default(),
            next_partition: 0,
            closed: false,
            pending: None,
        }))
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        Ok(self.inner.offsets.get(group).get(topic).and_then(|m| m.get(&partition)).copied())
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        validate_group(group)?;
        let committed = self.inner.offsets.get(group);
        let mut topics: Vec<String> = committed.keys().cloned().collect();
        topics.extend(self.inner.groups.subscribed_topics(group).iter().map(|t| t.to_string()));
        topics.sort();
        topics.dedup();
        let mut out = Vec::new();
        for name in topics {
            let Ok(t) = self.topic(&name) else { continue };
            for p in &t.partitions {
                let (start, end) = p.watermarks();
                let c = committed.get(&name).and_then(|m| m.get(&p.id)).copied();
                out.push(PartitionLag {
                    topic: name.clone(),
                    partition: p.id,
                    committed: c,
                    end_offset: end,
                    lag: end.saturating_sub(c.unwrap_or(start).max(start)),
                });
            }
        }
        Ok(out)
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        let mut g = self.inner.offsets.groups();
        g.extend(self.inner.groups.active_groups());
        g.sort();
        g.dedup();
        Ok(g)
    }
}

/// Partitions, encodes and writes `records` (the synchronous half of `produce`); returns where
/// each went and, per partition written, the offset after its last record.
#[allow(clippy::type_complexity)]
fn write_records(
    inner: &Inner,
    t: &Topic,
    topic: &str,
    records: Vec<ProduceRecord>,
) -> Result<(Vec<RecordPosition>, Vec<(Arc<Partition>, u64)>)> {
    let n = t.partitions.len() as u32;
    let limit = inner.opts.max_record_bytes;
    let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); n as usize];
    let mut positions = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let size = codec::record_size(r);
        if size > limit {
            return Err(LogError::RecordTooLarge { index: i, size, limit });
        }
        let p = match r.partition {
            Some(p) if p < n => p,
            Some(p) => {
                return Err(LogError::UnknownPartition { topic: topic.to_owned(), partition: p, partitions: n });
            }
            None => t.partitioner.partition(r.key.as_deref(), n),
        };
        by_partition[p as usize].push(i);
        positions.push(RecordPosition { partition: p, offset: None });
    }
    let now = now_ms();
    let mut touched = Vec::new();
    for (p, indices) in by_partition.iter().enumerate() {
        if indices.is_empty() {
            continue;
        }
        let partition = &t.partitions[p];
        let bases = BUFFERS.with(|cell| -> Result<Vec<(u64, usize)>> {
            let (buf, scratch) = &mut *cell.borrow_mut();
            buf.clear();
            // Split into batches of at most max_batch_bytes (uncompressed).
            let mut counts = Vec::new();
            let mut start = 0;
            while start < indices.len() {
                let mut end = start;
                let mut bytes = 0;
                while end < indices.len() {
                    let s = codec::record_size(&records[indices[end]]);
                    if end > start && bytes + s > inner.opts.max_batch_bytes {
                        break;
                    }
                    bytes += s;
                    end += 1;
                }
                let count = codec::encode_batch(
                    indices[start..end].iter().map(|&i| &records[i]),
                    t.spec.compression,
                    now,
                    scratch,
                    buf,
                );
                counts.push(count as usize);
                start = end;
            }
            let bases = partition.append(buf, now, &inner.opts)?;
            Ok(bases.into_iter().zip(counts).collect())
        })?;
        let mut k = 0;
        for (base, count) in bases {
            for j in 0..count {
                positions[indices[k]].offset = Some(base + j as u64);
                k += 1;
            }
        }
        let end = bases_end(&positions, indices);
        touched.push((partition.clone(), end));
    }
    Ok((positions, touched))
}

/// Runs file I/O on the blocking pool (reads may wait for the disk).
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

/// The offset after the last record of `indices` (all in one partition).
fn bases_end(positions: &[RecordPosition], indices: &[usize]) -> u64 {
    indices.iter().filter_map(|&i| positions[i].offset).max().map_or(0, |o| o + 1)
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (lock, cv) = &*self.retention_stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        self.flusher.stop();
        for topic in self.topics.read().unwrap_or_else(|p| p.into_inner()).values() {
            for p in &topic.partitions {
                if let Err(e) = p.sync_all() {
                    tracing::error!(error = %e, "flush on close failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// On an acks=all topic a group member sees a record only once it is fsynced, so a power loss
    /// cannot take back a record a service already acted on; other topics are visible when written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_all_topics_are_consumed_only_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let durable_topic = TopicSpec::new("durable");
        let fast_topic = TopicSpec { acks: Acks::Leader, ..TopicSpec::new("fast") };
        for spec in [&durable_topic, &fast_topic] {
            log.create_topic(&TopicSpec { partitions: 1, ..spec.clone() }).await.unwrap();
        }
        // No fsync happens from here on but the one this test asks for.
        log.inner.flusher.stop();
        for t in ["durable", "fast"] {
            log.produce(t, vec![ProduceRecord::new(Some("k"), "v")], Acks::Leader).await.unwrap();
        }
        let mut c =
            log.subscribe("g", &["durable".to_owned(), "fast".to_owned()], OffsetReset::Earliest).await.unwrap();
        let seen = c.poll(10, Duration::from_millis(300)).await.unwrap();
        let topics: Vec<&str> = seen.iter().map(|r| &*r.topic).collect();
        assert_eq!(topics, ["fast"], "the acks=all topic's record is written but not durable yet");
        let partition = log.inner.partition("durable", 0).unwrap();
        let waiting = tokio::spawn(async move {
            let got = c.poll(10, Duration::from_secs(5)).await.unwrap();
            got.iter().map(|r| r.topic.to_string()).collect::<Vec<_>>()
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        partition.flush();
        assert_eq!(waiting.await.unwrap(), ["durable"], "the fsync wakes the waiting consumer");
    }

    /// A committed offset beyond the end (a restored log) resumes at the end, never at the start.
    #[tokio::test]
    async fn a_committed_offset_beyond_the_end_resumes_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        log.create_topic(&TopicSpec { partitions: 1, ..TopicSpec::new("t") }).await.unwrap();
        log.produce("t", vec![ProduceRecord::new(Some("k"), "old")], Acks::All).await.unwrap();
        log.inner.offsets.commit("g", &[("t".into(), 0, 50)]).unwrap();
        let mut c = log.subscribe("g", &["t".to_owned()], OffsetReset::Earliest).await.unwrap();
        assert!(c.poll(10, Duration::from_millis(100)).await.unwrap().is_empty());
        log.produce("t", vec![ProduceRecord::new(Some("k"), "new")], Acks::All).await.unwrap();
        let got = c.poll(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(got.iter().map(|r| r.value_str().unwrap()).collect::<Vec<_>>(), ["new"]);
    }
}
