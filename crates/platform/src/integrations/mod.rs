//! The inbound integrations: events from a CRM (`external.crm.events`) and market-data ticks
//! (`external.market.data`), sent one at a time or in batches, and the price feed that turns ticks
//! into the wealth agent's `prices`.
//!
//! [`IntegrationIngest::ingest`] takes a batch all-or-nothing:
//!
//! 1. `_metadata` (`timestamp`, UUID v7 `message_id`, `producer`) and the top-level `timestamp`
//!    are filled in where the caller left them out (what `eventline produce --stamp` does).
//! 2. Every event is validated against its topic's JSON Schema. If any fails, nothing is appended
//!    and the error names the first bad event's index, each violation's JSON pointer and reason —
//!    with the offending value left out, so raw PII never comes back in an error.
//! 3. Only then does each event pass the governance gate as an inbound payload: PII in free text
//!    (a CRM note) is masked, configured fields hashed or dropped, and each finding raises one
//!    `compliance.alerts` event per PII type and field of the event (never the raw value).
//! 4. The events are appended with acks=all in one produce call (keyed by `entity_id` / `symbol`),
//!    then their alerts.
//!
//! [`prices::PriceFeed`] is the consumer group that applies the ticks to `prices`.

pub mod prices;

use std::sync::Arc;

use bytes::Bytes;
use eventline_governance::{Detector, Gate, Location, redact};
use eventline_log::{EventLog, LogError, ProduceRecord};
use eventline_model::Metadata;
use eventline_model::events::{AlertAction, ComplianceAlert, Event};
use eventline_model::schema::{self, Violation};
use eventline_model::topics::{
    Acks, BUILTIN_TOPICS, COMPLIANCE_ALERTS, EXTERNAL_CRM_EVENTS, EXTERNAL_MARKET_DATA, TopicSpec,
};
use serde::Serialize;
use serde_json::Value;

/// The most events one request may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// An inbound integration: which topic its events go to and how alerts name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integration {
    /// CRM changes (contacts, accounts, cases, …) → `external.crm.events`, keyed by `entity_id`.
    Crm,
    /// Price ticks → `external.market.data`, keyed by `symbol`.
    MarketData,
}

impl Integration {
    pub fn topic(self) -> &'static str {
        match self {
            Integration::Crm => EXTERNAL_CRM_EVENTS,
            Integration::MarketData => EXTERNAL_MARKET_DATA,
        }
    }

    /// The `details.component` of the alerts this integration raises.
    pub fn component(self) -> &'static str {
        match self {
            Integration::Crm => "crm_integration",
            Integration::MarketData => "market_data_integration",
        }
    }
}

/// Where one accepted event went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppendedRecord {
    /// Its position in the request (0 for a single event).
    pub index: usize,
    pub topic: &'static str,
    pub partition: u32,
    /// `None` only with acks=0, which integrations never use.
    pub offset: Option<u64>,
    pub message_id: String,
}

/// What governance did to one field of one accepted event. Never holds the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventRedaction {
    pub index: usize,
    /// JSON pointer in the appended event, e.g. `/attributes/note`.
    pub field: String,
    pub pii_type: String,
    pub action: AlertAction,
    pub count: u64,
}

/// The answer to an accepted request.
#[derive(Clone, Debug, Serialize)]
pub struct IngestReceipt {
    pub accepted: usize,
    pub records: Vec<AppendedRecord>,
    pub redactions: Vec<EventRedaction>,
    /// How many `compliance.alerts` events the request raised.
    pub alerts: usize,
}

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the batch is empty; send at least one event")]
    Empty,
    #[error("the batch has {0} events; at most {MAX_BATCH_EVENTS} are accepted per request")]
    TooMany(usize),
    /// The first event (by index) that fails its schema; nothing was appended.
    #[error("event {index}: {}", violations.iter().map(Violation::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        index: usize,
        violations: Vec<Violation>,
        /// How many events of the batch fail.
        invalid_events: usize,
    },
    #[error("the log refused the events: {0}")]
    Log(#[from] LogError),
    #[error("an alert fails its schema: {0}")]
    Schema(String),
}

