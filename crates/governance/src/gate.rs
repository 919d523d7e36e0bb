//! The gate every event passes before it is appended: the field policy is applied (PII masked,
//! hashed or dropped as configured) and each finding raises a deduplicated `compliance.alerts`
//! event that never carries the raw value.

use std::sync::Mutex;

use eventline_model::Timestamp;
use eventline_model::events::{AlertAction, ComplianceAlert};
use eventline_model::topics::COMPLIANCE_ALERTS;
use serde_json::Value;

use crate::{AlertBuilder, AlertSource, Detector, Finding, Location, Policy};

/// Policy + detector + alert deduplication, shared by every producer of a process.
#[derive(Debug)]
pub struct Gate {
    detector: Detector,
    policy: Policy,
    alerts: Mutex<AlertBuilder>,
}

/// Who is answerable for the fields under one part of an event: findings in fields whose JSON
/// pointer starts with `prefix` are reported as found by `component` at `location`. The longest
/// matching prefix wins; `""` matches every field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub prefix: String,
    pub component: String,
    pub location: Location,
}

impl Scope {
    /// The whole event, found by `component` at `location`.
    pub fn whole(component: impl Into<String>, location: Location) -> Self {
        Self { prefix: String::new(), component: component.into(), location }
    }

    /// The fields under `prefix` (a JSON pointer such as `/output`).
    pub fn under(prefix: impl Into<String>, component: impl Into<String>, location: Location) -> Self {
        Self { prefix: prefix.into(), component: component.into(), location }
    }

    fn covers(&self, field: &str) -> bool {
        field.strip_prefix(self.prefix.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// A part of a record outside its event: the record key or a header value. `field` names it in
/// alerts (`(record key)`, `(header x-note)`); `value` becomes `None` when the policy drops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub field: String,
    pub value: Option<String>,
    /// Hash rather than mask (a record key: one entity's records still share a partition).
    pub hash_always: bool,
}

/// What the gate did to one event.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The policy changed the event (it must be re-serialised).
    pub changed: bool,
    pub alerts: Vec<ComplianceAlert>,
}

impl Gate {
    /// A gate applying `policy`; alerts carry `producer` in `_metadata`.
    pub fn new(policy: Policy, producer: impl Into<String>) -> Self {
        Self { detector: Detector::new(), policy, alerts: Mutex::new(AlertBuilder::new(producer)) }
    }

    /// Applies the policy to `event` bound for `topic`; `component` names the producer in alerts.
    /// Findings of one event (by its `_metadata.message_id`) are reported once.
    pub fn apply(&self, topic: &str, event: &mut Value, component: &str, location: Location) -> Outcome {
        self.apply_scoped(topic, event, &[Scope::whole(component, location)])
    }

    /// Like [`Gate::apply`], with the findings of each part of the event reported by the component
    /// answerable for it (see [`Scope`]); a field no scope covers is reported by the first scope.
    /// The alerts carry the event's `timestamp` and ids derived from its `_metadata.message_id`,
    /// so the same event always raises the same alerts.
    pub fn apply_scoped(&self, topic: &str, event: &mut Value, scopes: &[Scope]) -> Outcome {
        self.apply_with_parts(topic, event, scopes, &mut [])
    }

