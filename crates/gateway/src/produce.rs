//! One event on its way into a topic, as `eventline produce` and `POST /v1/topics/{topic}/records`
//! both take it: parsed, optionally stamped, validated against the topic's schema, passed through
//! the governance gate (and validated again when the policy changed it), keyed.
//!
//! ```
//! use eventline_gateway::produce::{RecordOptions, prepare_record};
//! use eventline_governance::{Gate, Policy};
//! use eventline_model::topics::TopicSpec;
//! let gate = Gate::new(Policy::default_with_key(b"0123456789abcdef0123456789abcdef".to_vec()), "doc");
//! let spec = TopicSpec::new("scratch");
//! let mut alerts = Vec::new();
//! let record = prepare_record(r#"{"note": "hi"}"#, &spec, &RecordOptions::new("doc"), &gate, &mut alerts).unwrap();
//! assert_eq!(record.value.as_deref(), Some(&br#"{"note": "hi"}"#[..]));
//! let bad = prepare_record("{oops", &spec, &RecordOptions::new("doc"), &gate, &mut alerts).unwrap_err();
//! assert!(bad.to_string().starts_with("not JSON"));
//! ```

use std::sync::Arc;

use bytes::Bytes;
use eventline_governance::{Gate, Location};
use eventline_log::{EventLog, Header, LogError, ProduceRecord};
use eventline_model::events::{ComplianceAlert, Event};
use eventline_model::topics::{Acks, COMPLIANCE_ALERTS, TopicSpec};
use eventline_model::{Metadata, schema};
use serde_json::Value;

/// How the records of one produce call are made.
#[derive(Clone, Debug, Default)]
pub struct RecordOptions {
    /// Key for every record (default: the topic's key field).
    pub key: Option<String>,
    /// Every record to this partition instead of hashing the key.
    pub partition: Option<u32>,
    pub headers: Vec<Header>,
    /// Fill in `_metadata` and `timestamp` where missing.
    pub stamp: bool,
    /// `_metadata.producer` for stamped events.
    pub producer: String,
}

impl RecordOptions {
    pub fn new(producer: impl Into<String>) -> Self {
        Self { producer: producer.into(), ..Self::default() }
    }
}

/// Why one event was refused: the field (a JSON pointer, when one is to blame) and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecordError {}

/// Turns one JSON line into the record to append, or says which field is wrong and why.
/// PII findings of the gate are added to `alerts` (to be reported with [`report_alerts`]).
pub fn prepare_record(
    line: &str,
    spec: &TopicSpec,
    opts: &RecordOptions,
    gate: &Gate,
    alerts: &mut Vec<ComplianceAlert>,
) -> Result<ProduceRecord, RecordError> {
    let mut event: Value =
        serde_json::from_str(line).map_err(|e| RecordError { field: None, message: format!("not JSON: {e}") })?;
    if opts.stamp {
        Metadata::stamp_missing(&mut event, &opts.producer);
    }
    if let Err(e) = schema::validate(&spec.name, &event) {
        let mut message = e.violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ");
        if !opts.stamp && e.violations.iter().any(|v| v.pointer == "/_metadata" || v.pointer == "/timestamp") {
            message.push_str(" (add --stamp to fill in _metadata and timestamp)");
        }
        let field = e.violations.first().map(|v| if v.pointer.is_empty() { "/".to_owned() } else { v.pointer.clone() });
        return Err(RecordError { field, message });
    }
    let outcome = gate.apply(&spec.name, &mut event, "produce", Location::InboundPayload);
    if outcome.changed
        && let Err(e) = schema::validate(&spec.name, &event)
    {
        let field = e.violations.first().map(|v| v.pointer.clone());
        return Err(RecordError { field, message: format!("the governance policy leaves the event invalid: {e}") });
    }
    alerts.extend(outcome.alerts);
    let key = opts.key.clone().or_else(|| spec.key_of(&event));
    // The value is the line exactly as given unless stamping or the policy changed it.
    let value = if opts.stamp || outcome.changed {
        Bytes::from(serde_json::to_vec(&event).expect("JSON serialises"))
    } else {
        Bytes::copy_from_slice(line.trim().as_bytes())
    };
    Ok(ProduceRecord {
        key: key.map(Bytes::from),
        value: Some(value),
        headers: opts.headers.clone(),
        // Records are stamped with the append time (Kafka's LogAppendTime): retention and
        // `consume --since` count from when an event arrived, whatever time the event itself names.
        timestamp: None,
        partition: opts.partition,
    })
}

/// Appends the gate's findings to `compliance.alerts` (they carry no raw value).
pub async fn report_alerts(log: &Arc<dyn EventLog>, alerts: &[ComplianceAlert]) -> Result<(), LogError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let records = alerts
        .iter()
        .map(|a| ProduceRecord::new(a.key(), Bytes::from(serde_json::to_vec(a).expect("alerts serialise"))))
        .collect();
    log.produce(COMPLIANCE_ALERTS, records, Acks::All).await?;
    tracing::info!(alerts = alerts.len(), "PII findings reported on {COMPLIANCE_ALERTS}");
    Ok(())
}
