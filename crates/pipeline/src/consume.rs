//! The consumer runtime: the one way a service reads the log, on either backend.
//!
//! A [`ConsumerRuntime`] is one member of a consumer group. Its loop:
//!
//! 1. **poll** a batch from the partitions the member owns;
//! 2. tell the [`Handler`] about partitions that moved: [`Handler::on_revoke`] (abandon work in
//!    flight for them — its offsets can no longer be committed, and the next owner starts at the
//!    last committed offset) and [`Handler::on_assign`] (it may answer with positions to seek to);
//! 3. **handle** the batch: each record ends [`Outcome::Done`], [`Outcome::Deferred`] (buffered;
//!    done once [`Handler::flush`] says so), [`Outcome::Retry`] (retried with exponential backoff
//!    and jitter, up to `max_attempts`) or [`Outcome::Reject`]; a rejected record, or one still
//!    failing after its last attempt, goes to `<topic>.dlq` with headers naming the error, the
//!    source topic, partition and offset, the group and the attempts;
//! 4. **commit** per partition the offset after the last record that is done (never past a
//!    deferred one). A commit refused because the group moved on ([`LogError::Fenced`]) is not
//!    an error: the records are delivered again to their new owner (at-least-once).
//!
//! When `stop` turns true the batch in hand is finished, deferred work flushed, the offsets
//! committed, and the member leaves the group. A handler error for a whole batch
//! ([`HandlerError`]) is retried with backoff too; after `max_attempts` the runtime stops with it,
//! committing nothing of that batch. Counters ([`ConsumerStats`]) are shared for `/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use eventline_log::{EventLog, GroupConsumer, LogError, OffsetReset, ProduceRecord, Record};
use eventline_model::topics::{Acks, DLQ_SUFFIX, TopicSpec, dead_letter_topic};
use tokio::sync::watch;

/// Headers of a dead-lettered record (the original record's key, value and headers are kept).
pub const DLQ_ERROR_HEADER: &str = "eventline.dlq.error";
pub const DLQ_TOPIC_HEADER: &str = "eventline.dlq.topic";
pub const DLQ_PARTITION_HEADER: &str = "eventline.dlq.partition";
pub const DLQ_OFFSET_HEADER: &str = "eventline.dlq.offset";
pub const DLQ_GROUP_HEADER: &str = "eventline.dlq.group";
pub const DLQ_ATTEMPTS_HEADER: &str = "eventline.dlq.attempts";

/// What became of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: its offset may be committed.
    Done,
    /// Buffered by the handler: finished once [`Handler::flush`] returns `true`.
    Deferred,
    /// Failed for now (a receiver down, a lock): try again after a backoff.
    Retry(String),
    /// Can never succeed (not a valid event): to the dead-letter topic at once.
    Reject(String),
}

impl Outcome {
    /// `done`, `deferred`, `retry` or `reject`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Deferred => "deferred",
            Outcome::Retry(_) => "retry",
            Outcome::Reject(_) => "reject",
        }
    }
}

/// A failure of the whole batch (the database is gone): retried, then the runtime stops.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A service's logic, driven by the runtime.
#[async_trait]
pub trait Handler: Send + 'static {
    /// Handles `records` (each partition's in offset order); returns one outcome per record, in
    /// order. Called again with the records that asked to be retried.
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError>;

    /// Makes deferred records durable. `force` is true before a shutdown and after a revoke;
    /// otherwise the handler may wait (a file that is not full yet). Returns whether nothing is
    /// deferred any more.
    async fn flush(&mut self, _force: bool) -> Result<bool, HandlerError> {
        Ok(true)
    }

    /// Partitions this member now owns. Returns positions to start from instead of the committed
    /// offsets (a service that rebuilds state by replaying a time window).
    async fn on_assign(&mut self, _partitions: &[(String, u32)]) -> Result<Vec<(String, u32, u64)>, HandlerError> {
        Ok(Vec::new())
    }

    /// Partitions this member no longer owns: drop what is deferred for them.
    async fn on_revoke(&mut self, _partitions: &[(String, u32)]) {}
}

/// How a runtime consumes.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// Where to start on a partition without a committed offset: each service says so.
    pub reset: OffsetReset,
    /// Records per poll.
    pub batch: usize,
    /// How long a poll waits for the first record (and how soon a stop is seen).
    pub poll_wait: Duration,
    /// Tries per record (and per failing batch) before it is dead-lettered (the runtime stops).
    pub max_attempts: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl ConsumerConfig {
    pub fn new(group: impl Into<String>, topics: &[&str], reset: OffsetReset) -> Self {
        Self {
            group: group.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            reset,
            batch: 500,
            poll_wait: Duration::from_millis(200),
            max_attempts: 5,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.backoff_min)
            .with_max_delay(self.backoff_max)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1))
            .build()
    }
}