    /// Like [`Gate::apply_scoped`], and also scans the record's `parts` outside the event (its key,
    /// header values) with the topic's free-text action, changing them in place.
    pub fn apply_with_parts(&self, topic: &str, event: &mut Value, scopes: &[Scope], parts: &mut [Part]) -> Outcome {
        // The event's identity for alerts, taken before the policy changes it: its message id and a
        // digest of its content (all but `_metadata`, which a replay restamps).
        let digest = content_digest(event);
        let mut findings = self.policy.apply(topic, event, &self.detector);
        for part in parts.iter_mut() {
            findings.extend(self.policy.apply_side(
                topic,
                &part.field,
                &mut part.value,
                part.hash_always,
                &self.detector,
            ));
        }
        if findings.is_empty() {
            return Outcome::default();
        }
        for f in &findings {
            let location = scopes
                .iter()
                .filter(|s| s.covers(&f.field))
                .max_by_key(|s| s.prefix.len())
                .or(scopes.first())
                .map_or("event", |s| s.location.as_str());
            let pii = f.kind.map_or("CONFIGURED_FIELD", |k| k.as_str());
            metrics::counter!("eventline_governance_detections_total", "pii_type" => pii, "location" => location)
                .increment(f.count as u64);
        }
        let changed = findings.iter().any(|f| f.action != AlertAction::Allowed);
        // Alerts about alerts would loop; an alert is already free of raw values.
        if topic == COMPLIANCE_ALERTS || scopes.is_empty() {
            return Outcome { changed, alerts: Vec::new() };
        }
        let message_id = event.pointer("/_metadata/message_id").and_then(Value::as_str).map(str::to_owned);
        let identity = format!("{}/{digest}", message_id.as_deref().unwrap_or(""));
        let at = event.get("timestamp").and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
        let mut by_scope: Vec<Vec<Finding>> = vec![Vec::new(); scopes.len()];
        for f in findings {
            let best = scopes
                .iter()
                .enumerate()
                .filter(|(_, s)| s.covers(&f.field))
                .max_by_key(|(_, s)| s.prefix.len())
                .map_or(0, |(i, _)| i);
            by_scope[best].push(f);
        }
        let mut builder = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        let mut alerts = Vec::new();
        for (scope, found) in scopes.iter().zip(by_scope) {
            if found.is_empty() {
                continue;
            }
            let source = AlertSource {
                component: &scope.component,
                execution_id: message_id.as_deref(),
                identity: Some(&identity),
                location: scope.location,
                topic,
                at: at.as_ref(),
            };
            alerts.extend(builder.build(&source, &found));
        }
        Outcome { changed, alerts }
    }
}

/// SHA-256 (first 16 bytes, hex) of the event's JSON without `_metadata`.
fn content_digest(event: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    match event.as_object() {
        Some(obj) => {
            for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "_metadata") {
                hash.update((k.len() as u64).to_be_bytes());
                hash.update(k.as_bytes());
                let _ = serde_json::to_writer(&mut HashWriter(&mut hash), v);
            }
        }
        None => {
            let _ = serde_json::to_writer(&mut HashWriter(&mut hash), event);
        }
    }
    hash.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds serialised JSON straight into the hash.
struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_reports_once_and_never_loops_on_alerts() {
        let gate = Gate::new(Policy::default_with_key(b"0123456789abcdef0123".to_vec()), "t");
        let mut ev = json!({"note": "call 555-867-5309 or mail a@b.co", "_metadata": {"message_id": "m1"}});
        let out = gate.apply("external.crm.events", &mut ev, "crm", Location::InboundPayload);
        assert!(out.changed);
        assert!(!out.alerts.is_empty());
        assert!(!ev.to_string().contains("a@b.co"));
        // The same event again (a retry): already reported.
        let mut again = json!({"note": "call 555-867-5309 or mail a@b.co", "_metadata": {"message_id": "m1"}});
        let out = gate.apply("external.crm.events", &mut again, "crm", Location::InboundPayload);
        assert!(out.alerts.is_empty(), "one alert per event, type and field");
        let mut alert = json!({"details": {"field": "mail a@b.co"}});
        assert!(gate.apply(COMPLIANCE_ALERTS, &mut alert, "x", Location::Event).alerts.is_empty());
    }

    /// Deduplication and alert ids rest on what the server derives from the event, not on the
    /// caller's message id alone: another event under a reused message id still raises its own
    /// alerts; the same event again (a retry, a replay) raises the same ones.
    #[test]
    fn a_reused_message_id_neither_suppresses_nor_collides() {
        let gate = Gate::new(Policy::default_with_key(b"0123456789abcdef0123".to_vec()), "t");
        let event = |note: &str| json!({"note": note, "_metadata": {"message_id": "chosen-by-caller"}});
        let first = gate.apply("external.crm.events", &mut event("mail a@b.co"), "crm", Location::InboundPayload);
        let other = gate.apply("external.crm.events", &mut event("mail c@d.co"), "crm", Location::InboundPayload);
        assert_eq!((first.alerts.len(), other.alerts.len()), (1, 1), "the second event is not suppressed");
        assert_ne!(first.alerts[0].alert_id, other.alerts[0].alert_id);
        let fresh = Gate::new(Policy::default_with_key(b"0123456789abcdef0123".to_vec()), "t");
        let again = fresh.apply("external.crm.events", &mut event("mail a@b.co"), "crm", Location::InboundPayload);
        assert_eq!(again.alerts[0].alert_id, first.alerts[0].alert_id, "the same event, the same alert");
        assert_eq!(again.alerts[0].details.extra["execution_id"], "chosen-by-caller");
    }

    #[test]
    fn scopes_name_the_component_answerable_for_each_field() {
        let gate = Gate::new(Policy::default_with_key(b"0123456789abcdef0123".to_vec()), "t");
        let mut ev = json!({
            "input": {"query": "my SSN is 123-45-6789"},
            "output": {"message": "mail jane@example.com"},
            "_metadata": {"message_id": "m1"},
            "timestamp": "2026-11-30T10:00:00Z",
        });
        let scopes = [
            Scope::whole("gateway", Location::AgentInput),
            Scope::under("/output", "card_agent", Location::AgentOutput),
        ];
        let out = gate.apply_scoped("agent.executions", &mut ev, &scopes);
        let by_field = |f: &str| out.alerts.iter().find(|a| a.details.field == f).unwrap();
        assert_eq!(by_field("/input/query").details.component, "gateway");
        assert_eq!(by_field("/output/message").details.component, "card_agent");
        assert_eq!(by_field("/output/message").details.extra["location"], "agent_output");
        assert_eq!(by_field("/output/message").timestamp.as_str(), "2026-11-30T10:00:00Z");
        assert!(!Scope::under("/out", "x", Location::Event).covers("/output/message"));
    }
}
