//! The seed's three JSON examples, verbatim (tests/seed/*.json), parse into the typed model,
//! validate against their topic's schema and serialise back to semantically equal JSON.

use eventline_model::events::{AgentExecution, ComplianceAlert, DbChange, Event};
use eventline_model::schema;
use serde_json::Value;

fn round_trip<E: Event>(topic: &str, text: &str) -> E {
    let original: Value = serde_json::from_str(text).unwrap();
    schema::validate(topic, &original).unwrap_or_else(|e| panic!("seed example rejected: {e}"));
    let typed: E = serde_json::from_str(text).unwrap();
    let back = typed.to_value();
    assert_eq!(back, original, "typed round trip changed the event");
    schema::validate(topic, &back).unwrap();
    typed
}

#[test]
fn seed_database_change_event() {
    let ev: DbChange = round_trip("db.changes.users", include_str!("seed/db_change.json"));
    assert_eq!(ev.topic(), "db.changes.users");
    assert_eq!(ev.key().as_deref(), Some("user-123"));
    assert_eq!(ev.metadata().message_id.as_str(), "msg-uuid-123");
}

#[test]
fn seed_agent_execution_event() {
    let ev: AgentExecution = round_trip("agent.executions", include_str!("seed/agent_execution.json"));
    assert_eq!(ev.duration_ms, 250);
    assert_eq!(ev.output["balance"], serde_json::json!(5432.10));
}

#[test]
fn seed_compliance_alert_event() {
    let ev: ComplianceAlert = round_trip("compliance.alerts", include_str!("seed/compliance_alert.json"));
    assert_eq!(ev.key().as_deref(), Some("alert-789"));
}

#[test]
fn agent_example_with_string_duration_is_rejected_at_duration_ms() {
    let mut v: Value = serde_json::from_str(include_str!("seed/agent_execution.json")).unwrap();
    v["duration_ms"] = Value::String("250".into());
    let err = schema::validate("agent.executions", &v).unwrap_err();
    assert_eq!(err.violations.len(), 1, "{err}");
    assert_eq!(err.violations[0].pointer, "/duration_ms");
    assert!(err.to_string().contains("/duration_ms"), "{err}");
}

#[test]
fn every_violation_is_reported_with_its_pointer() {
    let mut v: Value = serde_json::from_str(include_str!("seed/compliance_alert.json")).unwrap();
    v["severity"] = "SEVERE".into();
    v["details"].as_object_mut().unwrap().remove("action");
    v["_metadata"]["message_id"] = "".into();
    v["timestamp"] = "yesterday".into();
    let err = schema::validate("compliance.alerts", &v).unwrap_err();
    let mut pointers: Vec<_> = err.violations.iter().map(|v| v.pointer.as_str()).collect();
    pointers.sort();
    assert_eq!(pointers, ["/_metadata/message_id", "/details/action", "/severity", "/timestamp"]);
}

#[test]
fn extra_fields_are_allowed_and_kept() {
    let mut v: Value = serde_json::from_str(include_str!("seed/agent_execution.json")).unwrap();
    v["user_id"] = "user-1".into();
    v["_metadata"]["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into();
    schema::validate("agent.executions", &v).unwrap();
    let typed: AgentExecution = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(typed.to_value(), v);
}

#[test]
fn user_topics_accept_objects_only() {
    assert!(schema::validate("my.topic", &serde_json::json!({"a": 1})).is_ok());
    assert!(schema::validate("my.topic", &serde_json::json!([1])).is_err());
    assert!(schema::schema_for("my.topic").is_none());
}
