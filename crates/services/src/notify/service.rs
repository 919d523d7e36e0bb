//! The notification service: consumer group `eventline-notify` on `compliance.alerts`.
//!
//! Taking in and delivering are apart. The consumer records each alert and one `pending`
//! delivery per channel its routes select (one transaction), and only then are the offsets
//! committed. A worker per channel sends what is due, `concurrency` at a time, and records each
//! outcome: delivered; failed → retried with exponential backoff and jitter; failed
//! `max_attempts` times → appended to `compliance.alerts.dlq` (headers name the channel and the
//! last error), then marked `dead`. A channel that is down only delays its own deliveries. After a
//! crash, deliveries in flight are still `pending` and are sent again with the same idempotency
//! key; delivered ones are not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

use async_trait::async_trait;
use bytes::Bytes;
use eventline_log::{EventLog, Header, OffsetReset, ProduceRecord, Record};
use eventline_model::events::ComplianceAlert;
use eventline_model::topics::{Acks, COMPLIANCE_ALERTS, dead_letter_topic};
use eventline_pipeline::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Outcome, RuntimeError};
use eventline_platform::db::Database;
use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use super::channel::Sender;
use super::config::Routing;
use super::store::{self, Attempt, Incoming};

/// The notification service's consumer group.
pub const NOTIFY_GROUP: &str = "eventline-notify";

/// Deliveries a worker takes per round.
const ROUND: usize = 512;

/// Per channel: attempts by outcome (for `eventline_notifications_total{channel,outcome}`).
#[derive(Debug, Default)]
pub struct ChannelCounters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
}

/// Counters of the running service.
#[derive(Debug, Default)]
pub struct NotifyCounters {
    pub taken_in: AtomicU64,
    pub channels: BTreeMap<String, ChannelCounters>,
}

/// Alerts → channels. See the module documentation.
#[derive(Clone)]
pub struct NotifyService {
    log: Arc<dyn EventLog>,
    db: Database,
    routing: Arc<Routing>,
    senders: Arc<Vec<Sender>>,
    group: String,
    counters: Arc<NotifyCounters>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for NotifyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyService").field("group", &self.group).field("senders", &self.senders).finish()
    }
}

struct TakeIn {
    db: Database,
    routing: Arc<Routing>,
    counters: Arc<NotifyCounters>,
    wake: Arc<Notify>,
}

#[async_trait]
impl Handler for TakeIn {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        let mut outcomes = Vec::with_capacity(records.len());
        let mut alerts = Vec::with_capacity(records.len());
        for r in records {
            let parsed = r.value_str().ok_or_else(|| "the record has no UTF-8 value".to_owned()).and_then(|body| {
                serde_json::from_str::<ComplianceAlert>(body)
                    .map(|alert| Incoming {
                        alert,
                        body: body.to_owned(),
                        traceparent: r
                            .header(eventline_pipeline::TRACEPARENT_HEADER)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .map(str::to_owned),
                    })
                    .map_err(|e| format!("not a compliance alert: {e}"))
            });
            match parsed {
                Ok(incoming) => {
                    alerts.push(incoming);
                    outcomes.push(Outcome::Done);
                }
                Err(reason) => outcomes.push(Outcome::Reject(reason)),
            }
        }
        if !alerts.is_empty() {
            let routing = self.routing.clone();
            let n = alerts.len() as u64;
            let now = chrono::Utc::now().timestamp_millis();
            let created =
                self.db.call(move |c| store::take_in(c, &alerts, &routing, now)).await.map_err(HandlerError::new)?;
            self.counters.taken_in.fetch_add(n, Ordering::Relaxed);
            if created > 0 {
                self.wake.notify_waiters();
            }
            metrics::counter!("eventline_notifications_taken_in_total").increment(n);
        }
        Ok(outcomes)
    }
}

