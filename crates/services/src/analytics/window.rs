//! The aggregation: per agent, executions by status and an HDR latency histogram, and compliance
//! alerts by type and severity, in 10-second buckets of event time, so that the 1 min, 5 min and
//! 1 h windows are sums of whole buckets (windows are aligned to 10 s), plus the totals since the
//! service started.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Width of a bucket.
pub const BUCKET_MS: i64 = 10_000;
/// The longest window: older buckets are dropped.
pub const LONGEST_MS: i64 = 3_600_000;
/// Latencies above this (1 h) are recorded as this.
const MAX_LATENCY_MS: u64 = 3_600_000;

/// A window of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Window {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
    /// Since the service started.
    #[serde(rename = "all")]
    All,
}

impl Window {
    pub const EVERY: [Window; 4] = [Window::OneMinute, Window::FiveMinutes, Window::OneHour, Window::All];

    pub fn parse(text: &str) -> Result<Window, String> {
        match text {
            "1m" => Ok(Window::OneMinute),
            "5m" => Ok(Window::FiveMinutes),
            "1h" => Ok(Window::OneHour),
            "all" => Ok(Window::All),
            _ => Err(format!("`{text}` is not a window: use 1m, 5m, 1h or all")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::OneHour => "1h",
            Window::All => "all",
        }
    }

    /// Its length, `None` for since-start.
    pub fn millis(self) -> Option<i64> {
        match self {
            Window::OneMinute => Some(60_000),
            Window::FiveMinutes => Some(300_000),
            Window::OneHour => Some(LONGEST_MS),
            Window::All => None,
        }
    }
}

/// How an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Completed,
    Failed,
    Rejected,
}

#[derive(Clone, Debug)]
struct AgentStats {
    completed: u64,
    failed: u64,
    rejected: u64,
    latency: Histogram<u64>,
}

impl AgentStats {
    fn new() -> Self {
        Self {
            completed: 0,
            failed: 0,
            rejected: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_MS, 3).expect("valid histogram bounds"),
        }
    }

    fn record(&mut self, status: Status, duration_ms: u64) {
        match status {
            Status::Completed => self.completed += 1,
            Status::Failed => self.failed += 1,
            Status::Rejected => self.rejected += 1,
        }
        self.latency.saturating_record(duration_ms.min(MAX_LATENCY_MS));
    }

    fn add(&mut self, other: &AgentStats) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.rejected += other.rejected;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    agents: BTreeMap<String, AgentStats>,
    alerts: BTreeMap<(String, String), u64>,
}

impl Bucket {
    fn agent(&mut self, agent: &str) -> &mut AgentStats {
        if !self.agents.contains_key(agent) {
            self.agents.insert(agent.to_owned(), AgentStats::new());
        }
        self.agents.get_mut(agent).expect("inserted above")
    }

    fn add(&mut self, other: &Bucket) {
        for (name, s) in &other.agents {
            self.agent(name).add(s);
        }
        for (k, n) in &other.alerts {
            *self.alerts.entry(k.clone()).or_default() += n;
        }
    }
}

/// The figures of one agent over one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentFigures {
    pub agent_id: String,
    pub executions: u64,
    pub completed: u64,
    pub failed: u64,
    pub rejected: u64,
    /// completed / executions (`null` without executions).
    pub success_rate: Option<f64>,
    pub latency_ms: Latency,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertFigures {
    pub alert_type: String,
    pub severity: String,
    pub count: u64,
}

/// Everything the aggregation says about one window (topic rates are added by the service).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowFigures {
    pub window: Window,
    /// Event times covered: `[from, to)`, RFC 3339.
    pub from: String,
    pub to: String,
    pub agents: Vec<AgentFigures>,
    pub alerts: Vec<AlertFigures>,
}

/// The state of the analytics. Feed it events with [`Aggregator::execution`] and
/// [`Aggregator::alert`]; ask it with [`Aggregator::figures`].
#[derive(Debug)]
pub struct Aggregator {
    started_ms: i64,
    buckets: BTreeMap<i64, Bucket>,
    since_start: Bucket,
    /// Per partition, the highest offset counted: a record handed over again (after a
    /// rebalance) is not counted twice.
    counted: HashMap<(Arc<str>, u32), u64>,
    /// The newest bucket index seen, for dropping old buckets.
    newest: i64,
}

impl Aggregator {
    /// An empty state whose "since start" counts events at or after `started_ms`.
    pub fn new(started_ms: i64) -> Self {
        Self {
            started_ms,
            buckets: BTreeMap::new(),
            since_start: Bucket::default(),
            counted: HashMap::new(),
            newest: 0,
        }
    }

    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Whether the record at `offset` of `topic`/`partition` is new; remembers it.
    pub fn first_time(&mut self, topic: &Arc<str>, partition: u32, offset: u64) -> bool {
        match self.counted.get_mut(&(topic.clone(), partition)) {
            Some(last) if offset <= *last => false,
            Some(last) => {
                *last = offset;
                true
            }
            None => {
                self.counted.insert((topic.clone(), partition), offset);
                true
            }
        }
    }

    /// The highest offset counted on `topic`/`partition`.
    pub fn counted(&self, topic: &str, partition: u32) -> Option<u64> {
        self.counted.iter().find(|((t, p), _)| &**t == topic && *p == partition).map(|(_, o)| *o)
    }

