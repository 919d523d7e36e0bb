//! The produce pipeline: the one way an event enters the log.
//!
//! Every producer of eventline — `eventline produce` and `POST /v1/topics/{topic}/records`, the
//! integration endpoints, the agent executor, SQLite and PostgreSQL capture — hands its events to
//! a [`Pipeline`] as [`Draft`]s. Each draft goes through the same steps, in this order:
//!
//! 1. **parse** (a text body must be one JSON value) and **stamp** (`_metadata` and `timestamp`
//!    filled in where missing, when asked);
//! 2. **headers**: names starting with `eventline.` are reserved for eventline's own producers and
//!    refused from callers; a W3C `traceparent` is checked and carried in the record's headers;
//! 3. **schema**: the event is validated against its topic's JSON Schema (an event built from
//!    eventline's typed model with [`Draft::typed`] is valid by construction — the model's
//!    property tests check every type against its schema — so this check is its type's);
//! 4. **governance**: the gate applies the PII policy and builds one `compliance.alerts` event per
//!    PII type and field (ids derived from the event, so the same event raises the same alerts);
//!    the event is validated again if the policy changed it;
//! 5. **key**: the caller's key, else the topic's key field read *after* the policy ran (a hashed
//!    key column never leaks raw);
//! 6. **append** with the requested acks, then the alerts with acks=all.
//!
//! Errors name the field (a JSON pointer) and the reason and never repeat the offending value.
//! Steps 1–5 are [`Pipeline::prepare`] (or [`Pipeline::prepare_all`], all-or-nothing for a batch);
//! step 6 is [`Pipeline::append`]. A producer that must decide something between the two (capture
//! skips what the log already holds; the executor writes the events to its outbox) does so on the
//! [`Prepared`] events.

use std::sync::Arc;

use bytes::Bytes;
use eventline_governance::{Detector, Gate, Location, Scope, redact};
use eventline_log::{EventLog, Header, LogError, ProduceRecord, RecordPosition};
use eventline_model::events::ComplianceAlert;
use eventline_model::schema::{self, Violation};
use eventline_model::topics::{Acks, BUILTIN_TOPICS, COMPLIANCE_ALERTS, TopicSpec};
use eventline_model::{Metadata, events::Event};
use serde_json::Value;

/// Header names starting with this are eventline's own (capture positions, dead-letter details).
pub const RESERVED_HEADER_PREFIX: &str = "eventline.";
/// The W3C trace-context header carried on records.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// An event's body as the producer has it.
#[derive(Clone, Debug)]
enum Body {
    /// Text from a caller: kept byte for byte when neither stamping nor the policy changed it.
    Text(String),
    /// An event built in code: serialised compactly.
    Json(Value),
}

/// One event on its way into a topic: the body and how to make its record.
#[derive(Clone, Debug)]
pub struct Draft {
    body: Body,
    stamp: bool,
    key: Option<String>,
    partition: Option<u32>,
    headers: Vec<Header>,
    system_headers: Vec<Header>,
    traceparent: Option<String>,
    scopes: Vec<Scope>,
    /// Built from a typed model event of this topic: valid for it by construction.
    typed_for: Option<&'static str>,
    /// Sent by a caller outside eventline (an API request): on a built-in topic its producer is
    /// eventline's to name.
    from_caller: bool,
}

impl Draft {
    fn with(body: Body, component: &str, location: Location) -> Self {
        Self {
            typed_for: None,
            body,
            stamp: false,
            key: None,
            partition: None,
            headers: Vec::new(),
            system_headers: Vec::new(),
            traceparent: None,
            scopes: vec![Scope::whole(component, location)],
            from_caller: false,
        }
    }

    /// An event given as JSON text (a line of `eventline produce`, a request body). Findings are
    /// reported as `component`'s, at `location`.
    pub fn text(text: impl Into<String>, component: &str, location: Location) -> Self {
        Self::with(Body::Text(text.into()), component, location)
    }

    /// An event built as a JSON value.
    pub fn json(event: Value, component: &str, location: Location) -> Self {
        Self::with(Body::Json(event), component, location)
    }

