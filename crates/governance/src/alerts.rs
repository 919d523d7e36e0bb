//! `compliance.alerts` events from policy findings.
//!
//! One alert per (execution, PII type, field): repeated findings of the same execution are folded
//! into the first alert's count or suppressed when they arrive later. Alerts carry the component,
//! the field's JSON pointer, the action taken, the PII type and the count, never the value.

use std::collections::{BTreeMap, HashSet, VecDeque};

use eventline_model::events::{AlertAction, AlertDetails, ComplianceAlert, Severity};
use eventline_model::{MessageId, Metadata, Timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::PiiKind;
use crate::policy::Finding;

/// The `alert_type` of every alert built here.
pub const PII_EXPOSURE: &str = "PII_EXPOSURE";

/// Where the PII was found; it raises severity when the data was about to leave the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// An agent's answer (it goes back to the user and into `agent.executions`).
    AgentOutput,
    /// An end-user query to an agent.
    AgentInput,
    /// A payload from an integration (CRM, market data).
    InboundPayload,
    /// Any other event at produce time (CDC, internal).
    Event,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::AgentOutput => "agent_output",
            Location::AgentInput => "agent_input",
            Location::InboundPayload => "inbound_payload",
            Location::Event => "event",
        }
    }
}

/// Who found it: the component (e.g. `card_agent`, `crm_integration`), the execution or event (if
/// any), the location, the topic the event was bound for and when the event happened.
#[derive(Clone, Copy, Debug)]
pub struct AlertSource<'a> {
    pub component: &'a str,
    /// The execution id or message id of the event the finding is in (shown in the alert).
    pub execution_id: Option<&'a str>,
    /// What identifies the event for deduplication and alert ids, derived by the server (the gate
    /// uses the message id *and* a digest of the event's content, so a caller reusing another
    /// event's message id neither suppresses nor collides with its alerts); `execution_id` when
    /// `None`.
    pub identity: Option<&'a str>,
    pub location: Location,
    /// The topic of the event the finding is in (part of the alert's identity).
    pub topic: &'a str,
    /// When the event happened; the alert carries this time (now when unknown).
    pub at: Option<&'a Timestamp>,
}

/// The namespace of derived alert ids (UUID v5).
const ALERT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6576_656e_746c_696e_6561_6c65_7274_7331);

/// The identity of one finding: the same event, component, field and PII type always give the same
/// `alert_id` (UUID v5), and, with the same event time, the same `_metadata.message_id` (a UUID v7
/// whose random bits are taken from the id). So an alert raised again for a replayed or retried
/// event is recognisably the same alert. `None` when the event has no id to derive from.
pub fn derived_alert_ids(
    source: &AlertSource<'_>,
    pii_type: &str,
    field: &str,
    at_ms: i64,
) -> Option<(String, MessageId)> {
    let exec = source.identity.or(source.execution_id).filter(|e| !e.is_empty())?;
    let mut name = Vec::with_capacity(128);
    for part in [source.topic, exec, source.component, field, pii_type] {
        name.extend_from_slice(&(part.len() as u64).to_be_bytes());
        name.extend_from_slice(part.as_bytes());
    }
    let alert_id = uuid::Uuid::new_v5(&ALERT_NAMESPACE, &name);
    let digest = Sha256::digest(alert_id.as_bytes());
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&digest[..10]);
    let message_id = uuid::Builder::from_unix_timestamp_millis(at_ms.max(0) as u64, &rand).into_uuid();
    Some((alert_id.to_string(), MessageId::parse(message_id.to_string()).expect("a UUID is not empty")))
}

