//! The gate every event passes before it is appended: the field policy is applied (PII masked,
//! hashed or dropped as configured) and each finding raises a deduplicated `compliance.alerts`
//! event that never carries the raw value.

use std::sync::Mutex;

use eventline_model::events::{AlertAction, ComplianceAlert};
use eventline_model::topics::COMPLIANCE_ALERTS;
use serde_json::Value;

use crate::{AlertBuilder, AlertSource, Detector, Location, Policy};

/// Policy + detector + alert deduplication, shared by every producer of a process.
#[derive(Debug)]
pub struct Gate {
    detector: Detector,
    policy: Policy,
    alerts: Mutex<AlertBuilder>,
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
        let findings = self.policy.apply(topic, event, &self.detector);
        if findings.is_empty() {
            return Outcome::default();
        }
        let changed = findings.iter().any(|f| f.action != AlertAction::Allowed);
        // Alerts about alerts would loop; an alert is already free of raw values.
        if topic == COMPLIANCE_ALERTS {
            return Outcome { changed, alerts: Vec::new() };
        }
        let message_id = event.pointer("/_metadata/message_id").and_then(Value::as_str).map(str::to_owned);
        let source = AlertSource { component, execution_id: message_id.as_deref(), location };
        let alerts = self.alerts.lock().unwrap_or_else(|p| p.into_inner()).build(&source, &findings);
        Outcome { changed, alerts }
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
        let mut again = json!({"note": "mail a@b.co", "_metadata": {"message_id": "m1"}});
        let out = gate.apply("external.crm.events", &mut again, "crm", Location::InboundPayload);
        assert!(out.alerts.is_empty(), "one alert per event, type and field");
        let mut alert = json!({"details": {"field": "mail a@b.co"}});
        assert!(gate.apply(COMPLIANCE_ALERTS, &mut alert, "x", Location::Event).alerts.is_empty());
    }
}