/// Counters of one runtime, readable while it runs.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Records finished (including deferred ones once flushed).
    pub processed: AtomicU64,
    /// Retries of records and of failing batches.
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Commits refused because the group moved on.
    pub fenced: AtomicU64,
    /// Records between the committed offsets and the ends of the member's partitions, as of its
    /// last commit.
    pub lag: AtomicU64,
}

/// A snapshot of [`ConsumerStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub processed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub fenced: u64,
    pub lag: u64,
}

impl ConsumerStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            processed: self.processed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            fenced: self.fenced.load(Ordering::Relaxed),
            lag: self.lag.load(Ordering::Relaxed),
        }
    }
}

/// Why a runtime stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("group {group}: the log: {source}")]
    Log {
        group: String,
        #[source]
        source: LogError,
    },
    #[error("group {group}: the handler failed {attempts} times: {source}")]
    Handler {
        group: String,
        attempts: usize,
        #[source]
        source: HandlerError,
    },
}

/// Progress of one partition within the current batch.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// Offset after the last record handled.
    seen: Option<u64>,
    /// First record deferred and not yet flushed.
    deferred_from: Option<u64>,
}

impl Progress {
    /// Notes that the record at `offset` is handled (records of a batch finish out of order when
    /// some are retried; the batch is committed once all are).
    fn done_through(&mut self, offset: u64) {
        self.seen = Some(self.seen.map_or(offset + 1, |s| s.max(offset + 1)));
    }
}

/// One member of a consumer group running a [`Handler`].
pub struct ConsumerRuntime {
    log: Arc<dyn EventLog>,
    config: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    lag_checked: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for ConsumerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRuntime")
            .field("group", &self.config.group)
            .field("topics", &self.config.topics)
            .finish()
    }
}

type Key = (String, u32);

/// Runs a whole-batch step of the handler, retrying a [`HandlerError`] with backoff; after the
/// last attempt the runtime stops with it.
macro_rules! retrying {
    ($self:ident, $step:expr) => {{
        let mut backoff = $self.config.backoff();
        let mut attempts = 1;
        loop {
            match $step.await {
                Ok(v) => break v,
                Err(e) => match backoff.next() {
                    Some(wait) => {
                        $self.stats.retried.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(group = %$self.config.group, attempt = attempts, error = %e, "handler failed; retrying");
                        tokio::time::sleep(wait).await;
                        attempts += 1;
                    }
                    None => {
                        return Err(RuntimeError::Handler { group: $self.config.group.clone(), attempts, source: e });
                    }
                },
            }
        }
    }};
}

impl ConsumerRuntime {
    pub fn new(log: Arc<dyn EventLog>, config: ConsumerConfig) -> Self {
        Self { log, config, stats: Arc::default(), lag_checked: Default::default() }
    }

