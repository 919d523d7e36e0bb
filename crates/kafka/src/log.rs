//! [`KafkaLog`]: the `EventLog` port on a Kafka cluster.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventline_log::{
    EventLog, GroupConsumer, LogError, OffsetReset, PartitionInfo, PartitionLag, ProduceRecord, Record, RecordPosition,
    Result, TopicDescription,
};
use eventline_model::topics::{self, Acks, Compression, TopicSpec};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::KafkaOptions;
use eventline_log::validate_group;

use crate::error::{backend, blocking};
use crate::fetch::Fetchers;
use crate::group::KafkaGroupConsumer;
use crate::producer::{MAX_RECORDS_PER_CALL, Pending, Producers, produce_error};

/// What the backend remembers about a topic between calls.
#[derive(Clone, Copy, Debug)]
struct TopicMeta {
    partitions: u32,
    compression: Compression,
}

/// Interned topic names, so every record of a topic shares one `Arc<str>`.
#[derive(Debug, Default)]
pub(crate) struct TopicNames(Mutex<HashMap<String, Arc<str>>>);

impl TopicNames {
    pub fn get(&self, topic: &str) -> Arc<str> {
        let mut map = self.0.lock().expect("topic names lock");
        if let Some(n) = map.get(topic) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(topic);
        map.insert(topic.to_owned(), n.clone());
        n
    }
}

/// Kafka's `compression.type` topic setting for a codec.
fn compression_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        other => other.as_str(),
    }
}

fn parse_compression_type(v: Option<&str>) -> Compression {
    v.and_then(|v| v.parse().ok()).unwrap_or(Compression::None)
}

/// Reads an optional `-1`-means-unbounded number.
fn parse_limit(v: Option<&str>) -> Option<Option<u64>> {
    let n: i64 = v?.trim().parse().ok()?;
    Some(u64::try_from(n).ok())
}

/// The Kafka backend of the `EventLog` port.
///
/// Topic settings Kafka holds (partitions, replication, `retention.ms`, `retention.bytes`,
/// `compression.type`) are written at creation and read back by describe. The two
/// [`TopicSpec`] fields Kafka has no setting for are derived, not stored: `key_pointer` comes
/// from the built-in topic catalog (the six contract topics; `None` for any other topic), and
/// `acks` is the contract default, `all` — the producer's acks is chosen per call anyway. Kafka
/// rejects unknown topic configs, so storing them as custom configs would not work on a real
/// cluster.
pub struct KafkaLog {
    opts: KafkaOptions,
    admin: AdminClient<DefaultClientContext>,
    /// A consumer with no group, for metadata, watermarks and offset look-ups.
    meta: Arc<BaseConsumer>,
    producers: Producers,
    fetchers: Arc<Fetchers>,
    topics: Mutex<HashMap<String, TopicMeta>>,
    names: Arc<TopicNames>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog").field("brokers", &self.opts.brokers).finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the cluster and checks that it answers (a metadata request), so a wrong
    /// address fails here with a clear message rather than on first use.
    pub async fn connect(opts: KafkaOptions) -> Result<Self> {
        let admin = AdminClient::from_config(&opts.finish(opts.base_config()))
            .map_err(|e| backend(format!("cannot create the admin client: {e}")))?;
        let meta = BaseConsumer::from_config(&opts.finish(metadata_config(&opts)))
            .map_err(|e| backend(format!("cannot create the metadata client: {e}")))?;
        let log = Self {
            fetchers: Arc::new(Fetchers::new(opts.clone())),
            opts,
            admin,
            meta: Arc::new(meta),
            producers: Producers::default(),
            topics: Mutex::new(HashMap::new()),
            names: Arc::new(TopicNames::default()),
        };
        let (meta, timeout, brokers) = (log.meta.clone(), log.opts.request_timeout, log.opts.brokers.clone());
        blocking(move || {
            meta.fetch_metadata(None, timeout).map(drop).map_err(|e| {
                backend(format!(
                    "cannot reach Kafka at {brokers}: {e}; check --kafka-brokers / EVENTLINE_KAFKA_BROKERS"
                ))
            })
        })
        .await?;
        Ok(log)
    }

    pub fn options(&self) -> &KafkaOptions {
        &self.opts
    }