    fn bucket(&mut self, at_ms: i64) -> Option<&mut Bucket> {
        let index = at_ms.div_euclid(BUCKET_MS);
        if index > self.newest {
            self.newest = index;
            let oldest = index - LONGEST_MS / BUCKET_MS;
            while let Some((&first, _)) = self.buckets.first_key_value() {
                if first >= oldest {
                    break;
                }
                self.buckets.pop_first();
            }
        }
        if index <= self.newest - LONGEST_MS / BUCKET_MS {
            return None;
        }
        Some(self.buckets.entry(index).or_default())
    }

    /// One execution of `agent` that ended with `status` after `duration_ms`, at event time `at_ms`.
    pub fn execution(&mut self, agent: &str, status: Status, duration_ms: u64, at_ms: i64) {
        if let Some(b) = self.bucket(at_ms) {
            b.agent(agent).record(status, duration_ms);
        }
        if at_ms >= self.started_ms {
            self.since_start.agent(agent).record(status, duration_ms);
        }
    }

    /// One compliance alert.
    pub fn alert(&mut self, alert_type: &str, severity: &str, at_ms: i64) {
        let key = (alert_type.to_owned(), severity.to_owned());
        if let Some(b) = self.bucket(at_ms) {
            *b.alerts.entry(key.clone()).or_default() += 1;
        }
        if at_ms >= self.started_ms {
            *self.since_start.alerts.entry(key).or_default() += 1;
        }
    }

    /// The figures of `window` ending at `now_ms` (aligned down to a bucket boundary).
    pub fn figures(&self, window: Window, now_ms: i64) -> WindowFigures {
        let end = (now_ms.div_euclid(BUCKET_MS) + 1) * BUCKET_MS;
        let (from, merged) = match window.millis() {
            None => (self.started_ms, std::borrow::Cow::Borrowed(&self.since_start)),
            Some(len) => {
                let first = (end - len).div_euclid(BUCKET_MS);
                let mut sum = Bucket::default();
                for (_, b) in self.buckets.range(first..end.div_euclid(BUCKET_MS)) {
                    sum.add(b);
                }
                (first * BUCKET_MS, std::borrow::Cow::Owned(sum))
            }
        };
        let agents = merged
            .agents
            .iter()
            .map(|(name, s)| {
                let executions = s.completed + s.failed + s.rejected;
                let q = |p: f64| if executions == 0 { 0 } else { s.latency.value_at_quantile(p) };
                AgentFigures {
                    agent_id: name.clone(),
                    executions,
                    completed: s.completed,
                    failed: s.failed,
                    rejected: s.rejected,
                    success_rate: (executions > 0).then(|| s.completed as f64 / executions as f64),
                    latency_ms: Latency {
                        p50: q(0.50),
                        p95: q(0.95),
                        p99: q(0.99),
                        max: if executions == 0 { 0 } else { s.latency.max() },
                    },
                }
            })
            .collect();
        let alerts = merged
            .alerts
            .iter()
            .map(|((t, s), n)| AlertFigures { alert_type: t.clone(), severity: s.clone(), count: *n })
            .collect();
        WindowFigures {
            window,
            from: crate::audit::record::format_time(from),
            to: crate::audit::record::format_time(end),
            agents,
            alerts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_sum_whole_buckets_and_quantiles_are_within_a_tenth_of_a_percent() {
        let now = 1_800_000_000_000; // on a bucket boundary
        let mut a = Aggregator::new(now - 7_200_000);
        // 1,000 executions in the last minute with latencies 1..=1000 ms, 10 older ones.
        for i in 1..=1000u64 {
            a.execution(
                "card_agent",
                if i % 10 == 0 { Status::Failed } else { Status::Completed },
                i,
                now - 50_000 + i as i64,
            );
        }
        for i in 0..10 {
            a.execution("card_agent", Status::Rejected, 5000, now - 1_800_000 - i);
        }
        a.execution("loan_agent", Status::Completed, 7, now - 7_000_000); // beyond the hour: since start only
        let m = a.figures(Window::OneMinute, now);
        let card = &m.agents[0];
        assert_eq!((card.executions, card.completed, card.failed, card.rejected), (1000, 900, 100, 0));
        assert_eq!(card.success_rate, Some(0.9));
        let close = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.001 + 1.0;
        assert!(close(card.latency_ms.p50, 500) && close(card.latency_ms.p99, 990), "{:?}", card.latency_ms);
        assert_eq!(card.latency_ms.max, 1000);
        let h = a.figures(Window::OneHour, now);
        assert_eq!(h.agents.iter().map(|x| x.executions).sum::<u64>(), 1010);
        let all = a.figures(Window::All, now);
        assert_eq!(all.agents.iter().map(|x| x.executions).sum::<u64>(), 1011);
    }

    #[test]
    fn a_record_is_counted_once_per_partition_offset() {
        let mut a = Aggregator::new(0);
        let t: Arc<str> = "agent.executions".into();
        assert!(a.first_time(&t, 0, 5));
        assert!(!a.first_time(&t, 0, 5));
        assert!(!a.first_time(&t, 0, 3));
        assert!(a.first_time(&t, 1, 0));
        assert_eq!(a.counted("agent.executions", 0), Some(5));
    }
}