    /// The counters, shared with whoever exports them.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    fn log_err(&self, source: LogError) -> RuntimeError {
        RuntimeError::Log { group: self.config.group.clone(), source }
    }

    /// Runs `handler` until `stop` turns true (then finishes, commits and leaves the group).
    pub async fn run<H: Handler>(&self, mut handler: H, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        for topic in &self.config.topics {
            if topic.ends_with(DLQ_SUFFIX) {
                continue;
            }
            let spec = match self.log.describe_topic(topic).await {
                Ok(d) => d.spec.dead_letter(),
                Err(_) => TopicSpec::new(topic.as_str()).dead_letter(),
            };
            self.log.ensure_topic(&spec).await.map_err(|e| self.log_err(e))?;
        }
        let mut consumer = self
            .log
            .subscribe(&self.config.group, &self.config.topics, self.config.reset)
            .await
            .map_err(|e| self.log_err(e))?;
        tracing::info!(group = %self.config.group, topics = ?self.config.topics, "consumer started");
        let mut progress = BTreeMap::new();
        let result = self.consume(&mut *consumer, &mut handler, &stop, &mut progress).await;
        // Finish what is in hand: flush what is deferred and commit, also after an error (what
        // is done stays done).
        let finish = self.process(&mut *consumer, &mut handler, Vec::new(), &mut progress, true).await;
        if let Err(e) = consumer.close().await {
            tracing::warn!(group = %self.config.group, error = %e, "leaving the group failed");
        }
        tracing::info!(group = %self.config.group, stats = ?self.stats.snapshot(), "consumer stopped");
        result.and(finish)
    }

    async fn consume<H: Handler>(
        &self,
        consumer: &mut dyn GroupConsumer,
        handler: &mut H,
        stop: &watch::Receiver<bool>,
        progress: &mut BTreeMap<Key, Progress>,
    ) -> Result<(), RuntimeError> {
        while !*stop.borrow() {
            let records = consumer.poll(self.config.batch, self.config.poll_wait).await.map_err(|e| self.log_err(e))?;
            if let Some(moved) = consumer.take_rebalance() {
                if !moved.revoked.is_empty() {
                    tracing::info!(group = %self.config.group, revoked = ?moved.revoked, "partitions revoked");
                    handler.on_revoke(&moved.revoked).await;
                    progress.retain(|k, _| !moved.revoked.contains(k));
                }
                if !moved.assigned.is_empty() {
                    tracing::info!(group = %self.config.group, assigned = ?moved.assigned, "partitions assigned");
                    let seeks = retrying!(self, handler.on_assign(&moved.assigned));
                    if !seeks.is_empty() {
                        for (t, p, o) in &seeks {
                            consumer.seek(t, *p, *o).await.map_err(|e| self.log_err(e))?;
                        }
                        // What this poll returned for those partitions comes again from the seek.
                        let moved_to: Vec<Key> = seeks.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
                        let records: Vec<Record> = records
                            .into_iter()
                            .filter(|r| !moved_to.iter().any(|(t, p)| **t == *r.topic && *p == r.partition))
                            .collect();
                        self.process(consumer, handler, records, progress, false).await?;
                        continue;
                    }
                }
            }
            self.process(consumer, handler, records, progress, false).await?;
        }
        Ok(())
    }

    /// Handles one batch, flushes what the handler is ready to flush, and commits.
    async fn process<H: Handler>(
        &self,
        consumer: &mut dyn GroupConsumer,
        handler: &mut H,
        records: Vec<Record>,
        progress: &mut BTreeMap<Key, Progress>,
        force_flush: bool,
    ) -> Result<(), RuntimeError> {
        if !records.is_empty() {
            self.handle_batch(handler, records, progress).await?;
        }
        if progress.values().any(|p| p.deferred_from.is_some()) {
            let flushed = retrying!(self, handler.flush(force_flush));
            if flushed {
                for p in progress.values_mut() {
                    p.deferred_from = None;
                }
            }
        }
        self.commit(consumer, progress).await
    }

    async fn handle_batch<H: Handler>(
        &self,
        handler: &mut H,
        records: Vec<Record>,
        progress: &mut BTreeMap<Key, Progress>,
    ) -> Result<(), RuntimeError> {
        let mut pending = records;
        let mut backoff = self.config.backoff();
        let mut attempt = 1;
        loop {
            // Each traced record's processing joins its producer's trace (one span per record,
            // as long as the batch it came in).
            let spans = self.record_spans(&pending);
            let outcomes = retrying!(self, handler.handle(&pending));
            for (span, outcome) in spans.iter().zip(&outcomes) {
                if let Some(span) = span {
                    span.record("outcome", outcome.label());
                }
            }
            drop(spans);
            let mut ok: std::collections::HashMap<Arc<str>, u64> = std::collections::HashMap::new();
            let mut retry = Vec::new();
            let mut last_errors = Vec::new();
            for (record, outcome) in
                pending.into_iter().zip(outcomes.into_iter().chain(std::iter::repeat(Outcome::Reject(
                    "the handler returned no outcome for this record".into(),
                ))))
            {
                let key = (record.topic.to_string(), record.partition);
                match outcome {
                    Outcome::Done => {
                        self.stats.processed.fetch_add(1, Ordering::Relaxed);
                        *ok.entry(record.topic.clone()).or_default() += 1;
                        progress.entry(key).or_default().done_through(record.offset);
                    }
                    Outcome::Deferred => {
                        *ok.entry(record.topic.clone()).or_default() += 1;
                        let p = progress.entry(key).or_default();
                        p.done_through(record.offset);
                        p.deferred_from = Some(p.deferred_from.map_or(record.offset, |d| d.min(record.offset)));
                    }
                    Outcome::Reject(reason) => {
                        self.dead_letter(&record, &reason, attempt).await?;
                        progress.entry(key).or_default().done_through(record.offset);
                    }
                    Outcome::Retry(reason) => {
                        last_errors.push(reason);
                        retry.push(record);
                    }
                }
            }
            for (topic, n) in ok {
                metrics::counter!("eventline_consumer_processed_total", "group" => self.config.group.clone(), "topic" => topic.to_string(), "outcome" => "ok").increment(n);
            }
            if retry.is_empty() {
                return Ok(());
            }
            match backoff.next() {
                Some(wait) => {
                    self.stats.retried.fetch_add(retry.len() as u64, Ordering::Relaxed);
                    for r in &retry {
                        metrics::counter!("eventline_consumer_processed_total", "group" => self.config.group.clone(), "topic" => r.topic.to_string(), "outcome" => "retried").increment(1);
                    }
                    tracing::warn!(group = %self.config.group, records = retry.len(), attempt, wait_ms = wait.as_millis() as u64,
                        error = %last_errors[0], "records failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    pending = retry;
                }
                None => {
                    for (record, reason) in retry.iter().zip(last_errors) {
                        self.dead_letter(record, &reason, attempt).await?;
                        progress
                            .entry((record.topic.to_string(), record.partition))
                            .or_default()
                            .done_through(record.offset);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// A span per record that carries a `traceparent`, child of it; none when spans are not exported.
    fn record_spans(&self, records: &[Record]) -> Vec<Option<tracing::Span>> {
        if !eventline_telemetry::exporting() {
            return Vec::new();
        }
        records
            .iter()
            .map(|r| {
                let tp = r
                    .header(crate::TRACEPARENT_HEADER)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .filter(|tp| eventline_telemetry::sampled(tp))?;
                let span = tracing::info_span!(
                    "consume",
                    otel.name = %format!("{} process {}", self.config.group, r.topic),
                    otel.kind = "consumer",
                    messaging.consumer.group.name = %self.config.group,
                    messaging.destination.name = %r.topic,
                    messaging.destination.partition.id = r.partition,
                    messaging.kafka.offset = r.offset,
                    outcome = tracing::field::Empty,
                );
                eventline_telemetry::set_parent(&span, tp);
                Some(span)
            })
            .collect()
    }

    async fn dead_letter(&self, record: &Record, reason: &str, attempts: usize) -> Result<(), RuntimeError> {
        let topic = dead_letter_topic(&record.topic);
        tracing::warn!(group = %self.config.group, topic = %record.topic, partition = record.partition,
            offset = record.offset, error = %reason, "record sent to {topic}");
        let mut out = ProduceRecord {
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record.headers.clone(),
            timestamp: Some(record.timestamp),
            partition: None,
        };
        for (name, value) in [
            (DLQ_ERROR_HEADER, reason.to_owned()),
            (DLQ_TOPIC_HEADER, record.topic.to_string()),
            (DLQ_PARTITION_HEADER, record.partition.to_string()),
            (DLQ_OFFSET_HEADER, record.offset.to_string()),
            (DLQ_GROUP_HEADER, self.config.group.clone()),
            (DLQ_ATTEMPTS_HEADER, attempts.to_string()),
        ] {
            out.headers.push(eventline_log::Header::new(name, Bytes::from(value)));
        }
        self.log.produce(&topic, vec![out], Acks::All).await.map_err(|e| self.log_err(e))?;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("eventline_consumer_processed_total", "group" => self.config.group.clone(), "topic" => record.topic.to_string(), "outcome" => "dead_lettered").increment(1);
        Ok(())
    }

    /// Commits, per partition, the offset after the last record done (not past a deferred one).
    async fn commit(
        &self,
        consumer: &mut dyn GroupConsumer,
        progress: &mut BTreeMap<Key, Progress>,
    ) -> Result<(), RuntimeError> {
        let offsets: Vec<(String, u32, u64)> = progress
            .iter()
            .filter_map(|((t, p), pr)| pr.deferred_from.or(pr.seen).map(|o| (t.clone(), *p, o)))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        match consumer.commit_offsets(&offsets).await {
            Ok(()) => {
                progress.retain(|_, pr| pr.deferred_from.is_some());
                self.update_lag(consumer).await;
                Ok(())
            }
            Err(LogError::Fenced { reason, .. }) => {
                // The group moved on: the new owners start at the last committed offsets.
                self.stats.fenced.fetch_add(1, Ordering::Relaxed);
                tracing::info!(group = %self.config.group, reason = %reason, "commit fenced; records go again to their new owner");
                let owned = consumer.assignment();
                progress.retain(|k, _| owned.contains(k));
                Ok(())
            }
            Err(e) => Err(self.log_err(e)),
        }
    }

    async fn update_lag(&self, consumer: &mut dyn GroupConsumer) {
        {
            let mut last = self.lag_checked.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let mut lag = 0;
        for (t, p) in consumer.assignment() {
            if let (Ok((_, end)), Ok(c)) =
                (self.log.watermarks(&t, p).await, self.log.committed(&self.config.group, &t, p).await)
            {
                lag += end.saturating_sub(c.unwrap_or(0));
            }
        }
        self.stats.lag.store(lag, Ordering::Relaxed);
    }
}
