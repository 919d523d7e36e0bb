//! The producers: one librdkafka producer per (acks, compression) pair, created on first use,
//! each with a delivery callback that fills the caller's slot by input position, so a produce
//! call gets its positions back in input order without a channel per record.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use eventline_log::{LogError, RecordPosition, Result};
use eventline_model::topics::{Acks, Compression};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};

use crate::KafkaOptions;
use crate::error::backend;

/// The librdkafka producer settings eventline uses for `acks` and `compression`: idempotent for
/// acks=all, Kafka's murmur2 partitioner (so keys land where Java clients and the embedded log
/// put them), random partitions for keyless records. Public so a benchmark can build a bare
/// rdkafka producer with exactly the same settings.
pub fn producer_config(opts: &KafkaOptions, acks: Acks, compression: Compression) -> ClientConfig {
    let mut c = opts.base_config();
    c.set("acks", acks.as_str())
        .set("enable.idempotence", if acks == Acks::All { "true" } else { "false" })
        .set("compression.codec", compression.as_str())
        .set("partitioner", "murmur2_random")
        // Keyless records go to a random partition each, not a sticky one, like the embedded
        // log's round-robin spreads them.
        .set("sticky.partitioning.linger.ms", "0")
        .set("linger.ms", opts.linger.as_millis().to_string())
        .set("message.max.bytes", opts.max_message_bytes.to_string())
        .set("delivery.timeout.ms", "60000");
    opts.finish(c)
}

/// The outcome of one produce call, filled in by delivery reports in any order. Positions are
/// plain atomics (each slot written once, by the delivery thread); the countdown's release/acquire
/// makes them visible to the waiting call. Failures, rare, go through a lock.
pub(crate) struct Pending {
    partitions: Vec<AtomicU32>,
    offsets: Vec<AtomicI64>,
    errors: Mutex<Vec<(usize, LogError)>>,
    left: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Pending {
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            partitions: (0..n).map(|_| AtomicU32::new(0)).collect(),
            offsets: (0..n).map(|_| AtomicI64::new(-1)).collect(),
            errors: Mutex::new(Vec::new()),
            left: AtomicUsize::new(n),
            done: tokio::sync::Notify::new(),
        })
    }

    pub fn complete(&self, index: usize, result: Result<RecordPosition>) {
        match result {
            Ok(p) => {
                self.partitions[index].store(p.partition, Ordering::Relaxed);
                self.offsets[index].store(p.offset.map_or(-1, |o| o as i64), Ordering::Relaxed);
            }
            Err(e) => self.errors.lock().expect("produce errors lock").push((index, e)),
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    /// Waits for every record's report; the positions in input order, or the first error.
    pub async fn wait(&self) -> Result<Vec<RecordPosition>> {
        if self.left.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
        let mut errors = std::mem::take(&mut *self.errors.lock().expect("produce errors lock"));
        if !errors.is_empty() {
            errors.sort_by_key(|(i, _)| *i);
            return Err(errors.swap_remove(0).1);
        }
        Ok(self
            .partitions
            .iter()
            .zip(&self.offsets)
            .map(|(p, o)| RecordPosition {
                partition: p.load(Ordering::Relaxed),
                offset: u64::try_from(o.load(Ordering::Relaxed)).ok(),
            })
            .collect())
    }
}

/// Routes librdkafka's delivery reports to the waiting produce calls.
///
/// Each record's delivery opaque is a plain number, `call << 32 | index`: the produce call's id
/// in [`Self::calls`] and the record's position in the call. Nothing is allocated per record,
/// and the delivery thread touches no memory of the producing thread's but the result slots —
/// at hundreds of thousands of records a second that is what keeps eventline's producer level
/// with a bare rdkafka one.
pub(crate) struct DeliveryContext {
    max_message_bytes: usize,
    next_call: AtomicU32,
    calls: Mutex<HashMap<u32, Arc<Pending>, BuildHasherDefault<CallIdHasher>>>,
}

/// Call ids are already well spread (a counter): hash them as they are.
#[derive(Default)]
pub(crate) struct CallIdHasher(u64);

impl Hasher for CallIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

impl DeliveryContext {
    /// Registers a produce call; its delivery reports are routed to `pending` until the returned
    /// guard is dropped (also when the call is cancelled).
    pub fn register(self: &Arc<Self>, pending: Arc<Pending>) -> Registration {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.calls.lock().expect("produce calls lock").insert(id, pending);
        Registration { ctx: self.clone(), id }
    }
}

/// A produce call's entry in [`DeliveryContext::calls`].
pub(crate) struct Registration {
    ctx: Arc<DeliveryContext>,
    id: u32,
}

impl Registration {
    /// The delivery opaque of record `index` of this call.
    pub fn opaque(&self, index: usize) -> usize {
        ((self.id as usize) << 32) | index
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.ctx.calls.lock().expect("produce calls lock").remove(&self.id);
    }
}

/// Records per produce call: the index must fit the low half of the opaque.
pub(crate) const MAX_RECORDS_PER_CALL: usize = u32::MAX as usize;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, report: &DeliveryResult<'_>, opaque: usize) {
        let (call, index) = ((opaque >> 32) as u32, opaque & 0xffff_ffff);
        let result = match report {
            Ok(m) => Ok(RecordPosition {
                partition: m.partition() as u32,
                // acks=0: nothing comes back from the broker, so no offset.
                offset: u64::try_from(m.offset()).ok(),
            }),
            Err((e, m)) => {
                let size = m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                Err(produce_error(e, m.topic(), index, size, self.max_message_bytes))
            }
        };
        // A call that was cancelled has no entry any more; its reports go nowhere.
        if let Some(pending) = self.calls.lock().expect("produce calls lock").get(&call) {
            pending.complete(index, result);
        }
    }
}

/// Maps a produce failure onto the port's errors.
pub(crate) fn produce_error(e: &KafkaError, topic: &str, index: usize, size: usize, limit: usize) -> LogError {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => LogError::RecordTooLarge { index, size, limit },
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            LogError::UnknownTopic(topic.to_owned())
        }
        _ => backend(format!("producing record {index} to {topic} failed: {e}")),
    }
}

pub(crate) type Producer = ThreadedProducer<DeliveryContext>;

/// The lazily created producers.
#[derive(Default)]
pub(crate) struct Producers {
    by_settings: Mutex<HashMap<(Acks, Compression), Arc<Producer>>>,
}

impl Producers {
    pub fn get(&self, opts: &KafkaOptions, acks: Acks, compression: Compression) -> Result<Arc<Producer>> {
        let mut map = self.by_settings.lock().expect("producers lock");
        if let Some(p) = map.get(&(acks, compression)) {
            return Ok(p.clone());
        }
        let config = producer_config(opts, acks, compression);
        let ctx = DeliveryContext {
            max_message_bytes: opts.max_message_bytes,
            next_call: AtomicU32::new(0),
            calls: Mutex::new(HashMap::default()),
        };
        let producer = Producer::from_config_and_context(&config, ctx)
            .map_err(|e| backend(format!("cannot create a producer (acks={acks}, compression={compression}): {e}")))?;
        let producer = Arc::new(producer);
        map.insert((acks, compression), producer.clone());
        Ok(producer)
    }

    pub fn all(&self) -> Vec<Arc<Producer>> {
        self.by_settings.lock().expect("producers lock").values().cloned().collect()
    }
}
