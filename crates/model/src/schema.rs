//! One JSON Schema per built-in topic, shipped inside the binary, and validation that reports
//! every violation with its JSON pointer and reason.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::topics::*;

/// One reason an event does not satisfy its topic's schema.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON pointer to the offending field (`/duration_ms`); for a missing field, where it belongs.
    pub pointer: String,
    pub reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "{at}: {}", self.reason)
    }
}

/// All the violations of one event, rendered as one message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event does not match the schema of `{topic}`: {}", list(.violations))]
pub struct SchemaError {
    pub topic: String,
    pub violations: Vec<Violation>,
}

fn list(v: &[Violation]) -> String {
    v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time", "description": "RFC 3339 timestamp"})
}

fn metadata() -> Value {
    json!({
        "type": "object",
        "description": "Envelope: when and by whom the event was produced, and its unique id.",
        "required": ["timestamp", "message_id", "producer"],
        "properties": {
            "timestamp": timestamp(),
            "message_id": {"type": "string", "minLength": 1},
            "producer": {"type": "string", "minLength": 1}
        }
    })
}

fn envelope(title: &str, description: &str, required: &[&str], properties: Value) -> Value {
    let mut props = properties.as_object().cloned().unwrap_or_default();
    props.insert("timestamp".into(), timestamp());
    props.insert("_metadata".into(), metadata());
    let mut req: Vec<&str> = required.to_vec();
    req.extend(["timestamp", "_metadata"]);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": description,
        "type": "object",
        "required": req,
        "properties": props,
        "additionalProperties": true
    })
}

fn db_change(table: &str, key: &str) -> Value {
    let row = json!({"type": "object"});
    envelope(
        &format!("{table} change"),
        &format!("A row change of `{table}` captured by CDC. Key: data.{key}."),
        &["event_type", "table", "data"],
        json!({
            "event_type": {"enum": ["INSERT", "UPDATE", "DELETE", "SNAPSHOT"]},
            "table": {"const": table},
            "data": {
                "type": "object",
                "required": [key],
                "description": "The full row after the change; the key columns for DELETE."
            },
            "before": {
                "anyOf": [row, {"type": "null"}],
                "description": "UPDATE: prior values of the changed columns; DELETE: the full prior row."
            }
        }),
    )
}

fn build(topic: &str) -> Option<Value> {
    let non_empty = json!({"type": "string", "minLength": 1});
    Some(match topic {
        DB_CHANGES_USERS => db_change("Users", "UserId"),
        DB_CHANGES_CONVERSATIONS => db_change("conversations", "conversation_id"),
        AGENT_EXECUTIONS => envelope(
            "Agent execution",
            "One execution of a domain agent. Key: execution_id.",
            &["execution_id", "agent_id", "status", "duration_ms", "input", "output"],
            json!({
                "execution_id": non_empty,
                "agent_id": {"enum": ["card_agent", "loan_agent", "wealth_agent"]},
                "status": {"enum": ["completed", "failed", "rejected"]},
                "duration_ms": {"type": "integer", "minimum": 0},
                "input": {"type": "object", "required": ["query"], "properties": {"query": {"type": "string"}}},
                "output": {"type": "object"}
            }),
        ),
        COMPLIANCE_ALERTS => envelope(
            "Compliance alert",
            "A governance finding. Never contains the raw PII it reports. Key: alert_id.",
            &["alert_id", "alert_type", "severity", "details"],
            json!({
                "alert_id": non_empty,
                "alert_type": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                "severity": {"enum": ["LOW", "MEDIUM", "HIGH", "CRITICAL"]},
                "details": {
                    "type": "object",
                    "required": ["component", "field", "action"],
                    "properties": {
                        "component": non_empty,
                        "field": {"type": "string"},
                        "action": {"enum": ["REDACTED", "BLOCKED", "MASKED", "HASHED", "DROPPED", "ALLOWED"]}
                    }
                }
            }),
        ),
        EXTERNAL_CRM_EVENTS => envelope(
            "CRM event",
            "A change in an external CRM (e.g. Salesforce, ServiceNow). Key: entity_id.",
            &["event_id", "source", "entity_type", "entity_id", "action"],
            json!({
                "event_id": non_empty,
                "source": non_empty,
                "entity_type": {"enum": ["contact", "account", "case", "opportunity", "lead"]},
                "entity_id": non_empty,
                "action": {"enum": ["created", "updated", "deleted"]},
                "attributes": {"type": "object"}
            }),
        ),
        SECURITY_EVENTS => envelope(
            "Security event",
            "What the gateway saw that the audit trail must hold (PCI DSS 10.2.2): who (key id, role, \
             user), what (event type, action), outcome, origin (source address), the affected resource. \
             Never carries a secret. Key: event_id.",
            &["event_id", "event_type", "outcome", "component"],
            json!({
                "event_id": non_empty,
                "event_type": {"enum": [
                    "auth.failed", "authz.denied", "key.created", "key.revoked",
                    "profile.created", "profile.updated", "profile.deleted"
                ]},
                "outcome": {"enum": ["success", "failure"]},
                "component": non_empty,
                "key_id": {"type": ["string", "null"]},
                "role": {"type": ["string", "null"]},
                "user_id": {"type": ["string", "null"]},
                "method": {"type": "string"},
                "route": {"type": "string"},
                "resource": {"type": ["string", "null"]},
                "status": {"type": "integer"},
                "reason": {"type": "string"},
                "source_address": {"type": ["string", "null"]}
            }),
        ),
        EXTERNAL_MARKET_DATA => envelope(
            "Market-data tick",
            "One price update for an instrument. Key: symbol.",
            &["symbol", "price", "currency"],
            json!({
                "symbol": {"type": "string", "pattern": "^[A-Za-z0-9.:/=^-]{1,32}$"},
                "price": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "bid": {"type": "number", "minimum": 0},
                "ask": {"type": "number", "minimum": 0},
                "volume": {"type": "integer", "minimum": 0},
                "exchange": {"type": "string"}
            }),
        ),
        _ => return None,
    })
}

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

fn registry() -> &'static BTreeMap<&'static str, Compiled> {
    static REGISTRY: OnceLock<BTreeMap<&'static str, Compiled>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        BUILTIN_TOPICS
            .iter()
            .map(|(topic, _)| {
                let schema = build(topic).expect("every built-in topic has a schema");
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .expect("built-in schemas are valid");
                (*topic, Compiled { schema, validator })
            })
            .collect()
    })
}

/// The JSON Schema of `topic`, or `None` for topics without one (user-defined, dead letters).
pub fn schema_for(topic: &str) -> Option<&'static Value> {
    registry().get(topic).map(|c| &c.schema)
}

/// Validates `event` against the schema of `topic`. Topics without a schema accept any JSON object.
pub fn validate(topic: &str, event: &Value) -> Result<(), SchemaError> {
    let violations = match registry().get(topic) {
        // The common case first: a valid event costs one pass and no error values.
        Some(compiled) if compiled.validator.is_valid(event) => return Ok(()),
        Some(compiled) => compiled
            .validator
            .iter_errors(event)
            .map(|e| {
                let mut pointer = e.instance_path().to_string();
                if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind()
                    && let Some(name) = property.as_str()
                {
                    pointer = format!("{pointer}/{}", escape(name));
                }
                Violation { pointer, reason: e.to_string() }
            })
            .collect::<Vec<_>>(),
        None if event.is_object() => vec![],
        None => vec![Violation { pointer: String::new(), reason: "an event must be a JSON object".into() }],
    };
    if violations.is_empty() { Ok(()) } else { Err(SchemaError { topic: topic.to_owned(), violations }) }
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