/// Validates, governs and appends inbound integration events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct IntegrationIngest {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn EventLog>,
    gate: Arc<Gate>,
    producer: String,
    detector: Detector,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationIngest").field("log", &self.log.backend()).field("producer", &self.producer).finish()
    }
}

impl IntegrationIngest {
    pub fn new(log: Arc<dyn EventLog>, gate: Arc<Gate>, producer: impl Into<String>) -> Self {
        Self { inner: Arc::new(Inner { log, gate, producer: producer.into(), detector: Detector::new() }) }
    }

    /// Takes `events` all-or-nothing (see the module documentation). Not cancel-safe once the
    /// append started: callers that may be dropped run it on a task of their own.
    pub async fn ingest(&self, integration: Integration, mut events: Vec<Value>) -> Result<IngestReceipt, IngestError> {
        let me = &*self.inner;
        if events.is_empty() {
            return Err(IngestError::Empty);
        }
        if events.len() > MAX_BATCH_EVENTS {
            return Err(IngestError::TooMany(events.len()));
        }
        let topic = integration.topic();

        // Validate everything before the gate sees anything: the gate remembers which events it
        // reported, so a refused batch must not use that up (a corrected retry gets its alerts).
        let mut first_bad = None;
        let mut invalid_events = 0;
        for (index, event) in events.iter_mut().enumerate() {
            Metadata::stamp_missing(event, &me.producer);
            if let Err(e) = schema::validate(topic, event) {
                invalid_events += 1;
                if first_bad.is_none() {
                    let violations = e.violations.into_iter().map(|v| self.scrub(event, v)).collect();
                    first_bad = Some((index, violations));
                }
            }
        }
        if let Some((index, violations)) = first_bad {
            return Err(IngestError::Invalid { index, violations, invalid_events });
        }

        let spec = key_spec(topic);
        let mut alerts: Vec<ComplianceAlert> = Vec::new();
        let mut redactions = Vec::new();
        let mut records = Vec::with_capacity(events.len());
        let mut message_ids = Vec::with_capacity(events.len());
        for (index, mut event) in events.into_iter().enumerate() {
            let outcome = me.gate.apply(topic, &mut event, integration.component(), Location::InboundPayload);
            if outcome.changed
                && let Err(e) = schema::validate(topic, &event)
            {
                // A policy that hashes or drops a required field; the caller cannot fix this.
                tracing::error!(topic, index, error = %e, "the governance policy leaves an integration event invalid");
                let violations = e.violations.into_iter().map(|v| self.scrub(&event, v)).collect();
                return Err(IngestError::Invalid { index, violations, invalid_events: 1 });
            }
            redactions.extend(outcome.alerts.iter().filter(|a| a.details.action != AlertAction::Allowed).map(|a| {
                EventRedaction {
                    index,
                    field: a.details.field.clone(),
                    pii_type: a.details.extra.get("pii_type").and_then(Value::as_str).unwrap_or("UNKNOWN").to_owned(),
                    action: a.details.action,
                    count: a.details.extra.get("count").and_then(Value::as_u64).unwrap_or(1),
                }
            }));
            alerts.extend(outcome.alerts);
            message_ids.push(event.pointer("/_metadata/message_id").and_then(Value::as_str).unwrap_or("").to_owned());
            let key = spec.key_of(&event).map(Bytes::from);
            let value = Bytes::from(serde_json::to_vec(&event).expect("JSON serialises"));
            records.push(ProduceRecord { key, value: Some(value), ..Default::default() });
        }

        let positions = me.log.produce(topic, records, Acks::All).await?;
        self.append_alerts(&alerts).await?;
        let records = positions
            .into_iter()
            .zip(message_ids)
            .enumerate()
            .map(|(index, (p, message_id))| AppendedRecord {
                index,
                topic,
                partition: p.partition,
                offset: p.offset,
                message_id,
            })
            .collect::<Vec<_>>();
        if !alerts.is_empty() {
            tracing::info!(
                topic,
                alerts = alerts.len(),
                "PII findings in integration events reported on {COMPLIANCE_ALERTS}"
            );
        }
        Ok(IngestReceipt { accepted: records.len(), records, redactions, alerts: alerts.len() })
    }

