//! The inbound integrations: events from a CRM (`external.crm.events`) and market-data ticks
//! (`external.market.data`), sent one at a time or in batches.
//!
//! [`IntegrationIngest::ingest`] takes a batch all-or-nothing through the produce pipeline
//! (`eventline_pipeline::Pipeline::prepare_all`):
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
//! With an idempotency key ([`IntegrationIngest::ingest_once`]) the answer is kept in the database
//! for 24 hours: the same key with the same body gets the first answer again and appends nothing;
//! the same key with another body is refused. Message ids the caller left out are derived from the
//! key, so even a retry after a crash between the append and the kept answer carries the same ids.
//!
//! The price feed that turns ticks into the wealth agent's `prices` is a service
//! (`eventline_services::prices`).

use std::collections::HashMap;
use std::sync::Arc;

use eventline_governance::Location;
use eventline_log::LogError;
use eventline_model::events::AlertAction;
use eventline_model::schema::Violation;
use eventline_model::topics::{Acks, EXTERNAL_CRM_EVENTS, EXTERNAL_MARKET_DATA, TopicSpec};
use eventline_pipeline::{Draft, Pipeline};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::Database;

/// The most events one request may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// How long an idempotency key's answer is kept.
const IDEMPOTENCY_TTL_HOURS: i64 = 24;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedRecord {
    /// Its position in the request (0 for a single event).
    pub index: usize,
    pub topic: String,
    pub partition: u32,
    /// `None` only with acks=0, which integrations never use.
    pub offset: Option<u64>,
    pub message_id: String,
}

/// What governance did to one field of one accepted event. Never holds the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRedaction {
    pub index: usize,
    /// JSON pointer in the appended event, e.g. `/attributes/note`.
    pub field: String,
    pub pii_type: String,
    pub action: AlertAction,
    pub count: u64,
}