impl NotifyService {
    /// Builds the channels' senders; fails naming the channel when one cannot be built.
    pub fn new(log: Arc<dyn EventLog>, db: Database, routing: Routing) -> Result<Self, String> {
        let senders: Vec<Sender> =
            routing.channels.iter().map(|c| Sender::new(c, routing.timeout)).collect::<Result<_, _>>()?;
        let counters = NotifyCounters {
            taken_in: AtomicU64::new(0),
            channels: routing.channels.iter().map(|c| (c.name.clone(), ChannelCounters::default())).collect(),
        };
        Ok(Self {
            log,
            db,
            routing: Arc::new(routing),
            senders: Arc::new(senders),
            group: NOTIFY_GROUP.to_owned(),
            counters: Arc::new(counters),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Uses consumer group `group` instead of [`NOTIFY_GROUP`].
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    pub fn counters(&self) -> Arc<NotifyCounters> {
        self.counters.clone()
    }

    /// The runtime this service runs on. A new group starts at the earliest alert the log still
    /// holds, so an alert raised while the group was being created is not lost (a deployment that
    /// adds notifications to a long-running log gets the retained alerts once; `coalesce` limits
    /// the flood).
    pub fn runtime(&self) -> ConsumerRuntime {
        ConsumerRuntime::new(
            self.log.clone(),
            ConsumerConfig::new(self.group.clone(), &[COMPLIANCE_ALERTS], OffsetReset::Earliest),
        )
    }

    /// Consumes and delivers until `stop` turns true; deliveries in flight finish first.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        self.run_on(self.runtime(), stop).await
    }

    /// Like [`NotifyService::run`], on `runtime` (whose counters someone else holds).
    pub async fn run_on(&self, runtime: ConsumerRuntime, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        tracing::info!(group = %self.group, channels = self.senders.len(), "notifications consuming {COMPLIANCE_ALERTS}");
        let workers: Vec<_> = (0..self.senders.len()).map(|i| self.deliver_loop(i, stop.clone())).collect();
        let take_in = TakeIn {
            db: self.db.clone(),
            routing: self.routing.clone(),
            counters: self.counters.clone(),
            wake: self.wake.clone(),
        };
        let (result, _) = tokio::join!(runtime.run(take_in, stop), futures_util::future::join_all(workers));
        result.map(|_| ())
    }

    /// Delivers what is due on channel `i` until stopped.
    async fn deliver_loop(&self, i: usize, mut stop: watch::Receiver<bool>) {
        let name = self.senders[i].name.clone();
        loop {
            if *stop.borrow() {
                return;
            }
            let sent = match self.deliver_round(i).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(channel = %name, error = %e, "notification delivery round failed");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            // Nothing due: sleep until the next retry is due or a new alert arrives.
            let wait = {
                let n = name.clone();
                let next = self.db.read(move |c| store::next_due(c, &n)).await.ok().and_then(Result::ok).flatten();
                let now = chrono::Utc::now().timestamp_millis();
                next.map_or(Duration::from_secs(1), |at| Duration::from_millis((at - now).clamp(5, 1000) as u64))
            };
            let woken = self.wake.notified();
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One round on channel `i`: sends up to [`ROUND`] due deliveries; returns how many.
    pub async fn deliver_round(&self, i: usize) -> Result<usize, String> {
        let sender = &self.senders[i];
        let name = sender.name.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let due = {
            let n = name.clone();
            self.db
                .read(move |c| store::due(c, &n, now, ROUND))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        };
        if due.is_empty() {
            return Ok(0);
        }
        let routing = &self.routing;
        let mut results = std::pin::pin!(
            futures_util::stream::iter(due.into_iter().map(|d| async move {
                // The delivery joins the trace of the request that raised the alert.
                let span =
                    tracing::info_span!("notification delivery", channel = %sender.name, attempt = d.attempts + 1);
                if let Some(tp) = &d.traceparent {
                    eventline_telemetry::set_parent(&span, tp);
                }
                let result = match serde_json::from_str::<ComplianceAlert>(&d.body) {
                    Ok(alert) => sender.send(&alert, &d.body).instrument(span).await,
                    Err(e) => Err(format!("the stored alert is not readable: {e}")),
                };
                (Taken { alert_id: d.alert_id, attempts: d.attempts, body: d.body }, result)
            }))
            .buffer_unordered(routing.concurrency)
            .ready_chunks(routing.concurrency)
        );
        // Outcomes are recorded as they come, while no new send starts: at any moment at most
        // `concurrency` sends are unrecorded, and only those are sent again after a crash.
        let mut sent = 0;
        while let Some(chunk) = results.next().await {
            sent += chunk.len();
            self.record_chunk(&name, chunk).await?;
        }
        Ok(sent)
    }

    /// Counts and records what became of `chunk`; those out of attempts go to the dead-letter
    /// topic first.
    async fn record_chunk(&self, name: &str, chunk: Vec<(Taken, Result<(), String>)>) -> Result<(), String> {
        let routing = &self.routing;
        let counters = self.counters.channels.get(name);
        let now = chrono::Utc::now().timestamp_millis();
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut dead = Vec::new();
        for (d, result) in chunk {
            let attempt = match result {
                Ok(()) => {
                    if let Some(c) = counters {
                        c.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    metrics::counter!("eventline_notifications_total", "channel" => name.to_owned(), "outcome" => "delivered")
                        .increment(1);
                    Attempt::Delivered
                }
                Err(error) => {
                    if let Some(c) = counters {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    metrics::counter!("eventline_notifications_total", "channel" => name.to_owned(), "outcome" => "failed")
                        .increment(1);
                    let tried = d.attempts + 1;
                    if tried >= routing.max_attempts {
                        dead.push(dead_letter(&d, name, &error, tried));
                        Attempt::Dead { error }
                    } else {
                        Attempt::Retry { at_ms: now + backoff(routing, tried).as_millis() as i64, error }
                    }
                }
            };
            outcomes.push((d.alert_id, attempt));
        }
        if !dead.is_empty() {
            let n = dead.len() as u64;
            // Into the dead-letter topic first: if that fails, they stay pending and are retried.
            if let Err(e) = self.log.produce(&dead_letter_topic(COMPLIANCE_ALERTS), dead, Acks::All).await {
                tracing::warn!(channel = %name, error = %e, "cannot append to the dead-letter topic; retrying later");
                for (_, a) in &mut outcomes {
                    if let Attempt::Dead { error } = a {
                        *a = Attempt::Retry {
                            error: error.clone(),
                            at_ms: now + routing.backoff_max.as_millis() as i64,
                        };
                    }
                }
            } else {
                if let Some(c) = counters {
                    c.dead_lettered.fetch_add(n, Ordering::Relaxed);
                }
                metrics::counter!("eventline_notifications_total", "channel" => name.to_owned(), "outcome" => "dead_lettered")
                    .increment(n);
            }
        }
        let name = name.to_owned();
        self.db.call(move |c| store::record(c, &name, &outcomes)).await.map_err(|e| e.to_string())
    }
}

struct Taken {
    alert_id: String,
    attempts: u32,
    body: String,
}

/// `backoff_min · 2^(attempt−1)`, at most `backoff_max`, times a random factor in [0.5, 1].
fn backoff(routing: &Routing, attempt: u32) -> Duration {
    let base = routing.backoff_min.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(routing.backoff_max);
    base.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

fn dead_letter(d: &Taken, channel: &str, error: &str, attempts: u32) -> ProduceRecord {
    let header = |name: &str, value: String| Header { key: name.to_owned(), value: Some(Bytes::from(value)) };
    ProduceRecord {
        key: Some(Bytes::from(d.alert_id.clone())),
        value: Some(Bytes::from(d.body.clone())),
        headers: vec![
            header("eventline.dlq.error", error.to_owned()),
            header("eventline.dlq.topic", COMPLIANCE_ALERTS.to_owned()),
            header("eventline.dlq.group", NOTIFY_GROUP.to_owned()),
            header("eventline.dlq.channel", channel.to_owned()),
            header("eventline.dlq.attempts", attempts.to_string()),
        ],
        timestamp: None,
        partition: None,
    }
}
