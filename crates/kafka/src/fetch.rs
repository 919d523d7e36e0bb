//! Reads of one partition from an offset: a small pool of group-less consumers, each assigned
//! (not subscribed) to the partition it reads. A consumer that stopped at offset N stays
//! assigned, so the next read from N continues with what librdkafka already prefetched instead
//! of starting over — a reader walking a partition in chunks streams it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use eventline_log::{LogError, Record, Result};
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::backend;
use crate::log::TopicNames;
use crate::{KafkaOptions, record_from};

/// At most this many idle readers are kept.
const POOL: usize = 4;
/// Once records arrived, a read returns after this long without more.
const IDLE: Duration = Duration::from_millis(150);
/// How long a read waits when nothing arrives and the end is not reported.
const WAIT: Duration = Duration::from_secs(2);

/// Reaching the end of a partition is how a read ends, not an error worth a log line.
pub(crate) struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for ReaderContext {}

struct Reader {
    consumer: BaseConsumer<ReaderContext>,
    /// Topic, partition and the next offset this reader will deliver.
    at: Option<(String, u32, u64)>,
}

pub(crate) struct Fetchers {
    opts: KafkaOptions,
    idle: Mutex<Vec<Reader>>,
}

impl Fetchers {
    pub fn new(opts: KafkaOptions) -> Self {
        Self { opts, idle: Mutex::new(Vec::new()) }
    }

    fn take(&self, topic: &str, partition: u32, offset: u64) -> Result<Reader> {
        let mut idle = self.idle.lock().expect("readers lock");
        if let Some(i) = idle
            .iter()
            .position(|r| r.at.as_ref().is_some_and(|(t, p, o)| t == topic && *p == partition && *o == offset))
        {
            return Ok(idle.swap_remove(i));
        }
        if let Some(r) = idle.pop() {
            return Ok(r);
        }
        drop(idle);
        let mut c = self.opts.base_config();
        // librdkafka wants a group id even for assign(); this one is never joined or committed.
        c.set("group.id", "eventline-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // Reading outside the partition is the caller's error, not a reason to jump.
            .set("auto.offset.reset", "error")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", self.opts.fetch_wait.as_millis().to_string());
        let consumer = BaseConsumer::from_config_and_context(&self.opts.finish(c), ReaderContext)
            .map_err(|e| backend(format!("cannot create a reader: {e}")))?;
        Ok(Reader { consumer, at: None })
    }

    /// Pools a reader. One that reached the end of its partition is paused, so an idle reader
    /// sends no fetches (resuming restarts fetching where it delivered up to); one that stopped
    /// because the caller had enough keeps prefetching for the next read.
    fn give_back(&self, reader: Reader, at_end: bool) {
        if at_end && let Ok(assigned) = reader.consumer.assignment() {
            let _ = reader.consumer.pause(&assigned);
        }
        let mut idle = self.idle.lock().expect("readers lock");
        if idle.len() < POOL {
            idle.push(reader);
        }
    }

    /// Drops readers positioned on `topic` (it was deleted).
    pub fn forget(&self, topic: &str) {
        self.idle.lock().expect("readers lock").retain(|r| r.at.as_ref().is_none_or(|(t, _, _)| t != topic));
    }

    /// Blocking: up to `max` records of `topic`/`partition` from `offset` on.
    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
        names: &TopicNames,
    ) -> Result<Vec<Record>> {
        let mut reader = self.take(topic, partition, offset)?;
        let positioned = reader.at.as_ref().is_some_and(|(t, p, o)| t == topic && *p == partition && *o == offset);
        if !positioned {
            reader.at = None;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition as i32, Offset::Offset(offset as i64))
                .map_err(|e| backend(e.to_string()))?;
            reader.consumer.assign(&tpl).map_err(|e| backend(format!("assign {topic}/{partition}: {e}")))?;
        }
        if let Ok(assigned) = reader.consumer.assignment() {
            // Harmless when not paused.
            let _ = reader.consumer.resume(&assigned);
        }
        let name = names.get(topic);
        let mut out: Vec<Record> = Vec::new();
        let started = Instant::now();
        let mut last_arrival = started;
        let mut next = offset;
        while out.len() < max {
            let now = Instant::now();
            let budget = if out.is_empty() {
                WAIT.saturating_sub(now - started)
            } else {
                IDLE.saturating_sub(now - last_arrival)
            };
            if budget.is_zero() {
                break;
            }
            match reader.consumer.poll(budget.min(Duration::from_millis(50))) {
                None => {}
                Some(Ok(m)) => {
                    last_arrival = Instant::now();
                    // A compressed batch can start before the requested offset.
                    if m.offset() < next as i64 {
                        continue;
                    }
                    next = m.offset() as u64 + 1;
                    out.push(record_from(&m, name.clone()));
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) if is_out_of_range(&e) => {
                    let (start, end) = reader
                        .consumer
                        .fetch_watermarks(topic, partition as i32, self.opts.request_timeout)
                        .map(|(lo, hi)| (lo.max(0) as u64, hi.max(0) as u64))
                        .unwrap_or((0, 0));
                    // The reader's position is unusable now: drop it.
                    return Err(LogError::OffsetOutOfRange { topic: topic.to_owned(), partition, offset, start, end });
                }
                Some(Err(e)) => {
                    tracing::warn!(topic, partition, error = %e, "fetch error");
                    if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                        return Err(backend(format!("reading {topic}/{partition}: {e}")));
                    }
                }
            }
        }
        reader.at = Some((topic.to_owned(), partition, next));
        let at_end = out.len() < max;
        self.give_back(reader, at_end);
        Ok(out)
    }
}

fn is_out_of_range(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset))
}