fn bump(s: Severity) -> Severity {
    match s {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

/// Severity by PII type (SSN and cards HIGH, IBAN MEDIUM, e-mail, phone and IP LOW, an unclassified
/// configured field MEDIUM), one level up for agent output, one more when policy let it through.
pub fn severity(kind: Option<PiiKind>, location: Location, action: AlertAction) -> Severity {
    let mut s = match kind {
        Some(PiiKind::Ssn | PiiKind::CreditCard) => Severity::High,
        Some(PiiKind::Iban) | None => Severity::Medium,
        Some(PiiKind::Email | PiiKind::Phone | PiiKind::IpAddress) => Severity::Low,
    };
    if location == Location::AgentOutput {
        s = bump(s);
    }
    if action == AlertAction::Allowed {
        s = bump(s);
    }
    s
}

type Key = (String, Option<PiiKind>, String);

/// Builds deduplicated alerts. Keeps the keys of the last `capacity` alerts it raised.
#[derive(Debug)]
pub struct AlertBuilder {
    producer: String,
    seen: HashSet<Key>,
    order: VecDeque<Key>,
    capacity: usize,
}

impl AlertBuilder {
    /// A builder writing `producer` into `_metadata` (e.g. `eventline_model::metadata::DEFAULT_PRODUCER`).
    pub fn new(producer: impl Into<String>) -> Self {
        Self::with_capacity(producer, 100_000)
    }

    /// Like [`AlertBuilder::new`], remembering at most `capacity` (execution, type, field) keys.
    pub fn with_capacity(producer: impl Into<String>, capacity: usize) -> Self {
        Self { producer: producer.into(), seen: HashSet::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// One alert per new (execution, type, field) among `findings`.
    pub fn build(&mut self, source: &AlertSource<'_>, findings: &[Finding]) -> Vec<ComplianceAlert> {
        let exec = source.identity.or(source.execution_id).unwrap_or("");
        // fold this batch first: same key -> one alert with the summed count
        let mut batch: BTreeMap<(Option<PiiKind>, &str), (usize, AlertAction)> = BTreeMap::new();
        let mut order = Vec::new();
        for f in findings {
            let k = (f.kind, f.field.as_str());
            let entry = batch.entry(k).or_insert_with(|| {
                order.push(k);
                (0, f.action)
            });
            entry.0 += f.count;
        }
        let mut alerts = Vec::new();
        for k in order {
            let key: Key = (exec.to_owned(), k.0, k.1.to_owned());
            if self.seen.contains(&key) {
                continue;
            }
            if self.order.len() >= self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
            self.seen.insert(key.clone());
            self.order.push_back(key);
            let (count, action) = batch[&k];
            alerts.push(self.alert(source, k.0, k.1, action, count));
        }
        alerts
    }

    fn alert(
        &self,
        source: &AlertSource<'_>,
        kind: Option<PiiKind>,
        field: &str,
        action: AlertAction,
        count: usize,
    ) -> ComplianceAlert {
        let pii_type = kind.map_or("CONFIGURED_FIELD", PiiKind::as_str);
        let mut extra = Map::new();
        extra.insert("pii_type".into(), Value::String(pii_type.to_owned()));
        extra.insert("location".into(), Value::String(source.location.as_str().to_owned()));
        extra.insert("count".into(), Value::from(count));
        if let Some(exec) = source.execution_id {
            extra.insert("execution_id".into(), Value::String(exec.to_owned()));
        }
        let timestamp = source.at.cloned().unwrap_or_else(Timestamp::now);
        let mut metadata = Metadata::new(self.producer.clone());
        let alert_id = match derived_alert_ids(source, pii_type, field, timestamp.unix_millis()) {
            Some((alert_id, message_id)) => {
                metadata.timestamp = timestamp.clone();
                metadata.message_id = message_id;
                alert_id
            }
            None => uuid::Uuid::now_v7().to_string(),
        };
        ComplianceAlert {
            alert_id,
            alert_type: PII_EXPOSURE.to_owned(),
            severity: severity(kind, source.location, action),
            details: AlertDetails { component: source.component.to_owned(), field: field.to_owned(), action, extra },
            timestamp,
            metadata,
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Detector, Policy};

    fn scan_output(exec: &str, b: &mut AlertBuilder, text: &str) -> (Value, Vec<ComplianceAlert>) {
        let mut ev = json!({"execution_id": exec, "output": {"message": text}});
        let findings = Policy::default().apply("agent.executions", &mut ev, &Detector::new());
        let src = AlertSource {
            component: "card_agent",
            execution_id: Some(exec),
            identity: None,
            location: Location::AgentOutput,
            topic: "agent.executions",
            at: None,
        };
        (ev, b.build(&src, &findings))
    }

    #[test]
    fn one_alert_per_execution_type_and_field_without_raw_values() {
        let mut b = AlertBuilder::new("enterprise-agent-platform");
        let raw = ["123-45-6789", "219-09-9999", "4111 1111 1111 1111", "jane@example.com"];
        let text = format!("SSN {} or SSN {}; card {}; mail {}", raw[0], raw[1], raw[2], raw[3]);
        let (ev, alerts) = scan_output("exec-1", &mut b, &text);
        assert_eq!(ev["output"]["message"], "SSN [SSN] or SSN [SSN]; card 411111******1111; mail [EMAIL]");
        assert_eq!(alerts.len(), 3, "two SSNs in one field fold into one alert");
        let ssn = alerts.iter().find(|a| a.details.extra["pii_type"] == "SSN").unwrap();
        assert_eq!(ssn.alert_type, "PII_EXPOSURE");
        assert_eq!(ssn.severity, Severity::Critical);
        assert_eq!(ssn.details.component, "card_agent");
        assert_eq!(ssn.details.field, "/output/message");
        assert_eq!(ssn.details.action, AlertAction::Redacted);
        assert_eq!(ssn.details.extra["count"], 2);
        assert_eq!(uuid::Uuid::parse_str(ssn.metadata.message_id.as_str()).unwrap().get_version_num(), 7);
        for a in &alerts {
            let wire = serde_json::to_string(a).unwrap();
            for r in raw {
                assert!(!wire.contains(r), "alert leaks {r}: {wire}");
                assert!(!wire.contains(&r.replace(' ', "")), "alert leaks {r}: {wire}");
            }
            assert!(!wire.contains("1111 1111"), "{wire}");
        }
        // same execution again: nothing new; another execution: alerts again
        assert!(scan_output("exec-1", &mut b, &text).1.is_empty());
        assert_eq!(scan_output("exec-2", &mut b, &text).1.len(), 3);
    }

    #[test]
    fn alert_ids_are_derived_from_the_finding() {
        let at: Timestamp = "2026-11-30T10:00:00.123Z".parse().unwrap();
        let text = "mail jane@example.com";
        let build = |exec: &str, component: &str| {
            let mut ev = json!({"output": {"message": text}});
            let findings = Policy::default().apply("agent.executions", &mut ev, &Detector::new());
            let src = AlertSource {
                component,
                execution_id: Some(exec),
                identity: None,
                location: Location::AgentOutput,
                topic: "agent.executions",
                at: Some(&at),
            };
            AlertBuilder::new("p").build(&src, &findings).remove(0)
        };
        let (a, again) = (build("exec-1", "card_agent"), build("exec-1", "card_agent"));
        assert_eq!(a, again, "a replayed finding is the same alert, byte for byte");
        assert_eq!(uuid::Uuid::parse_str(&a.alert_id).unwrap().get_version_num(), 5);
        let mid = uuid::Uuid::parse_str(a.metadata.message_id.as_str()).unwrap();
        assert_eq!(mid.get_version_num(), 7);
        assert_eq!(a.timestamp, at, "the alert carries the event's time");
        assert_ne!(a.alert_id, build("exec-2", "card_agent").alert_id);
        assert_ne!(a.alert_id, build("exec-1", "loan_agent").alert_id);
    }

    #[test]
    fn severity_by_type_location_and_action() {
        use Location::*;
        assert_eq!(severity(Some(PiiKind::Email), Event, AlertAction::Redacted), Severity::Low);
        assert_eq!(severity(Some(PiiKind::Email), AgentOutput, AlertAction::Redacted), Severity::Medium);
        assert_eq!(severity(Some(PiiKind::Iban), InboundPayload, AlertAction::Hashed), Severity::Medium);
        assert_eq!(severity(Some(PiiKind::CreditCard), InboundPayload, AlertAction::Masked), Severity::High);
        assert_eq!(severity(Some(PiiKind::Ssn), AgentOutput, AlertAction::Allowed), Severity::Critical);
        assert_eq!(severity(None, Event, AlertAction::Hashed), Severity::Medium);
    }

    #[test]
    fn capacity_bounds_memory() {
        let mut b = AlertBuilder::with_capacity("p", 2);
        let f = |field: &str| Finding {
            field: field.into(),
            kind: Some(PiiKind::Email),
            action: AlertAction::Redacted,
            count: 1,
        };
        let src = AlertSource {
            component: "c",
            execution_id: Some("e"),
            identity: None,
            location: Location::Event,
            topic: "t",
            at: None,
        };
        assert_eq!(b.build(&src, &[f("/a"), f("/b"), f("/c")]).len(), 3);
        assert_eq!(b.seen.len(), 2);
        assert_eq!(b.build(&src, &[f("/a")]).len(), 1, "forgotten key alerts again");
        assert!(b.build(&src, &[f("/c")]).is_empty());
    }
}
