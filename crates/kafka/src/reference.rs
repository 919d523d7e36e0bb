//! A bare rdkafka producer with exactly the settings [`KafkaLog`](crate::KafkaLog) uses
//! ([`producer_config`]): the yardstick `eventline bench log --backend kafka` measures eventline's
//! own produce path against, in the same run, on the same records and batches.
//!
//! It is what a careful hand-written rdkafka program does and nothing more: a threaded producer,
//! one shared counter per batch as the delivery opaque, no per-record bookkeeping.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use eventline_log::Result;
use eventline_model::topics::{Acks, Compression};
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};

use crate::KafkaOptions;
use crate::error::backend;
use crate::producer::producer_config;

/// Deliveries outstanding for one batch.
struct BatchCounter {
    left: AtomicUsize,
    failed: AtomicBool,
    done: tokio::sync::Notify,
}

struct CountingContext;

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = Arc<BatchCounter>;

    fn delivery(&self, report: &DeliveryResult<'_>, batch: Arc<BatchCounter>) {
        if report.is_err() {
            batch.failed.store(true, Ordering::Relaxed);
        }
        if batch.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            batch.done.notify_one();
        }
    }
}

async fn settle(batch: &BatchCounter) -> Result<()> {
    if batch.left.load(Ordering::Acquire) > 0 {
        batch.done.notified().await;
    }
    if batch.failed.load(Ordering::Relaxed) {
        return Err(backend("the reference producer had a failed delivery"));
    }
    Ok(())
}

/// A bare rdkafka producer with eventline's settings for one acks level and codec.
pub struct ReferenceProducer {
    producer: ThreadedProducer<CountingContext>,
}

impl std::fmt::Debug for ReferenceProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceProducer").finish_non_exhaustive()
    }
}

impl ReferenceProducer {
    pub fn new(opts: &KafkaOptions, acks: Acks, compression: Compression) -> Result<Self> {
        let config = producer_config(opts, acks, compression);
        let producer = ThreadedProducer::from_config_and_context(&config, CountingContext)
            .map_err(|e| backend(format!("cannot create the reference producer: {e}")))?;
        Ok(Self { producer })
    }

    /// Produces `batches` of (key, value) records to `topic`, keeping at most `in_flight`
    /// batches unacknowledged; returns the number of records delivered.
    pub async fn produce_batches(
        &self,
        topic: &str,
        batches: impl Iterator<Item = Vec<(Bytes, Bytes)>>,
        in_flight: usize,
    ) -> Result<u64> {
        produce_batches(&self.producer, topic, batches, in_flight).await
    }
}

async fn produce_batches(
    producer: &ThreadedProducer<CountingContext>,
    topic: &str,
    batches: impl Iterator<Item = Vec<(Bytes, Bytes)>>,
    in_flight: usize,
) -> Result<u64> {
    let mut window: VecDeque<Arc<BatchCounter>> = VecDeque::new();
    let mut sent = 0u64;
    for batch in batches {
        if window.len() >= in_flight.max(1) {
            settle(&window.pop_front().expect("non-empty window")).await?;
        }
        let counter = Arc::new(BatchCounter {
            left: AtomicUsize::new(batch.len()),
            failed: AtomicBool::new(false),
            done: Default::default(),
        });
        for (key, value) in &batch {
            let mut record = BaseRecord::with_opaque_to(topic, counter.clone()).key(&key[..]).payload(&value[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(backend(format!("reference producer: {e}"))),
                }
            }
        }
        sent += batch.len() as u64;
        if batch.is_empty() {
            continue;
        }
        window.push_back(counter);
    }
    for batch in window {
        settle(&batch).await?;
    }
    Ok(sent)
}
