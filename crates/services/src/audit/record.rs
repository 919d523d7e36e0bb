//! What the trail records about one log record: the answers PCI DSS 10.2.2 asks for — who (user
//! id, API key id, component), what (event type, action), when (the event's time), outcome
//! (success or failure), origin (component, source address for API calls) and the affected
//! resource — and the event itself, as the log held it.
//!
//! The audit record is a JSON object; its RFC 8785 canonical text is what the chain hashes:
//!
//! ```json
//! {"source": {"topic": "agent.executions", "partition": 1, "offset": 42},
//!  "when": "2026-11-30T17:00:00.123Z",
//!  "who": {"user_id": "u1", "key_id": "elk_1a2b3c4d", "component": "card_agent"},
//!  "what": {"event_type": "agent.execution", "action": "card_agent.execute"},
//!  "outcome": "success",
//!  "origin": {"component": "card_agent", "address": null},
//!  "resource": {"type": "execution", "id": "exe_…"},
//!  "subject": "u1",
//!  "event": { … }}
//! ```
//!
//! `subject` is the customer the record is about (the user of a profile change, of an execution,
//! of a conversation), so one customer's whole history is one filter.

use chrono::{DateTime, SecondsFormat, Utc};
use eventline_log::Record;
use eventline_model::topics::{
    AGENT_EXECUTIONS, COMPLIANCE_ALERTS, DB_CHANGES_CONVERSATIONS, DB_CHANGES_USERS, SECURITY_EVENTS,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::chain::{canonical, hex};

/// One audit record ready to be chained: its canonical text and the columns it is filtered by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// RFC 3339, UTC, milliseconds (`2026-11-30T17:00:00.123Z`): sorts as text.
    pub event_time: String,
    /// Who acted: the API key id, else the user id, else the component.
    pub actor: Option<String>,
    /// The customer the record is about.
    pub subject: Option<String>,
    /// The affected resource's id.
    pub resource: Option<String>,
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub canonical: String,
}

/// Milliseconds since the epoch as the trail writes times.
pub fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 time (any offset) in the trail's form, if it is one.
pub fn normalise_time(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A `--since`/`--until` bound: an RFC 3339 time, or an age (`15m`, `2h`, `7days`) before now.
pub fn parse_bound(text: &str) -> Result<String, String> {
    if let Some(t) = normalise_time(text.trim()) {
        return Ok(t);
    }
    humantime::parse_duration(text.trim())
        .map(|age| format_time(Utc::now().timestamp_millis() - age.as_millis() as i64))
        .map_err(|_| {
            format!("`{text}` is not a time: give an RFC 3339 time (2026-11-30T10:00:00Z) or an age (15m, 2h, 7days)")
        })
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The audit record of `record`.
pub fn describe(record: &Record) -> Entry {
    let event: Option<Value> = record.value.as_deref().and_then(|v| serde_json::from_slice(v).ok());
    // The event's time, unless it runs more than 5 minutes ahead of the log's (a caller-chosen
    // timestamp in the future would otherwise hold retention up for ever).
    let when = event
        .as_ref()
        .and_then(|e| e.get("timestamp"))
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .filter(|t| t.timestamp_millis() <= record.timestamp + 300_000)
        .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| format_time(record.timestamp));
    let topic: &str = &record.topic;
    let e = event.as_ref().unwrap_or(&Value::Null);
    let producer = text(e, "/_metadata/producer");
    let mut user_id = None;
    let mut key_id = None;
    let mut component = producer.clone();
    let mut address = None;
    let mut subject = None;
    let (event_type, action, outcome, resource_type, resource_id);
    match topic {
        DB_CHANGES_USERS | DB_CHANGES_CONVERSATIONS => {
            let kind = text(e, "/event_type").unwrap_or_else(|| "CHANGE".into()).to_lowercase();
            let table = if topic == DB_CHANGES_USERS { "users" } else { "conversations" };
            event_type = "db.change".to_owned();
            action = format!("{table}.{kind}");
            outcome = "success";
            if topic == DB_CHANGES_USERS {
                subject = text(e, "/data/UserId");
                resource_type = "user";
                resource_id = subject.clone();
            } else {
                subject = text(e, "/data/user_id").or_else(|| text(e, "/before/user_id"));
                resource_type = "conversation";
                resource_id = text(e, "/data/conversation_id");
            }
        }
        AGENT_EXECUTIONS => {
            let agent = text(e, "/agent_id");
            event_type = "agent.execution".to_owned();
            action = format!("{}.execute", agent.as_deref().unwrap_or("agent"));
            outcome = if text(e, "/status").as_deref() == Some("completed") { "success" } else { "failure" };
            user_id = text(e, "/input/user_id");
            key_id = text(e, "/input/key_id");
            subject = user_id.clone();
            component = agent.or(component);
            resource_type = "execution";
            resource_id = text(e, "/execution_id");
        }
        COMPLIANCE_ALERTS => {
            let alert_action = text(e, "/details/action").unwrap_or_default();
            event_type = text(e, "/alert_type").unwrap_or_else(|| "ALERT".into());
            action = format!("governance.{}", alert_action.to_lowercase());
            outcome = if alert_action == "BLOCKED" { "failure" } else { "success" };
            component = text(e, "/details/component").or(component);
            resource_type = "field";
            resource_id = text(e, "/details/field");
        }
        SECURITY_EVENTS => {
            event_type = text(e, "/event_type").unwrap_or_else(|| "security".into());
            action = format!("{} {}", text(e, "/method").unwrap_or_default(), text(e, "/route").unwrap_or_default())
                .trim()
                .to_owned();
            outcome = if text(e, "/outcome").as_deref() == Some("success") { "success" } else { "failure" };
            key_id = text(e, "/key_id");
            user_id = text(e, "/user_id");
            subject = user_id.clone();
            component = text(e, "/component").or(component);
            address = text(e, "/source_address");
            resource_type = "api";
            resource_id = text(e, "/resource");
        }
        _ => {
            event_type = "event".to_owned();
            action = format!("{topic}.append");
            outcome = "success";
            resource_type = "record";
            resource_id = record.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned);
        }
    }
    let event_json = match (&event, &record.value) {
        (Some(v), _) => v.clone(),
        // Not JSON (only possible on a topic without a schema): its digest stands in for it.
        (None, Some(bytes)) => json!({"not_json": true, "bytes": bytes.len(), "sha256": hex(&Sha256::digest(bytes))}),
        (None, None) => Value::Null,
    };
    let actor = key_id.clone().or_else(|| user_id.clone()).or_else(|| component.clone());
    let audit = json!({
        "source": {"topic": topic, "partition": record.partition, "offset": record.offset},
        "when": when,
        "who": {"user_id": user_id, "key_id": key_id, "component": component},
        "what": {"event_type": event_type, "action": action},
        "outcome": outcome,
        "origin": {"component": component, "address": address},
        "resource": {"type": resource_type, "id": resource_id},
        "subject": subject,
        "event": event_json,
    });
    Entry {
        topic: topic.to_owned(),
        partition: record.partition,
        offset: record.offset,
        event_time: when,
        actor,
        subject,
        resource: resource_id,
        action,
        outcome: outcome.to_owned(),
        canonical: canonical(&audit),
    }
}

