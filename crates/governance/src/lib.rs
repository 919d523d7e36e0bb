//! eventline's governance engine: finds personal data in free text and JSON events, redacts or
//! hashes it according to a policy, and turns what it found into `compliance.alerts` events.
//!
//! - [`Detector`] finds `SSN`, `CREDIT_CARD`, `EMAIL`, `PHONE`, `IBAN` and `IP_ADDRESS` in text:
//!   patterns, then validators (Luhn + card IIN ranges, SSA ranges, ISO 13616 mod-97 and country
//!   lengths, E.164 / national phone plans, IPv4 / IPv6), then context words. Offsets are Unicode
//!   characters, end exclusive. Compiled once per process; clone and share freely.
//! - [`redact`] replaces entities with typed masks (`[SSN]`, cards as `411111******1111`).
//! - [`scan_line`] is the I/O of `eventline pii scan [--redact]`.
//! - [`Policy`] (TOML) says per topic and field whether to `allow`, `mask`, `hash` (HMAC-SHA256) or
//!   `drop`, and what to do with free-text PII in any other string field; [`Policy::apply`] rewrites
//!   an event in place and returns [`Finding`]s.
//! - [`AlertBuilder`] turns findings into deduplicated [`ComplianceAlert`](eventline_model::events::ComplianceAlert)s
//!   that never carry the raw value.
//!
//! ```
//! use eventline_governance::{AlertBuilder, AlertSource, Detector, Location, PiiKind, Policy, redact};
//! use serde_json::json;
//!
//! let detector = Detector::new();
//! let text = "Hi, I'm Zoë — SSN 123-45-6789, card 4111 1111 1111 1111.";
//! let entities = detector.detect(text);
//! assert_eq!(entities[0].kind, PiiKind::Ssn);
//! assert_eq!((entities[0].start, entities[0].end), (18, 29)); // characters, not bytes
//! assert_eq!(redact(text, &entities), "Hi, I'm Zoë — SSN [SSN], card 411111******1111.");
//!
//! let policy = Policy::from_toml_str(r#"
//!     [hash]
//!     key = "a-secret-of-at-least-16-bytes"
//!     [tables.Users.columns]
//!     SSN = "hash"
//! "#).unwrap();
//! let mut event = json!({"event_type": "INSERT", "table": "Users",
//!                        "data": {"UserId": "u1", "SSN": "123-45-6789", "Note": "call +1 212 555 0147"}});
//! let findings = policy.apply("db.changes.users", &mut event, &detector);
//! assert!(event["data"]["SSN"].as_str().unwrap().starts_with("hmac-sha256:"));
//! assert_eq!(event["data"]["Note"], "call [PHONE]");
//!
//! let mut alerts = AlertBuilder::new("enterprise-agent-platform");
//! let source = AlertSource {
//!     component: "cdc", execution_id: Some("0193c9a0-0000-7000-8000-000000000001"), identity: None,
//!     location: Location::Event, topic: "db.changes.users", at: None,
//! };
//! let raised = alerts.build(&source, &findings);
//! assert_eq!(raised.len(), 2);
//! assert!(!serde_json::to_string(&raised).unwrap().contains("6789"));
//! ```

pub mod alerts;
mod context;
pub mod detector;
mod gate;
pub mod kind;
pub mod policy;
pub mod redaction;
pub mod scan;
pub mod validators;

pub use alerts::{AlertBuilder, AlertSource, Location, PII_EXPOSURE, derived_alert_ids, severity};
pub use detector::{DEFAULT_THRESHOLD, Detector, Entity};
pub use gate::{Gate, Outcome, Part, Scope};
pub use kind::PiiKind;
pub use policy::{Action, Finding, Policy, PolicyError, detect_field};
pub use redaction::{mask_card, mask_value, redact, redact_with};
pub use scan::{ScanError, scan_line};

#[cfg(test)]
mod tests {
    #[test]
    fn detector_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<super::Detector>();
        assert_send_sync::<super::Policy>();
    }
}
