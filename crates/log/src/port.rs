//! The `EventLog` port: what every backend (embedded, Kafka) offers the rest of eventline.

use std::time::Duration;

use async_trait::async_trait;
use eventline_model::topics::{Acks, TopicSpec};
use serde::Serialize;

use crate::error::{LogError, Result};
use crate::record::{ProduceRecord, Record, RecordPosition};

/// A topic as the backend reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicDescription {
    pub spec: TopicSpec,
    pub partitions: Vec<PartitionInfo>,
}

/// The offsets of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    pub partition: u32,
    /// The first offset still in the log (older ones were removed by retention).
    pub start_offset: u64,
    /// The offset the next record will get (the high watermark).
    pub end_offset: u64,
    /// Bytes on disk, where the backend knows it.
    pub size_bytes: Option<u64>,
}

/// Where a consumer starts on a partition that has no committed offset, or whose committed offset
/// retention has removed. A committed offset *beyond* the end of a partition (the log was
/// restored from an older backup, or the topic re-created) always resumes at the end, with a
/// warning naming group, topic and partition: a service never restarts from the beginning and
/// repeats everything it already did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OffsetReset {
    #[default]
    Earliest,
    Latest,
}

/// Lag of a consumer group on one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    /// The committed offset (the next record the group will read), if any.
    pub committed: Option<u64>,
    pub end_offset: u64,
    /// Records between the committed offset (or the log start) and the end.
    pub lag: u64,
}

/// Partitions that moved to or from a member since it last looked (see
/// [`GroupConsumer::take_rebalance`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebalance {
    /// Partitions this member no longer owns: work in flight for them must be abandoned (its
    /// offsets can no longer be committed; the new owner starts at the last committed offset).
    pub revoked: Vec<(String, u32)>,
    /// Partitions this member owns now and did not before.
    pub assigned: Vec<(String, u32)>,
}

impl Rebalance {
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty() && self.assigned.is_empty()
    }
}

/// The port both backends implement.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// `embedded` or `kafka`.
    fn backend(&self) -> &'static str;

    /// Creates a topic; fails with `TopicExists` if it is there already.
    async fn create_topic(&self, spec: &TopicSpec) -> Result<()>;

    /// Creates the topic unless it exists; returns whether it was created.
    async fn ensure_topic(&self, spec: &TopicSpec) -> Result<bool> {
        match self.create_topic(spec).await {
            Ok(()) => Ok(true),
            Err(crate::LogError::TopicExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list_topics(&self) -> Result<Vec<TopicDescription>>;

    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription>;

    async fn delete_topic(&self, topic: &str) -> Result<()>;

    /// Appends `records` to `topic` and returns, in input order, where each one went, once each is
    /// acknowledged at the `acks` level. Records with the same key keep their order.
    async fn produce(&self, topic: &str, records: Vec<ProduceRecord>, acks: Acks) -> Result<Vec<RecordPosition>>;

    /// Up to `max_records` records of one partition from `offset` on (fewer at the end of the log).
    async fn fetch(&self, topic: &str, partition: u32, offset: u64, max_records: usize) -> Result<Vec<Record>>;

    /// The first offset whose record timestamp is at or after `timestamp_ms`; the end offset if none.
    async fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> Result<u64>;

    /// Start and end offsets of one partition.
    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64)>;

    /// Joins consumer group `group`, subscribed to `topics`; partitions are shared among the
    /// group's members and rebalanced when members join or leave.
    async fn subscribe(&self, group: &str, topics: &[String], reset: OffsetReset) -> Result<Box<dyn GroupConsumer>>;

    /// The group's committed offset on one partition.
    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>>;

    /// Lag of `group` on every partition of the topics it has committed offsets for.
    async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>>;

    /// Consumer groups known to the backend.
    async fn list_groups(&self) -> Result<Vec<String>>;
}

/// One member of a consumer group.
#[async_trait]
pub trait GroupConsumer: Send {
    fn member_id(&self) -> &str;

    /// The partitions this member owns now (after the last rebalance it saw).
    fn assignment(&self) -> Vec<(String, u32)>;

    /// Up to `max_records` records from the assigned partitions, waiting up to `timeout` for the
    /// first one. Records of one partition come in offset order; a record is never returned twice
    /// by this member unless it seeks back.
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>>;

    /// Durably commits the position after every record returned so far.
    async fn commit(&mut self) -> Result<()>;

    /// Durably commits exactly these positions: (topic, partition, next offset to read). Refused
    /// with [`LogError::Fenced`] when the group has moved on since this member last polled (an
    /// older generation) or the member does not own a partition named.
    async fn commit_offsets(&mut self, offsets: &[(String, u32, u64)]) -> Result<()>;

    /// The partitions assigned and revoked since the last call, as this member learnt of them
    /// while polling; `None` when nothing moved. The first poll reports the first assignment.
    fn take_rebalance(&mut self) -> Option<Rebalance>;

    /// Moves this member's position on an assigned partition.
    async fn seek(&mut self, topic: &str, partition: u32, offset: u64) -> Result<()>;

    /// Leaves the group (its partitions go to the remaining members).
    async fn close(self: Box<Self>) -> Result<()>;
}

/// Checks a consumer group name. Both backends use the same rule (Kafka's topic-name characters),
/// so a group moves between them unchanged, and the embedded log can use it as a file name.
pub fn validate_group(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > 249 {
        return Err(LogError::InvalidGroup(format!("`{group}`: a group name has 1 to 249 characters")));
    }
    if let Some(c) = group.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(LogError::InvalidGroup(format!(
            "`{group}` contains `{c}`; use only ASCII letters, digits, `.`, `_` and `-`"
        )));
    }
    if group.starts_with('.') {
        return Err(LogError::InvalidGroup(format!("`{group}` must not start with `.`")));
    }
    Ok(())
}
