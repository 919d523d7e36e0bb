//! The analytics service: consumer group `eventline-analytics` on `agent.executions` and
//! `compliance.alerts`. State is in memory; on start (and when a partition is assigned) each
//! partition is read again from the start of the longest window (the log's offset for
//! now − 1 h − 10 s), so a restart rebuilds the windows from the log; a record already counted
//! in this process is never counted twice. Per-topic rates come from the log itself: the records
//! appended within the window (end offset − offset for the window's start time), per second.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use eventline_log::{EventLog, LogError, OffsetReset, Record};
use eventline_model::topics::{AGENT_EXECUTIONS, COMPLIANCE_ALERTS};
use eventline_pipeline::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Outcome, RuntimeError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::window::{Aggregator, BUCKET_MS, LONGEST_MS, Status, Window, WindowFigures};

/// The analytics service's consumer group.
pub const ANALYTICS_GROUP: &str = "eventline-analytics";

#[derive(Deserialize)]
struct Execution<'a> {
    #[serde(borrow)]
    agent_id: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    duration_ms: u64,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    alert_type: Cow<'a, str>,
    #[serde(borrow)]
    severity: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

/// Milliseconds since the epoch of an RFC 3339 time; the common `YYYY-MM-DDTHH:MM:SS(.fff)Z` form
/// without a general parser.
pub fn parse_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let simple = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[b.len() - 1] == b'Z';
    if simple {
        let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (h, mi, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let frac = match b[19] {
            b'Z' if b.len() == 20 => 0,
            b'.' => {
                let f = &text[20..text.len() - 1];
                let n = digits(20..20 + f.len().min(3))?;
                (0..3usize.saturating_sub(f.len())).fold(n, |acc, _| acc * 10)
            }
            _ => return chrono_millis(text),
        };
        if mo == 0 || mo > 12 || d == 0 || d > 31 || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        // Days since the epoch (civil from days, Howard Hinnant).
        let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * m2 + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        return Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + frac);
    }
    chrono_millis(text)
}

fn chrono_millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// How far an event's own time may run ahead of the log's before the log's time is used (a
/// caller-chosen timestamp in the future must not push every window past the present).
pub const MAX_AHEAD_MS: i64 = 300_000;

fn event_time(text: &str, log_ms: i64) -> i64 {
    parse_millis(text).filter(|t| *t <= log_ms + MAX_AHEAD_MS).unwrap_or(log_ms)
}

/// Feeds one record to `agg`. Returns why a record is not a valid execution or alert.
pub fn observe(agg: &mut Aggregator, r: &Record) -> Result<(), String> {
    if !agg.first_time(&r.topic, r.partition, r.offset) {
        return Ok(());
    }
    let value = r.value.as_deref().ok_or("the record has no value")?;
    if &*r.topic == COMPLIANCE_ALERTS {
        let a: Alert = serde_json::from_slice(value).map_err(|e| format!("not a compliance alert: {e}"))?;
        let at = event_time(&a.timestamp, r.timestamp);
        agg.alert(&a.alert_type, &a.severity, at);
        return Ok(());
    }
    let e: Execution = serde_json::from_slice(value).map_err(|e| format!("not an agent execution: {e}"))?;
    let status = match &*e.status {
        "completed" => Status::Completed,
        "failed" => Status::Failed,
        "rejected" => Status::Rejected,
        other => return Err(format!("unknown status `{other}`")),
    };
    let at = event_time(&e.timestamp, r.timestamp);
    agg.execution(&e.agent_id, status, e.duration_ms, at);
    Ok(())
}

/// The rate of one topic over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopicRate {
    pub topic: String,
    pub events: u64,
    pub events_per_s: f64,
}

/// One window of the report: the aggregation's figures and the topics' rates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub figures: WindowFigures,
    pub topics: Vec<TopicRate>,
}

/// Records appended to each topic since `since_ms`, and the rate over `now − since`.
pub async fn topic_rates(log: &dyn EventLog, since_ms: i64, now_ms: i64) -> Result<Vec<TopicRate>, LogError> {
    let mut out = Vec::new();
    let secs = ((now_ms - since_ms) as f64 / 1000.0).max(1.0);
    for t in log.list_topics().await? {
        let name = t.spec.name.clone();
        let mut events = 0;
        for p in &t.partitions {
            let from = log.offset_for_time(&name, p.partition, since_ms).await?;
            events += p.end_offset.saturating_sub(from.max(p.start_offset));
        }
        out.push(TopicRate { topic: name, events, events_per_s: (events as f64 / secs * 100.0).round() / 100.0 });
    }
    Ok(out)
}