/// The fields of a stored record that its columns repeat; `verify` compares them.
#[derive(Debug, serde::Deserialize)]
pub struct Columns<'a> {
    #[serde(borrow)]
    pub source: Source<'a>,
    #[serde(borrow)]
    pub when: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub who: Who<'a>,
    #[serde(borrow)]
    pub what: What<'a>,
    #[serde(borrow)]
    pub outcome: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub resource: Resource<'a>,
    #[serde(borrow)]
    pub subject: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Source<'a> {
    #[serde(borrow)]
    pub topic: std::borrow::Cow<'a, str>,
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, serde::Deserialize)]
pub struct Who<'a> {
    #[serde(borrow)]
    pub user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub key_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub component: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct What<'a> {
    #[serde(borrow)]
    pub action: std::borrow::Cow<'a, str>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Resource<'a> {
    #[serde(borrow)]
    pub id: Option<std::borrow::Cow<'a, str>>,
}

impl Columns<'_> {
    pub fn actor(&self) -> Option<&str> {
        self.who.key_id.as_deref().or(self.who.user_id.as_deref()).or(self.who.component.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(topic: &str, value: Value) -> Record {
        Record {
            topic: topic.into(),
            partition: 2,
            offset: 7,
            timestamp: 1_800_000_000_000,
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn an_execution_names_who_what_when_outcome_and_resource() {
        let e = describe(&rec(
            AGENT_EXECUTIONS,
            json!({"execution_id": "exe_1", "agent_id": "card_agent", "status": "failed", "duration_ms": 3,
                   "input": {"query": "q", "user_id": "u1", "key_id": "elk_12345678"}, "output": {},
                   "timestamp": "2026-11-30T18:00:00+01:00", "_metadata": {"producer": "eventline"}}),
        ));
        assert_eq!(e.event_time, "2026-11-30T17:00:00.000Z");
        assert_eq!(e.actor.as_deref(), Some("elk_12345678"));
        assert_eq!(e.subject.as_deref(), Some("u1"));
        assert_eq!(e.resource.as_deref(), Some("exe_1"));
        assert_eq!(e.outcome, "failure");
        assert_eq!(e.action, "card_agent.execute");
        let parsed: Columns = serde_json::from_str(&e.canonical).unwrap();
        assert_eq!(parsed.actor(), Some("elk_12345678"));
        assert_eq!(parsed.source.offset, 7);
    }

    #[test]
    fn a_record_that_is_not_json_is_audited_by_its_digest() {
        let mut r = rec("user.topic", json!(null));
        r.value = Some(Bytes::from_static(b"\xff\xfe"));
        let e = describe(&r);
        assert!(e.canonical.contains("\"not_json\":true"), "{}", e.canonical);
        assert_eq!(e.event_time, "2027-01-15T08:00:00.000Z");
    }
}