    /// An event of eventline's typed model (capture's changes, the executor's executions). Its
    /// JSON matches its topic's schema by construction, so the schema step does not repeat the
    /// check (an event the policy changed is still validated again).
    pub fn typed(event: &impl eventline_model::events::Event, component: &str, location: Location) -> Self {
        Self { typed_for: Some(event.topic()), ..Self::with(Body::Json(event.to_value()), component, location) }
    }

    /// The event comes from a caller outside eventline (the HTTP API): on a built-in topic it may
    /// not name a `_metadata.producer` other than the pipeline's.
    pub fn from_caller(mut self) -> Self {
        self.from_caller = true;
        self
    }

    /// Fill in `_metadata` (UUID v7 id, the pipeline's producer, now) and `timestamp` where missing.
    pub fn stamped(mut self, stamp: bool) -> Self {
        self.stamp = stamp;
        self
    }

    /// The record key instead of the topic's key field.
    pub fn key(mut self, key: Option<String>) -> Self {
        self.key = key;
        self
    }

    /// This partition instead of the key's.
    pub fn partition(mut self, partition: Option<u32>) -> Self {
        self.partition = partition;
        self
    }

    /// Headers a caller chose. Reserved names (`eventline.…`) are refused by [`Pipeline::prepare`].
    pub fn headers(mut self, headers: Vec<Header>) -> Self {
        self.headers = headers;
        self
    }

    /// A header of eventline's own (a reserved `eventline.…` name); only eventline's producers set these.
    pub fn system_header(mut self, name: &str, value: impl Into<Bytes>) -> Self {
        self.system_headers.push(Header::new(name, value));
        self
    }

    /// The W3C `traceparent` of the operation that produced the event.
    pub fn traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// Findings under `scope.prefix` are reported as `scope.component`'s, at `scope.location`.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scopes.push(scope);
        self
    }
}

/// An event ready to append: its record, the event as it will be stored, and the alerts it raises.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub record: ProduceRecord,
    /// The event after the policy (what the record's value holds).
    pub event: Value,
    /// `_metadata.message_id`, when the event has one.
    pub message_id: Option<String>,
    /// The `compliance.alerts` events this event raises (no raw values).
    pub alerts: Vec<ComplianceAlert>,
}

/// An event that passed steps 1–3 (parse, stamp, headers, schema) but not yet the gate.
#[derive(Clone, Debug)]
pub struct Admitted {
    event: Value,
    /// The caller's text, while it is still the event byte for byte.
    verbatim: Option<String>,
    draft: Draft,
}

/// Why an event was refused. The message names the field and the reason, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("{}{}", list(.violations), .hint.unwrap_or(""))]
    Invalid { violations: Vec<Violation>, hint: Option<&'static str> },
    #[error("the governance policy leaves the event invalid: {}", list(.0))]
    PolicyLeavesInvalid(Vec<Violation>),
    #[error("header `{0}`: names starting with `eventline.` are reserved for eventline itself")]
    ReservedHeader(String),
    #[error("header `traceparent`: {0}")]
    Traceparent(String),
    #[error(
        "`/_metadata/producer`: on the built-in topic `{0}` eventline names the producer; leave it out (or send it with stamping)"
    )]
    ReservedProducer(String),
}

fn list(violations: &[Violation]) -> String {
    violations.iter().map(Violation::to_string).collect::<Vec<_>>().join("; ")
}

impl EventError {
    /// The JSON pointer (or header name) to blame, when there is one.
    pub fn field(&self) -> Option<String> {
        match self {
            EventError::Invalid { violations, .. } | EventError::PolicyLeavesInvalid(violations) => {
                violations.first().map(|v| if v.pointer.is_empty() { "/".to_owned() } else { v.pointer.clone() })
            }
            EventError::ReservedHeader(name) => Some(name.clone()),
            EventError::Traceparent(_) => Some(TRACEPARENT_HEADER.to_owned()),
            EventError::ReservedProducer(_) => Some("/_metadata/producer".to_owned()),
            EventError::NotJson(_) => None,
        }
    }

    /// The schema violations, when that is why.
    pub fn violations(&self) -> &[Violation] {
        match self {
            EventError::Invalid { violations, .. } | EventError::PolicyLeavesInvalid(violations) => violations,
            _ => &[],
        }
    }
}