/// Executions and alerts → windows. See the module documentation.
#[derive(Clone)]
pub struct AnalyticsService {
    log: Arc<dyn EventLog>,
    state: Arc<Mutex<Aggregator>>,
    group: String,
}

impl std::fmt::Debug for AnalyticsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsService").field("group", &self.group).finish()
    }
}

struct Counting {
    log: Arc<dyn EventLog>,
    state: Arc<Mutex<Aggregator>>,
}

#[async_trait]
impl Handler for Counting {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        let mut agg = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(records
            .iter()
            .map(|r| match observe(&mut agg, r) {
                Ok(()) => Outcome::Done,
                Err(reason) => Outcome::Reject(reason),
            })
            .collect())
    }

    async fn on_assign(&mut self, partitions: &[(String, u32)]) -> Result<Vec<(String, u32, u64)>, HandlerError> {
        // From the start of the longest window, or after what this process already counted.
        let from_ms = chrono::Utc::now().timestamp_millis() - LONGEST_MS - BUCKET_MS;
        let mut seeks = Vec::new();
        for (topic, partition) in partitions {
            let at = self.log.offset_for_time(topic, *partition, from_ms).await.map_err(HandlerError::new)?;
            let counted = self.state.lock().unwrap_or_else(|p| p.into_inner()).counted(topic, *partition);
            let at = counted.map_or(at, |c| at.max(c + 1));
            seeks.push((topic.clone(), *partition, at));
        }
        Ok(seeks)
    }
}

impl AnalyticsService {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        let started = chrono::Utc::now().timestamp_millis();
        Self { log, state: Arc::new(Mutex::new(Aggregator::new(started))), group: ANALYTICS_GROUP.to_owned() }
    }

    /// Uses consumer group `group` instead of [`ANALYTICS_GROUP`].
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// The runtime this service runs on.
    pub fn runtime(&self) -> ConsumerRuntime {
        ConsumerRuntime::new(
            self.log.clone(),
            ConsumerConfig::new(self.group.clone(), &[AGENT_EXECUTIONS, COMPLIANCE_ALERTS], OffsetReset::Earliest),
        )
    }

    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        self.run_on(self.runtime(), stop).await
    }

    pub async fn run_on(&self, runtime: ConsumerRuntime, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        tracing::info!(group = %self.group, "analytics consuming {AGENT_EXECUTIONS}, {COMPLIANCE_ALERTS}");
        runtime.run(Counting { log: self.log.clone(), state: self.state.clone() }, stop).await.map(|_| ())
    }

    /// The report of `window` now.
    pub async fn report(&self, window: Window) -> Result<Report, LogError> {
        let now = chrono::Utc::now().timestamp_millis();
        let (figures, started) = {
            let agg = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (agg.figures(window, now), agg.started_ms())
        };
        let since = window.millis().map_or(started, |len| now - len);
        Ok(Report { figures, topics: topic_rates(&*self.log, since, now).await? })
    }
}

/// The report of `window` computed from the log alone (no running service): executions and
/// alerts of the last hour are read and aggregated; "all" then means that hour.
pub async fn report_from_log(log: &dyn EventLog, window: Window) -> Result<Report, LogError> {
    let now = chrono::Utc::now().timestamp_millis();
    let from = now - LONGEST_MS - BUCKET_MS;
    let mut agg = Aggregator::new(from);
    for topic in [AGENT_EXECUTIONS, COMPLIANCE_ALERTS] {
        let d = match log.describe_topic(topic).await {
            Ok(d) => d,
            Err(LogError::UnknownTopic(_)) => continue,
            Err(e) => return Err(e),
        };
        for p in &d.partitions {
            let mut at = log.offset_for_time(topic, p.partition, from).await?;
            loop {
                let batch = log.fetch(topic, p.partition, at, 5000).await?;
                let Some(last) = batch.last() else { break };
                at = last.offset + 1;
                for r in &batch {
                    let _ = observe(&mut agg, r);
                }
            }
        }
    }
    let figures = agg.figures(window, now);
    let since = window.millis().map_or(from, |len| now - len);
    Ok(Report { figures, topics: topic_rates(log, since, now).await? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_fast_and_like_chrono() {
        for t in [
            "2026-11-30T17:00:00.123Z",
            "2026-11-30T17:00:00Z",
            "2026-02-28T23:59:59.5Z",
            "1999-12-31T00:00:00.000001Z",
            "2026-11-30T18:00:00.123+01:00",
            "2024-02-29T12:00:00.000Z",
        ] {
            assert_eq!(parse_millis(t), chrono_millis(t), "{t}");
        }
        assert_eq!(parse_millis("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_millis("yesterday"), None);
    }
}