    /// Waits until every record handed to any producer is delivered (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        for p in self.producers.all() {
            p.flush(timeout).map_err(|e| backend(format!("flush failed: {e}")))?;
        }
        Ok(())
    }

    fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.opts.request_timeout))
            .operation_timeout(Some(self.opts.request_timeout))
    }

    /// Partition count of `topic` per the cluster's metadata; `None` if it does not exist.
    async fn partition_count(&self, topic: &str) -> Result<Option<u32>> {
        let (meta, timeout, t) = (self.meta.clone(), self.opts.request_timeout, topic.to_owned());
        blocking(move || {
            let md = meta.fetch_metadata(Some(&t), timeout).map_err(|e| backend(format!("metadata of {t}: {e}")))?;
            Ok(md.topics().iter().find(|m| m.name() == t).and_then(|m| match m.error() {
                Some(_) => None,
                None if m.partitions().is_empty() => None,
                None => Some(m.partitions().len() as u32),
            }))
        })
        .await
    }

    async fn topic_configs(&self, topic: &str) -> Result<BTreeMap<String, String>> {
        let res = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &self.admin_options())
            .await
            .map_err(|e| backend(format!("describe configs of {topic}: {e}")))?;
        match res.into_iter().next() {
            Some(Ok(r)) => Ok(r.entries.into_iter().filter_map(|e| Some((e.name, e.value?))).collect()),
            Some(Err(RDKafkaErrorCode::UnknownTopicOrPartition)) => Err(LogError::UnknownTopic(topic.to_owned())),
            Some(Err(e)) => Err(backend(format!("describe configs of {topic}: {e}"))),
            None => Ok(BTreeMap::new()),
        }
    }

    /// The cached metadata of `topic`, loaded from the cluster on a miss.
    async fn topic_meta(&self, topic: &str) -> Result<TopicMeta> {
        if let Some(m) = self.topics.lock().expect("topic cache lock").get(topic) {
            return Ok(*m);
        }
        let partitions = self.partition_count(topic).await?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
        let configs = self.topic_configs(topic).await?;
        let meta = TopicMeta {
            partitions,
            compression: parse_compression_type(configs.get("compression.type").map(String::as_str)),
        };
        self.topics.lock().expect("topic cache lock").insert(topic.to_owned(), meta);
        Ok(meta)
    }

    fn forget(&self, topic: &str) {
        self.topics.lock().expect("topic cache lock").remove(topic);
        self.fetchers.forget(topic);
    }

    async fn check_partition(&self, topic: &str, partition: u32) -> Result<()> {
        let mut meta = self.topic_meta(topic).await?;
        if partition >= meta.partitions {
            // Partitions may have been added since we cached the count.
            self.forget(topic);
            meta = self.topic_meta(topic).await?;
        }
        if partition >= meta.partitions {
            return Err(LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions: meta.partitions });
        }
        Ok(())
    }

    /// Waits until the cluster's metadata shows `topic` with `partitions` partitions (`Some`) or
    /// without it (`None`): creation and deletion complete asynchronously on the brokers.
    async fn await_metadata(&self, topic: &str, want: Option<u32>) -> Result<()> {
        let deadline = Instant::now() + self.opts.request_timeout;
        loop {
            let have = self.partition_count(topic).await?;
            if have == want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(backend(format!(
                    "topic {topic}: the cluster's metadata still shows {have:?} partitions after {:?}, expected {want:?}",
                    self.opts.request_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn watermarks_of(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        let (meta, timeout, t) = (self.meta.clone(), self.opts.request_timeout, topic.to_owned());
        blocking(move || watermarks_blocking(&meta, &t, partition, timeout)).await
    }

    /// A consumer that belongs to `group` without joining it, to read the group's commits.
    fn group_reader(&self, group: &str) -> Result<BaseConsumer> {
        let mut c = metadata_config(&self.opts);
        c.set("group.id", group);
        BaseConsumer::from_config(&self.opts.finish(c))
            .map_err(|e| backend(format!("cannot create a reader for group {group}: {e}")))
    }

    async fn describe(&self, topic: &str) -> Result<TopicDescription> {
        let (meta, timeout, t) = (self.meta.clone(), self.opts.request_timeout, topic.to_owned());
        let (partitions, replicas) = blocking(move || {
            let md = meta.fetch_metadata(Some(&t), timeout).map_err(|e| backend(format!("metadata of {t}: {e}")))?;
            let Some(m) = md.topics().iter().find(|m| m.name() == t) else {
                return Err(LogError::UnknownTopic(t));
            };
            if m.error().is_some() || m.partitions().is_empty() {
                return Err(LogError::UnknownTopic(t));
            }
            let replicas = m.partitions().iter().map(|p| p.replicas().len()).max().unwrap_or(1).max(1);
            let mut infos = Vec::with_capacity(m.partitions().len());
            for p in 0..m.partitions().len() as u32 {
                let (start, end) = watermarks_blocking(&meta, &t, p, timeout)?;
                infos.push(PartitionInfo { partition: p, start_offset: start, end_offset: end, size_bytes: None });
            }
            Ok((infos, replicas))
        })
        .await?;
        let configs = self.topic_configs(topic).await?;
        let get = |k: &str| configs.get(k).map(String::as_str);
        let compression = parse_compression_type(get("compression.type"));
        let spec = TopicSpec {
            name: topic.to_owned(),
            partitions: partitions.len() as u32,
            replication_factor: replicas as u16,
            // Kafka's broker default is 7 days, the contract's default too.
            retention: parse_limit(get("retention.ms"))
                .unwrap_or(Some(topics::DEFAULT_RETENTION.as_millis() as u64))
                .map(Duration::from_millis),
            retention_bytes: parse_limit(get("retention.bytes")).flatten(),
            compression,
            acks: Acks::All,
            key_pointer: topics::BUILTIN_TOPICS.iter().find(|(t, _)| *t == topic).map(|(_, k)| (*k).to_owned()),
        };
        self.topics
            .lock()
            .expect("topic cache lock")
            .insert(topic.to_owned(), TopicMeta { partitions: spec.partitions, compression });
        Ok(TopicDescription { spec, partitions })
    }
}

/// Settings of the group-less consumer used for metadata and look-ups.
fn metadata_config(opts: &KafkaOptions) -> rdkafka::ClientConfig {
    let mut c = opts.base_config();
    c.set("enable.auto.commit", "false").set("allow.auto.create.topics", "false");
    c
}

fn watermarks_blocking(meta: &BaseConsumer, topic: &str, partition: u32, timeout: Duration) -> Result<(u64, u64)> {
    let (lo, hi) =
        meta.fetch_watermarks(topic, partition as i32, timeout).map_err(|e| match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => LogError::UnknownTopic(topic.to_owned()),
            _ => backend(format!("watermarks of {topic}/{partition}: {e}")),
        })?;
    Ok((lo.max(0) as u64, hi.max(0) as u64))
}

fn headers_of(r: &ProduceRecord) -> Option<OwnedHeaders> {
    if r.headers.is_empty() {
        return None;
    }
    let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
    for header in &r.headers {
        h = h.insert(KafkaHeader { key: &header.key, value: header.value.as_deref() });
    }
    Some(h)
}

fn record_size(r: &ProduceRecord) -> usize {
    r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len())).sum::<usize>()
}

#[async_trait]
impl EventLog for KafkaLog {
    fn backend(&self) -> &'static str {
        "kafka"
    }

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        spec.validate().map_err(LogError::InvalidTopic)?;
        let retention_ms = spec.retention.map_or(-1, |d| d.as_millis() as i64).to_string();
        let retention_bytes = spec.retention_bytes.map_or(-1, |b| b as i64).to_string();
        let new =
            NewTopic::new(&spec.name, spec.partitions as i32, TopicReplication::Fixed(spec.replication_factor.into()))
                .set("retention.ms", &retention_ms)
                .set("retention.bytes", &retention_bytes)
                .set("compression.type", compression_type(spec.compression))
                .set("cleanup.policy", "delete");
        let res = self
            .admin
            .create_topics([&new], &self.admin_options())
            .await
            .map_err(|e| backend(format!("create topic {}: {e}", spec.name)))?;
        match res.into_iter().next() {
            Some(Ok(_)) | None => {}
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                return Err(LogError::TopicExists(spec.name.clone()));
            }
            Some(Err((
                _,
                code @ (RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::InvalidReplicationFactor
                | RDKafkaErrorCode::InvalidConfig),
            ))) => {
                return Err(LogError::InvalidTopic(format!("{}: the cluster refused it: {code}", spec.name)));
            }
            Some(Err((_, code))) => return Err(backend(format!("create topic {}: {code}", spec.name))),
        }
        self.await_metadata(&spec.name, Some(spec.partitions)).await?;
        self.topics
            .lock()
            .expect("topic cache lock")
            .insert(spec.name.clone(), TopicMeta { partitions: spec.partitions, compression: spec.compression });
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<TopicDescription>> {
        let (meta, timeout) = (self.meta.clone(), self.opts.request_timeout);
        let mut names: Vec<String> = blocking(move || {
            let md = meta.fetch_metadata(None, timeout).map_err(|e| backend(format!("list topics: {e}")))?;
            Ok(md.topics().iter().map(|t| t.name().to_owned()).filter(|n| !n.starts_with("__")).collect())
        })
        .await?;
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.describe(&name).await {
                Ok(d) => out.push(d),
                Err(LogError::UnknownTopic(_)) => {} // deleted since the listing
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription> {
        self.describe(topic).await
    }

    async fn delete_topic(&self, topic: &str) -> Result<()> {
        if self.partition_count(topic).await?.is_none() {
            return Err(LogError::UnknownTopic(topic.to_owned()));
        }
        // Stop reading the topic first: librdkafka 2.12 can crash handling the leader hints in
        // a fetch response for a topic deleted under it (seen against tansu).
        self.forget(topic);
        let res = self
            .admin
            .delete_topics(&[topic], &self.admin_options())
            .await
            .map_err(|e| backend(format!("delete topic {topic}: {e}")))?;
        self.forget(topic);
        match res.into_iter().next() {
            Some(Ok(_)) | None => {}
            Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => {
                return Err(LogError::UnknownTopic(topic.to_owned()));
            }
            Some(Err((_, code))) => return Err(backend(format!("delete topic {topic}: {code}"))),
        }
        self.await_metadata(topic, None).await
    }

    async fn produce(&self, topic: &str, records: Vec<ProduceRecord>, acks: Acks) -> Result<Vec<RecordPosition>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let meta = self.topic_meta(topic).await?;
        let limit = self.opts.max_message_bytes;
        for (index, r) in records.iter().enumerate() {
            let size = record_size(r);
            if size > limit {
                return Err(LogError::RecordTooLarge { index, size, limit });
            }
            if let Some(p) = r.partition
                && p >= meta.partitions
            {
                return Err(LogError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition: p,
                    partitions: meta.partitions,
                });
            }
        }
        let producer = self.producers.get(&self.opts, acks, meta.compression)?;
        if records.len() > MAX_RECORDS_PER_CALL {
            return Err(backend(format!("at most {MAX_RECORDS_PER_CALL} records per produce call")));
        }
        let pending = Pending::new(records.len());
        let registration = producer.context().register(pending.clone());
        for (index, r) in records.iter().enumerate() {
            let mut record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, registration.opaque(index));
            record.key = r.key.as_deref();
            record.payload = r.value.as_deref();
            record.timestamp = r.timestamp;
            record.partition = r.partition.map(|p| p as i32);
            record.headers = headers_of(r);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: let deliveries drain it.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => {
                        let err = produce_error(&e, topic, index, record_size(r), limit);
                        if matches!(err, LogError::UnknownTopic(_)) {
                            self.forget(topic);
                        }
                        pending.complete(index, Err(err));
                        // Records after a refused one are not sent; their slots say why.
                        for later in index + 1..records.len() {
                            pending.complete(
                                later,
                                Err(backend(format!("record {later} not sent: record {index} was refused"))),
                            );
                        }
                        return pending.wait().await;
                    }
                }
            }
        }
        let res = pending.wait().await;
        drop(registration);
        if let Err(LogError::UnknownTopic(_)) = &res {
            self.forget(topic);
        }
        res
    }

    async fn fetch(&self, topic: &str, partition: u32, offset: u64, max_records: usize) -> Result<Vec<Record>> {
        self.check_partition(topic, partition).await?;
        if max_records == 0 {
            return Ok(Vec::new());
        }
        let (fetchers, t, names) = (self.fetchers.clone(), topic.to_owned(), self.names.clone());
        blocking(move || fetchers.fetch(&t, partition, offset, max_records, &names)).await
    }

    async fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> Result<u64> {
        self.check_partition(topic, partition).await?;
        let (meta, timeout, t) = (self.meta.clone(), self.opts.request_timeout, topic.to_owned());
        let (found, end) = blocking(move || {
            let (_, end) = watermarks_blocking(&meta, &t, partition, timeout)?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, partition as i32, Offset::Offset(timestamp_ms))
                .map_err(|e| backend(e.to_string()))?;
            let res = meta
                .offsets_for_times(tpl, timeout)
                .map_err(|e| backend(format!("offsets for times of {t}/{partition}: {e}")))?;
            let found = res.find_partition(&t, partition as i32).and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o as u64),
                _ => None,
            });
            Ok((found, end))
        })
        .await?;
        // The broker answers with the first offset at or after the time; some brokers answer
        // with the start of the batch holding it, so walk forward to the exact record. On a
        // broker that answers exactly, the first record read is the answer.
        let Some(mut at) = found else { return Ok(end) };
        loop {
            let batch = self.fetch(topic, partition, at, 500).await?;
            let Some(last) = batch.last() else { return Ok(at.max(end)) };
            if let Some(hit) = batch.iter().find(|r| r.timestamp >= timestamp_ms) {
                return Ok(hit.offset);
            }
            at = last.offset + 1;
        }
    }

    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        self.check_partition(topic, partition).await?;
        self.watermarks_of(topic, partition).await
    }

    async fn subscribe(&self, group: &str, topics: &[String], reset: OffsetReset) -> Result<Box<dyn GroupConsumer>> {
        validate_group(group)?;
        if topics.is_empty() {
            return Err(LogError::InvalidGroup(format!("group {group}: subscribe to at least one topic")));
        }
        for t in topics {
            self.topic_meta(t).await?;
        }
        let (opts, group, topics, names) = (self.opts.clone(), group.to_owned(), topics.to_vec(), self.names.clone());
        let member = blocking(move || KafkaGroupConsumer::join(&opts, &group, &topics, reset, names)).await?;
        Ok(Box::new(member))
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        validate_group(group)?;
        self.check_partition(topic, partition).await?;
        let reader = self.group_reader(group)?;
        let (timeout, t) = (self.opts.request_timeout, topic.to_owned());
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&t, partition as i32);
            let res = reader.committed_offsets(tpl, timeout).map_err(|e| backend(format!("committed offsets: {e}")))?;
            Ok(res.find_partition(&t, partition as i32).and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o as u64),
                _ => None,
            }))
        })
        .await
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        validate_group(group)?;
        let reader = self.group_reader(group)?;
        let (meta, timeout) = (self.meta.clone(), self.opts.request_timeout);
        blocking(move || {
            // The group's commits on every partition of every topic; rows for the topics it has
            // committed on.
            let md = meta.fetch_metadata(None, timeout).map_err(|e| backend(format!("list topics: {e}")))?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics().iter().filter(|t| !t.name().starts_with("__") && t.error().is_none()) {
                for p in t.partitions() {
                    tpl.add_partition(t.name(), p.id());
                }
            }
            if tpl.count() == 0 {
                return Ok(Vec::new());
            }
            let committed =
                reader.committed_offsets(tpl, timeout).map_err(|e| backend(format!("committed offsets of {e}")))?;
            let mut by_topic: BTreeMap<String, Vec<(u32, Option<u64>)>> = BTreeMap::new();
            for e in committed.elements() {
                let c = match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o as u64),
                    _ => None,
                };
                by_topic.entry(e.topic().to_owned()).or_default().push((e.partition() as u32, c));
            }
            let mut out = Vec::new();
            for (topic, parts) in by_topic {
                if parts.iter().all(|(_, c)| c.is_none()) {
                    continue;
                }
                for (partition, committed) in parts {
                    let (start, end) = watermarks_blocking(&meta, &topic, partition, timeout)?;
                    let lag = end.saturating_sub(committed.unwrap_or(start));
                    out.push(PartitionLag { topic: topic.clone(), partition, committed, end_offset: end, lag });
                }
            }
            out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            Ok(out)
        })
        .await
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        let (meta, timeout) = (self.meta.clone(), self.opts.request_timeout);
        blocking(move || {
            let list = meta.fetch_group_list(None, timeout).map_err(|e| backend(format!("list groups: {e}")))?;
            let mut names: Vec<String> = list.groups().iter().map(|g| g.name().to_owned()).collect();
            names.sort();
            names.dedup();
            Ok(names)
        })
        .await
    }
}