/// The first refused event of a batch: nothing of the batch was prepared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {index}: {error}")]
pub struct BatchError {
    pub index: usize,
    pub error: EventError,
    /// How many events of the batch were refused.
    pub invalid_events: usize,
}

/// What an append did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Where each record went, in input order.
    pub positions: Vec<RecordPosition>,
    /// How many `compliance.alerts` events were appended.
    pub alerts: usize,
}

/// The produce pipeline of one process. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn EventLog>,
    gate: Option<Arc<Gate>>,
    producer: String,
    detector: Detector,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("log", &self.inner.log.backend())
            .field("governed", &self.inner.gate.is_some())
            .field("producer", &self.inner.producer)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline appending to `log` through `gate` (`None` appends ungoverned: benchmarks and
    /// tests of the log only), stamping events as `producer`.
    pub fn new(log: Arc<dyn EventLog>, gate: Option<Arc<Gate>>, producer: impl Into<String>) -> Self {
        Self { inner: Arc::new(Inner { log, gate, producer: producer.into(), detector: Detector::new() }) }
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.inner.log
    }

    /// The `_metadata.producer` of stamped events.
    pub fn producer(&self) -> &str {
        &self.inner.producer
    }

    /// Steps 1–5 for one event.
    pub fn prepare(&self, spec: &TopicSpec, draft: Draft) -> Result<Prepared, EventError> {
        let admitted = self.admit(spec, draft)?;
        self.govern(spec, admitted)
    }

    /// Steps 1–5 for a batch, all or nothing: every event is admitted (parsed, stamped, checked
    /// against the schema) before the gate sees any, so a refused batch raises no alert and uses
    /// up none of the gate's deduplication.
    pub fn prepare_all(&self, spec: &TopicSpec, drafts: Vec<Draft>) -> Result<Vec<Prepared>, BatchError> {
        let mut admitted = Vec::with_capacity(drafts.len());
        let mut first_bad = None;
        let mut invalid_events = 0;
        for (index, draft) in drafts.into_iter().enumerate() {
            match self.admit(spec, draft) {
                Ok(a) => admitted.push(a),
                Err(error) => {
                    invalid_events += 1;
                    first_bad.get_or_insert((index, error));
                }
            }
        }
        if let Some((index, error)) = first_bad {
            return Err(BatchError { index, error, invalid_events });
        }
        admitted
            .into_iter()
            .enumerate()
            .map(|(index, a)| self.govern(spec, a).map_err(|error| BatchError { index, error, invalid_events: 1 }))
            .collect()
    }

    /// Steps 1–3: parse, stamp, headers, schema.
    pub fn admit(&self, spec: &TopicSpec, mut draft: Draft) -> Result<Admitted, EventError> {
        let (mut event, verbatim) = match std::mem::replace(&mut draft.body, Body::Json(Value::Null)) {
            Body::Text(text) => {
                let event: Value = serde_json::from_str(&text).map_err(|e| EventError::NotJson(e.to_string()))?;
                let trimmed = text.trim();
                let verbatim = if trimmed.len() == text.len() { text } else { trimmed.to_owned() };
                (event, Some(verbatim))
            }
            Body::Json(v) => (v, None),
        };
        if let Some(h) = draft.headers.iter().find(|h| h.key.starts_with(RESERVED_HEADER_PREFIX)) {
            return Err(EventError::ReservedHeader(h.key.clone()));
        }
        if draft.headers.iter().any(|h| h.key.eq_ignore_ascii_case(TRACEPARENT_HEADER)) && draft.traceparent.is_some() {
            return Err(EventError::Traceparent("given twice (as a header and as the trace context)".into()));
        }
        for h in draft.headers.iter().filter(|h| h.key.eq_ignore_ascii_case(TRACEPARENT_HEADER)) {
            let text = h.value.as_deref().and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
            check_traceparent(text).map_err(EventError::Traceparent)?;
        }
        if let Some(tp) = &draft.traceparent {
            check_traceparent(tp).map_err(EventError::Traceparent)?;
        }
        let mut verbatim = verbatim;
        if draft.stamp {
            Metadata::stamp_missing(&mut event, &self.inner.producer);
            verbatim = None;
        }
        if draft.from_caller
            && eventline_model::topics::is_builtin(&spec.name)
            && event.pointer("/_metadata/producer").is_some_and(|p| p.as_str() != Some(self.inner.producer.as_str()))
        {
            return Err(EventError::ReservedProducer(spec.name.clone()));
        }
        if draft.typed_for == Some(spec.name.as_str()) && !draft.stamp {
            return Ok(Admitted { event, verbatim, draft });
        }
        if let Err(e) = schema::validate(&spec.name, &event) {
            let hint = (!draft.stamp
                && e.violations.iter().any(|v| v.pointer == "/_metadata" || v.pointer == "/timestamp"))
            .then_some(" (add --stamp to fill in _metadata and timestamp)");
            let violations = e.violations.into_iter().map(|v| self.scrub(&event, v)).collect();
            return Err(EventError::Invalid { violations, hint });
        }
        Ok(Admitted { event, verbatim, draft })
    }

    /// Steps 4–5: governance, key, record.
    pub fn govern(&self, spec: &TopicSpec, admitted: Admitted) -> Result<Prepared, EventError> {
        let Admitted { mut event, mut verbatim, mut draft } = admitted;
        let mut alerts = Vec::new();
        if let Some(gate) = &self.inner.gate {
            // The caller's record key and header values are scanned like the event (a PII value
            // there would be stored raw and served to every reader).
            let mut parts = Vec::new();
            if let Some(k) = &draft.key {
                parts.push(eventline_governance::Part {
                    field: "(record key)".into(),
                    value: Some(k.clone()),
                    hash_always: true,
                });
            }
            // Header names and values; a value that is not UTF-8 is read as text where it can be
            // (a PII value in it is found; the header is then rewritten as text).
            let header_at: Vec<usize> = (0..draft.headers.len())
                .filter(|&i| !draft.headers[i].key.eq_ignore_ascii_case(TRACEPARENT_HEADER))
                .collect();
            for &i in &header_at {
                let h = &draft.headers[i];
                parts.push(eventline_governance::Part {
                    field: "(header name)".into(),
                    value: Some(h.key.clone()),
                    hash_always: true,
                });
                parts.push(eventline_governance::Part {
                    field: "(header value)".into(),
                    value: h.value.as_deref().map(|v| String::from_utf8_lossy(v).into_owned()),
                    hash_always: false,
                });
            }
            let before: Vec<Option<String>> = parts.iter().map(|p| p.value.clone()).collect();
            let outcome = gate.apply_with_parts(&spec.name, &mut event, &draft.scopes, &mut parts);
            let mut parts = parts.into_iter().zip(before);
            if draft.key.is_some() {
                draft.key = parts.next().and_then(|(p, _)| p.value);
            }
            let mut dropped = Vec::new();
            for &i in &header_at {
                let (name, _) = parts.next().expect("a name part per header");
                let (value, was) = parts.next().expect("a value part per header");
                match name.value {
                    Some(n) => draft.headers[i].key = n,
                    None => dropped.push(i),
                }
                // Only a value the policy changed is rewritten (a binary value stays as it was).
                if value.value != was {
                    draft.headers[i].value = value.value.map(Bytes::from);
                }
            }
            for i in dropped.into_iter().rev() {
                draft.headers.remove(i);
            }
            if outcome.changed {
                verbatim = None;
                if let Err(e) = schema::validate(&spec.name, &event) {
                    // A policy that hashes or drops a required field; the caller cannot fix this.
                    tracing::error!(topic = %spec.name, error = %e, "the governance policy leaves an event invalid");
                    let violations = e.violations.into_iter().map(|v| self.scrub(&event, v)).collect();
                    return Err(EventError::PolicyLeavesInvalid(violations));
                }
            }
            alerts = outcome.alerts;
        }
        let key = match draft.key {
            Some(k) => Some(k),
            None => key_pointer(spec).and_then(|p| eventline_model::events::key_of(event.pointer(p))),
        };
        let value = match verbatim {
            Some(text) => Bytes::from(text),
            None => Bytes::from(serde_json::to_vec(&event).expect("JSON serialises")),
        };
        let mut headers = draft.system_headers;
        headers.extend(draft.headers);
        if let Some(tp) = draft.traceparent {
            headers.push(Header::new(TRACEPARENT_HEADER, tp));
        }
        let message_id = event.pointer("/_metadata/message_id").and_then(Value::as_str).map(str::to_owned);
        Ok(Prepared {
            record: ProduceRecord {
                key: key.map(Bytes::from),
                value: Some(value),
                headers,
                // Records are stamped with the append time (Kafka's LogAppendTime): retention and
                // `consume --since` count from when an event arrived, whatever time it names.
                timestamp: None,
                partition: draft.partition,
            },
            event,
            message_id,
            alerts,
        })
    }

    /// The gate step alone, for an event that will not be appended (a query no agent takes): the
    /// PII it holds is still masked in the returned copy and reported in the returned alerts.
    pub fn findings(&self, topic: &str, mut event: Value, scopes: &[Scope]) -> (Value, Vec<ComplianceAlert>) {
        match &self.inner.gate {
            Some(gate) => {
                let outcome = gate.apply_scoped(topic, &mut event, scopes);
                (event, outcome.alerts)
            }
            None => (event, Vec::new()),
        }
    }

    /// Step 6: appends the records to `topic` with `acks`, then their alerts with acks=all.
    pub async fn append(&self, topic: &str, prepared: Vec<Prepared>, acks: Acks) -> Result<Appended, LogError> {
        let mut records = Vec::with_capacity(prepared.len());
        let mut alerts = Vec::new();
        for p in prepared {
            records.push(p.record);
            alerts.extend(p.alerts);
        }
        let positions = self.append_records(topic, records, acks).await?;
        self.append_alerts(&alerts).await?;
        Ok(Appended { positions, alerts: alerts.len() })
    }

    /// Step 6 for records this pipeline prepared whose alerts the caller appends itself (capture
    /// batches the alerts of whole transactions).
    pub async fn append_records(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
        acks: Acks,
    ) -> Result<Vec<RecordPosition>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.log.produce(topic, records, acks).await
    }

    /// Appends `alerts` to `compliance.alerts` with acks=all.
    pub async fn append_alerts(&self, alerts: &[ComplianceAlert]) -> Result<(), LogError> {
        if alerts.is_empty() {
            return Ok(());
        }
        self.inner.log.produce(COMPLIANCE_ALERTS, alert_records(alerts), Acks::All).await?;
        tracing::debug!(alerts = alerts.len(), "PII findings reported on {COMPLIANCE_ALERTS}");
        Ok(())
    }

    /// A violation whose reason does not repeat the offending value: schema messages quote it
    /// (`"jane@example.com" is not one of [...]`), and an error must not echo raw data back.
    fn scrub(&self, event: &Value, mut v: Violation) -> Violation {
        if let Some(value) = event.pointer(&v.pointer) {
            let quoted = value.to_string();
            if let Some(rest) = v.reason.strip_prefix(&quoted) {
                v.reason = format!("the value{rest}");
            } else if matches!(value, Value::String(_) | Value::Object(_) | Value::Array(_))
                && v.reason.contains(&quoted)
            {
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

/// The records of `alerts` for `compliance.alerts`, keyed by alert id.
pub fn alert_records(alerts: &[ComplianceAlert]) -> Vec<ProduceRecord> {
    alerts
        .iter()
        .map(|a| ProduceRecord::new(a.key(), Bytes::from(serde_json::to_vec(a).expect("alerts serialise"))))
        .collect()
}

/// The topic's key field: its spec's, or the contract's for a built-in topic.
pub fn key_pointer(spec: &TopicSpec) -> Option<&str> {
    spec.key_pointer.as_deref().or_else(|| BUILTIN_TOPICS.iter().find(|(t, _)| *t == spec.name).map(|(_, k)| *k))
}

/// Checks a W3C trace-context `traceparent` (version 00): `00-<32 hex trace id>-<16 hex parent
/// id>-<2 hex flags>`, lower-case, neither id all zeros.
pub fn check_traceparent(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ok = parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0');
    if ok {
        Ok(())
    } else {
        Err("not a W3C traceparent (`00-<32 lower-case hex>-<16 lower-case hex>-<2 hex>`, ids not all zeros)".into())
    }
}