    async fn append_alerts(&self, alerts: &[ComplianceAlert]) -> Result<(), IngestError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(alerts.len());
        for a in alerts {
            let value = a.to_value();
            schema::validate(COMPLIANCE_ALERTS, &value).map_err(|e| IngestError::Schema(e.to_string()))?;
            records
                .push(ProduceRecord::new(a.key(), Bytes::from(serde_json::to_vec(&value).expect("JSON serialises"))));
        }
        self.inner.log.produce(COMPLIANCE_ALERTS, records, Acks::All).await?;
        Ok(())
    }

    /// A violation whose reason does not repeat the offending value: schema messages quote it
    /// (`"jane@example.com" is not one of [...]`), and an error must not echo raw PII back.
    fn scrub(&self, event: &Value, mut v: Violation) -> Violation {
        if let Some(value) = event.pointer(&v.pointer)
            && matches!(value, Value::String(_) | Value::Object(_) | Value::Array(_))
        {
            let quoted = value.to_string();
            if v.reason.contains(&quoted) {
                v.reason = v.reason.replace(&quoted, "the value");
            }
        }
        let found = self.inner.detector.detect(&v.reason);
        if !found.is_empty() {
            v.reason = redact(&v.reason, &found);
        }
        v
    }
}

/// A spec that knows the topic's partitioning key (`entity_id`, `symbol`).
fn key_spec(topic: &str) -> TopicSpec {
    let key = BUILTIN_TOPICS.iter().find(|(t, _)| *t == topic).map(|(_, k)| (*k).to_owned());
    TopicSpec { key_pointer: key, ..TopicSpec::new(topic) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventline_governance::Policy;
    use eventline_log::{EmbeddedLog, EmbeddedOptions};
    use eventline_model::topics::builtin_specs;
    use serde_json::json;

    async fn ingest() -> (tempfile::TempDir, Arc<EmbeddedLog>, IntegrationIngest) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
        for spec in builtin_specs(&TopicSpec::new("defaults")) {
            log.ensure_topic(&spec).await.unwrap();
        }
        let gate = Arc::new(Gate::new(Policy::default_with_key(b"test-hash-key-0123456789".to_vec()), "t"));
        (dir, log.clone(), IntegrationIngest::new(log, gate, "enterprise-agent-platform"))
    }

    #[test]
    fn stamp_fills_only_what_is_missing() {
        let mut ev =
            json!({"symbol": "AAPL", "_metadata": {"message_id": "mine"}, "timestamp": "2026-01-01T00:00:00Z"});
        Metadata::stamp_missing(&mut ev, "p");
        assert_eq!(ev["_metadata"]["message_id"], "mine");
        assert_eq!(ev["_metadata"]["producer"], "p");
        assert_eq!(ev["timestamp"], "2026-01-01T00:00:00Z");
        assert!(ev["_metadata"]["timestamp"].is_string());
    }

    #[tokio::test]
    async fn a_bad_event_refuses_the_batch_without_echoing_its_value() {
        let (_dir, log, ingest) = ingest().await;
        let good = json!({"symbol": "AAPL", "price": 1.0, "currency": "USD"});
        let bad = json!({"symbol": "AAPL", "price": 1.0, "currency": "jane.doe@example.com"});
        let err = ingest.ingest(Integration::MarketData, vec![good.clone(), bad]).await.unwrap_err();
        let IngestError::Invalid { index, violations, invalid_events } = &err else { panic!("{err}") };
        assert_eq!((*index, *invalid_events), (1, 1));
        assert_eq!(violations[0].pointer, "/currency");
        assert!(!err.to_string().contains("jane.doe"), "{err}");
        for p in 0..3 {
            assert_eq!(log.watermarks(EXTERNAL_MARKET_DATA, p).await.unwrap().1, 0, "nothing appended");
        }
        let ok = ingest.ingest(Integration::MarketData, vec![good]).await.unwrap();
        assert_eq!(ok.accepted, 1);
    }
}
