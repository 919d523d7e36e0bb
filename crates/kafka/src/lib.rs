//! eventline's Apache Kafka backend: the [`EventLog`](eventline_log::EventLog) port on a Kafka
//! cluster through librdkafka (the `rdkafka` crate, bundled build).
//!
//! - Topics: created with `num.partitions`, `retention.ms`, `retention.bytes`, `compression.type`
//!   and `cleanup.policy=delete`; described from metadata, watermarks and topic configs.
//! - Producing: one producer per acks level and codec, idempotent for acks=all, Kafka's murmur2
//!   partitioner (`murmur2_random`), headers kept (`traceparent`, `_metadata`), positions in
//!   input order.
//! - Reading: [`EventLog::fetch`](eventline_log::EventLog::fetch) through assigned consumers;
//!   consumer groups with automatic offset storing off — a position is stored once the record
//!   was handed to the service and committed on `commit()` or when a rebalance revokes the
//!   partition.
//!
//! ```no_run
//! # async fn demo() -> eventline_log::Result<()> {
//! use eventline_kafka::{KafkaLog, KafkaOptions};
//! use eventline_log::{EventLog, ProduceRecord};
//! use eventline_model::topics::{Acks, TopicSpec};
//!
//! let log = KafkaLog::connect(KafkaOptions::new("127.0.0.1:9092")).await?;
//! log.ensure_topic(&TopicSpec::new("orders")).await?;
//! let at = log.produce("orders", vec![ProduceRecord::new(Some("user-1"), "{\"n\":1}")], Acks::All).await?;
//! let records = log.fetch("orders", at[0].partition, at[0].offset.unwrap(), 10).await?;
//! assert_eq!(records[0].value_str(), Some("{\"n\":1}"));
//! # Ok(()) }
//! ```

mod error;
mod fetch;
mod group;
mod log;
mod options;
mod producer;
pub mod reference;

use std::sync::Arc;

use bytes::Bytes;
use eventline_log::{Header, Record};
use rdkafka::message::{BorrowedMessage, Headers, Message};

pub use group::KafkaGroupConsumer;
pub use log::KafkaLog;
pub use options::{KafkaOptions, KafkaSecurity, PROPERTIES_ENV, SECURITY_ENV};
pub use producer::producer_config;

/// Copies a consumed message into the port's [`Record`].
pub(crate) fn record_from(m: &BorrowedMessage<'_>, topic: Arc<str>) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter().map(|h| Header { key: h.key.to_owned(), value: h.value.map(Bytes::copy_from_slice) }).collect()
        })
        .unwrap_or_default();
    Record {
        topic,
        partition: m.partition() as u32,
        offset: m.offset() as u64,
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        key: m.key().map(Bytes::copy_from_slice),
        value: m.payload().map(Bytes::copy_from_slice),
        headers,
    }
}