/// The answer to an accepted request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IngestReceipt {
    pub accepted: usize,
    pub records: Vec<AppendedRecord>,
    pub redactions: Vec<EventRedaction>,
    /// How many `compliance.alerts` events the request raised.
    pub alerts: usize,
    /// True when this is the kept answer to an earlier request with the same idempotency key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
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
    #[error("Idempotency-Key: {0}")]
    BadIdempotencyKey(&'static str),
    #[error("Idempotency-Key was used before with another request body; use a new key for a new request")]
    IdempotencyConflict,
    #[error("the log refused the events: {0}")]
    Log(#[from] LogError),
    #[error("the database: {0}")]
    Database(#[from] rusqlite::Error),
}

/// Validates, governs and appends inbound integration events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct IntegrationIngest {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pipeline: Pipeline,
    db: Database,
    /// Idempotency keys being served now: a second request with the same key waits for the first.
    in_flight: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl IntegrationIngest {
    /// Appends through `pipeline`; keeps idempotent answers in `db`.
    pub fn new(pipeline: Pipeline, db: Database) -> Self {
        Self { inner: Arc::new(Inner { pipeline, db, in_flight: Default::default() }) }
    }

    /// Takes `events` all-or-nothing (see the module documentation). Not cancel-safe once the
    /// append started: callers that may be dropped run it on a task of their own.
    pub async fn ingest(&self, integration: Integration, events: Vec<Value>) -> Result<IngestReceipt, IngestError> {
        self.ingest_once(integration, events, None).await
    }

    /// Like [`IntegrationIngest::ingest`], at most once per `idempotency_key`.
    pub async fn ingest_once(
        &self,
        integration: Integration,
        mut events: Vec<Value>,
        idempotency_key: Option<String>,
    ) -> Result<IngestReceipt, IngestError> {
        if events.is_empty() {
            return Err(IngestError::Empty);
        }
        if events.len() > MAX_BATCH_EVENTS {
            return Err(IngestError::TooMany(events.len()));
        }
        let Some(key) = idempotency_key else {
            return self.append(integration, events).await;
        };
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(IngestError::BadIdempotencyKey("use 1 to 255 visible ASCII characters"));
        }
        let scope = integration.topic();
        let hash = format!("{:x}", Sha256::digest(serde_json::to_vec(&events).expect("JSON serialises")));
        let lock = {
            let mut map = self.inner.in_flight.lock().await;
            // Keys nobody is serving or waiting for any more (the map holds only in-flight keys).
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(format!("{scope}\0{key}")).or_default().clone()
        };
        let _serving = lock.lock().await;
        let (k, s) = (key.clone(), scope.to_owned());
        let kept: Option<(String, String)> = self
            .inner
            .db
            .call(move |c| {
                c.query_row(
                    "SELECT request_hash, response FROM _eventline_idempotency WHERE scope = ?1 AND key = ?2",
                    [&s, &k],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        if let Some((kept_hash, response)) = kept {
            if kept_hash != hash {
                return Err(IngestError::IdempotencyConflict);
            }
            if let Ok(mut receipt) = serde_json::from_str::<IngestReceipt>(&response) {
                receipt.replayed = true;
                return Ok(receipt);
            }
        }
        for (index, event) in events.iter_mut().enumerate() {
            derive_message_id(event, scope, &key, index);
        }
        let receipt = self.append(integration, events).await?;
        let response = serde_json::to_string(&receipt).expect("receipt serialises");
        let s = scope.to_owned();
        self.inner
            .db
            .call(move |c| {
                let now = chrono::Utc::now();
                let cutoff = (now - chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
                c.execute("DELETE FROM _eventline_idempotency WHERE created_at < ?1", [&cutoff])?;
                c.execute(
                    "INSERT OR REPLACE INTO _eventline_idempotency (scope, key, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![s, key, hash, response, now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()],
                )
            })
            .await?;
        Ok(receipt)
    }

    async fn append(&self, integration: Integration, events: Vec<Value>) -> Result<IngestReceipt, IngestError> {
        let me = &*self.inner;
        let topic = integration.topic();
        let spec = TopicSpec::new(topic);
        let drafts = events
            .into_iter()
            .map(|e| Draft::json(e, integration.component(), Location::InboundPayload).stamped(true).from_caller())
            .collect();
        let prepared = me.pipeline.prepare_all(&spec, drafts).map_err(|b| {
            let mut violations = b.error.violations().to_vec();
            if violations.is_empty() {
                // Refused for another reason than the schema (a producer name it may not give).
                violations.push(eventline_model::schema::Violation {
                    pointer: b.error.field().unwrap_or_default(),
                    reason: b.error.to_string(),
                });
            }
            IngestError::Invalid { index: b.index, violations, invalid_events: b.invalid_events }
        })?;
        let mut redactions = Vec::new();
        let mut message_ids = Vec::with_capacity(prepared.len());
        for (index, p) in prepared.iter().enumerate() {
            redactions.extend(p.alerts.iter().filter(|a| a.details.action != AlertAction::Allowed).map(|a| {
                EventRedaction {
                    index,
                    field: a.details.field.clone(),
                    pii_type: a.details.extra.get("pii_type").and_then(Value::as_str).unwrap_or("UNKNOWN").to_owned(),
                    action: a.details.action,
                    count: a.details.extra.get("count").and_then(Value::as_u64).unwrap_or(1),
                }
            }));
            message_ids.push(p.message_id.clone().unwrap_or_default());
        }
        let appended = me.pipeline.append(topic, prepared, Acks::All).await?;
        let records = appended
            .positions
            .into_iter()
            .zip(message_ids)
            .enumerate()
            .map(|(index, (p, message_id))| AppendedRecord {
                index,
                topic: topic.to_owned(),
                partition: p.partition,
                offset: p.offset,
                message_id,
            })
            .collect::<Vec<_>>();
        Ok(IngestReceipt { accepted: records.len(), records, redactions, alerts: appended.alerts, replayed: false })
    }
}

/// Sets `_metadata.message_id` (when the caller left it out) to a UUID derived from the
/// idempotency key and the event's index, so a retried request carries the same ids.
fn derive_message_id(event: &mut Value, scope: &str, key: &str, index: usize) {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6576_656e_746c_696e_6964_656d_706f_7400);
    let Some(obj) = event.as_object_mut() else { return };
    let meta = obj.entry("_metadata").or_insert_with(|| Value::Object(Default::default()));
    if let Some(m) = meta.as_object_mut()
        && !m.contains_key("message_id")
    {
        let id = uuid::Uuid::new_v5(&NAMESPACE, format!("{scope}\0{key}\0{index}").as_bytes());
        m.insert("message_id".into(), Value::String(id.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventline_governance::{Gate, Policy};
    use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
    use eventline_model::Metadata;
    use eventline_model::topics::builtin_specs;
    use serde_json::json;

    async fn ingest() -> (tempfile::TempDir, Arc<EmbeddedLog>, IntegrationIngest) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
        for spec in builtin_specs(&TopicSpec::new("defaults")) {
            log.ensure_topic(&spec).await.unwrap();
        }
        let gate = Arc::new(Gate::new(Policy::default_with_key(b"test-hash-key-0123456789".to_vec()), "t"));
        let db = Database::open(&dir.path().join("eventline.db")).unwrap();
        let pipeline = Pipeline::new(log.clone(), Some(gate), "enterprise-agent-platform");
        (dir, log, IntegrationIngest::new(pipeline, db))
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

    #[tokio::test]
    async fn an_idempotency_key_appends_once_and_answers_the_same() {
        let (_dir, log, ingest) = ingest().await;
        let batch = vec![
            json!({"symbol": "AAPL", "price": 1.0, "currency": "USD"}),
            json!({"symbol": "MSFT", "price": 2.0, "currency": "USD"}),
        ];
        let key = Some("retry-me-1".to_owned());
        let first = ingest.ingest_once(Integration::MarketData, batch.clone(), key.clone()).await.unwrap();
        let again = ingest.ingest_once(Integration::MarketData, batch.clone(), key.clone()).await.unwrap();
        assert!(!first.replayed);
        assert!(again.replayed);
        assert_eq!(again.records, first.records, "the first answer again");
        let mut total = 0;
        for p in 0..3 {
            total += log.watermarks(EXTERNAL_MARKET_DATA, p).await.unwrap().1;
        }
        assert_eq!(total, 2, "appended once");
        let other = vec![json!({"symbol": "AAPL", "price": 9.0, "currency": "USD"})];
        let err = ingest.ingest_once(Integration::MarketData, other, key).await.unwrap_err();
        assert!(matches!(err, IngestError::IdempotencyConflict), "{err}");
        // a new key appends, and derived message ids differ by key
        let fresh = ingest.ingest_once(Integration::MarketData, batch, Some("retry-me-2".into())).await.unwrap();
        assert_ne!(fresh.records[0].message_id, first.records[0].message_id);
        let bad = ingest.ingest_once(Integration::MarketData, vec![json!({})], Some("bad key".into())).await;
        assert!(matches!(bad, Err(IngestError::BadIdempotencyKey(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_with_one_key_append_once() {
        let (_dir, log, ingest) = ingest().await;
        let batch = vec![json!({"symbol": "NVDA", "price": 1.0, "currency": "USD"})];
        let key = Some("same-key".to_owned());
        let (a, b) = tokio::join!(
            ingest.ingest_once(Integration::MarketData, batch.clone(), key.clone()),
            ingest.ingest_once(Integration::MarketData, batch.clone(), key.clone()),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.records, b.records);
        assert!(a.replayed != b.replayed, "one appended, the other got its answer");
        let mut total = 0;
        for p in 0..3 {
            total += log.watermarks(EXTERNAL_MARKET_DATA, p).await.unwrap().1;
        }
        assert_eq!(total, 1);
        assert!(ingest.inner.in_flight.lock().await.len() <= 1, "served keys do not pile up");
    }
}
