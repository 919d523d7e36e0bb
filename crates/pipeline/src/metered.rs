//! [`Metered`]: an [`EventLog`] that counts what is appended — `eventline_log_appended_records_total`
//! and `eventline_log_appended_bytes_total` by topic — and otherwise is the log it wraps. `up`
//! wraps its log in it, so every append (pipelines, dead letters, the outbox relay) is counted
//! once, whichever backend.

use std::sync::Arc;

use async_trait::async_trait;
use eventline_log::{
    EventLog, GroupConsumer, OffsetReset, PartitionLag, ProduceRecord, Record, RecordPosition, Result, TopicDescription,
};
use eventline_model::topics::{Acks, TopicSpec};

pub struct Metered(pub Arc<dyn EventLog>);

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Metered").field(&self.0.backend()).finish()
    }
}

#[async_trait]
impl EventLog for Metered {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        self.0.create_topic(spec).await
    }

    async fn ensure_topic(&self, spec: &TopicSpec) -> Result<bool> {
        self.0.ensure_topic(spec).await
    }

    async fn list_topics(&self) -> Result<Vec<TopicDescription>> {
        self.0.list_topics().await
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription> {
        self.0.describe_topic(topic).await
    }

    async fn delete_topic(&self, topic: &str) -> Result<()> {
        self.0.delete_topic(topic).await
    }

    async fn produce(&self, topic: &str, records: Vec<ProduceRecord>, acks: Acks) -> Result<Vec<RecordPosition>> {
        let n = records.len() as u64;
        let bytes: u64 = records
            .iter()
            .map(|r| (r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |k| k.len())) as u64)
            .sum();
        let out = self.0.produce(topic, records, acks).await?;
        metrics::counter!("eventline_log_appended_records_total", "topic" => topic.to_owned()).increment(n);
        metrics::counter!("eventline_log_appended_bytes_total", "topic" => topic.to_owned()).increment(bytes);
        Ok(out)
    }

    async fn fetch(&self, topic: &str, partition: u32, offset: u64, max_records: usize) -> Result<Vec<Record>> {
        self.0.fetch(topic, partition, offset, max_records).await
    }

    async fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> Result<u64> {
        self.0.offset_for_time(topic, partition, timestamp_ms).await
    }

    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        self.0.watermarks(topic, partition).await
    }

    async fn subscribe(&self, group: &str, topics: &[String], reset: OffsetReset) -> Result<Box<dyn GroupConsumer>> {
        self.0.subscribe(group, topics, reset).await
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        self.0.committed(group, topic, partition).await
    }

    async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        self.0.group_lag(group).await
    }

    async fn list_groups(&self) -> Result<Vec<String>> {
        self.0.list_groups().await
    }
}
