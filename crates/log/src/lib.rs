//! The `EventLog` port and eventline's embedded log.
//!
//! Every part of eventline that produces or consumes events talks to an [`EventLog`]; the
//! embedded log ([`EmbeddedLog`], the default) and the Kafka backend implement it, and the
//! [`conformance`] suite checks that both behave the same.
//!
//! ```
//! # tokio_test_block_on(async {
//! use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, ProduceRecord};
//! use eventline_model::topics::{Acks, TopicSpec};
//!
//! let dir = std::env::temp_dir().join(format!("eventline-doc-{}", std::process::id()));
//! let log = EmbeddedLog::open(&dir, EmbeddedOptions::default()).unwrap();
//! log.create_topic(&TopicSpec::new("orders")).await.unwrap();
//! let acks = log.produce("orders", vec![ProduceRecord::new(Some("user-1"), "{\"n\":1}")], Acks::All).await.unwrap();
//! let records = log.fetch("orders", acks[0].partition, 0, 10).await.unwrap();
//! assert_eq!(records[0].value_str(), Some("{\"n\":1}"));
//! # log.close().unwrap(); drop(log); std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

pub mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
mod embedded;
mod error;
pub mod partitioner;
mod port;
mod record;

pub use embedded::{EmbeddedLog, EmbeddedOptions};
pub use error::{LogError, Result};
pub use port::{
    EventLog, GroupConsumer, OffsetReset, PartitionInfo, PartitionLag, Rebalance, TopicDescription, validate_group,
};
pub use record::{Header, ProduceRecord, Record, RecordPosition};
