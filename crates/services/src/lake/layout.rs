//! The columns of each topic's Parquet files (and warehouse tables).
//!
//! Every file starts with the envelope — `timestamp` (the event's time, UTC, milliseconds),
//! `message_id`, `producer` — then the topic's own fields with their types, and ends with where
//! the record was in the log: `_partition`, `_offset`, `_key`. Nested objects (an execution's
//! `input` and `output`, a change's `data` and `before`, an alert's `details`, CRM `attributes`)
//! are JSON text columns: readers parse them with their JSON functions (DuckDB `->>`, Spark
//! `get_json_object`). Topics without a layout (user-created) get the envelope and `value`, the
//! whole event as JSON text.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use eventline_log::Record;
use eventline_model::topics::{
    AGENT_EXECUTIONS, COMPLIANCE_ALERTS, DB_CHANGES_CONVERSATIONS, DB_CHANGES_USERS, EXTERNAL_CRM_EVENTS,
    EXTERNAL_MARKET_DATA, SECURITY_EVENTS,
};
use serde_json::Value;

/// The type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// A nested value as JSON text.
    Json,
    Int64,
    Int32,
    Float64,
    /// UTC timestamp, milliseconds.
    Time,
}

impl Kind {
    fn arrow(self) -> DataType {
        match self {
            Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Int64 => DataType::Int64,
            Kind::Int32 => DataType::Int32,
            Kind::Float64 => DataType::Float64,
            Kind::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        }
    }

    /// The PostgreSQL type of the warehouse column.
    pub fn sql(self) -> &'static str {
        match self {
            Kind::Text => "TEXT",
            Kind::Json => "JSONB",
            Kind::Int64 => "BIGINT",
            Kind::Int32 => "INTEGER",
            Kind::Float64 => "DOUBLE PRECISION",
            Kind::Time => "TIMESTAMPTZ",
        }
    }
}

/// One column: its name, type and where in the event it comes from (a JSON pointer; `""` is the
/// whole event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub pointer: &'static str,
}

const fn col(name: &'static str, kind: Kind, pointer: &'static str) -> Column {
    Column { name, kind, pointer }
}

const ENVELOPE: [Column; 3] = [
    col("timestamp", Kind::Time, "/timestamp"),
    col("message_id", Kind::Text, "/_metadata/message_id"),
    col("producer", Kind::Text, "/_metadata/producer"),
];

const AGENT_EXECUTIONS_COLUMNS: &[Column] = &[
    col("execution_id", Kind::Text, "/execution_id"),
    col("agent_id", Kind::Text, "/agent_id"),
    col("status", Kind::Text, "/status"),
    col("duration_ms", Kind::Int64, "/duration_ms"),
    col("user_id", Kind::Text, "/input/user_id"),
    col("conversation_id", Kind::Text, "/input/conversation_id"),
    col("query", Kind::Text, "/input/query"),
    col("input", Kind::Json, "/input"),
    col("output", Kind::Json, "/output"),
];

const COMPLIANCE_ALERTS_COLUMNS: &[Column] = &[
    col("alert_id", Kind::Text, "/alert_id"),
    col("alert_type", Kind::Text, "/alert_type"),
    col("severity", Kind::Text, "/severity"),
    col("component", Kind::Text, "/details/component"),
    col("field", Kind::Text, "/details/field"),
    col("action", Kind::Text, "/details/action"),
    col("details", Kind::Json, "/details"),
];

const DB_CHANGES_USERS_COLUMNS: &[Column] = &[
    col("event_type", Kind::Text, "/event_type"),
    col("table_name", Kind::Text, "/table"),
    col("user_id", Kind::Text, "/data/UserId"),
    col("data", Kind::Json, "/data"),
    col("before", Kind::Json, "/before"),
];

const DB_CHANGES_CONVERSATIONS_COLUMNS: &[Column] = &[
    col("event_type", Kind::Text, "/event_type"),
    col("table_name", Kind::Text, "/table"),
    col("conversation_id", Kind::Text, "/data/conversation_id"),
    col("user_id", Kind::Text, "/data/user_id"),
    col("data", Kind::Json, "/data"),
    col("before", Kind::Json, "/before"),
];

const EXTERNAL_CRM_EVENTS_COLUMNS: &[Column] = &[
    col("event_id", Kind::Text, "/event_id"),
    col("source", Kind::Text, "/source"),
    col("entity_type", Kind::Text, "/entity_type"),
    col("entity_id", Kind::Text, "/entity_id"),
    col("action", Kind::Text, "/action"),
    col("attributes", Kind::Json, "/attributes"),
];

const EXTERNAL_MARKET_DATA_COLUMNS: &[Column] = &[
    col("symbol", Kind::Text, "/symbol"),
    col("price", Kind::Float64, "/price"),
    col("currency", Kind::Text, "/currency"),
    col("bid", Kind::Float64, "/bid"),
    col("ask", Kind::Float64, "/ask"),
    col("volume", Kind::Int64, "/volume"),
    col("exchange", Kind::Text, "/exchange"),
];

const SECURITY_EVENTS_COLUMNS: &[Column] = &[
    col("event_id", Kind::Text, "/event_id"),
    col("event_type", Kind::Text, "/event_type"),
    col("outcome", Kind::Text, "/outcome"),
    col("component", Kind::Text, "/component"),
    col("key_id", Kind::Text, "/key_id"),
    col("role", Kind::Text, "/role"),
    col("user_id", Kind::Text, "/user_id"),
    col("method", Kind::Text, "/method"),
    col("route", Kind::Text, "/route"),
    col("resource", Kind::Text, "/resource"),
    col("status", Kind::Int32, "/status"),
    col("source_address", Kind::Text, "/source_address"),
];

const GENERIC_COLUMNS: &[Column] = &[col("value", Kind::Json, "")];

/// The columns of `topic` between the envelope and the log position.
pub fn topic_columns(topic: &str) -> &'static [Column] {
    match topic {
        AGENT_EXECUTIONS => AGENT_EXECUTIONS_COLUMNS,
        COMPLIANCE_ALERTS => COMPLIANCE_ALERTS_COLUMNS,
        DB_CHANGES_USERS => DB_CHANGES_USERS_COLUMNS,
        DB_CHANGES_CONVERSATIONS => DB_CHANGES_CONVERSATIONS_COLUMNS,
        EXTERNAL_CRM_EVENTS => EXTERNAL_CRM_EVENTS_COLUMNS,
        EXTERNAL_MARKET_DATA => EXTERNAL_MARKET_DATA_COLUMNS,
        SECURITY_EVENTS => SECURITY_EVENTS_COLUMNS,
        _ => GENERIC_COLUMNS,
    }
}

/// Every column of `topic`'s files, in order (without the log position, which [`schema`] adds).
pub fn columns(topic: &str) -> Vec<Column> {
    ENVELOPE.iter().chain(topic_columns(topic)).copied().collect()
}

/// The Arrow schema of `topic`'s files.
pub fn schema(topic: &str) -> Arc<Schema> {
    let mut fields: Vec<Field> = columns(topic).iter().map(|c| Field::new(c.name, c.kind.arrow(), true)).collect();
    fields.push(Field::new("_partition", DataType::Int32, false));
    fields.push(Field::new("_offset", DataType::Int64, false));
    fields.push(Field::new("_key", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// One record made ready for a file: the event parsed (or `None` when the value is not JSON).
#[derive(Clone, Debug)]
pub struct Row {
    pub partition: u32,
    pub offset: u64,
    /// The record's log timestamp (ms), used when the event has no `timestamp`.
    pub log_time: i64,
    pub key: Option<String>,
    pub event: Option<Value>,
    /// The value as text when it is not a JSON object.
    pub raw: Option<String>,
}

impl Row {
    pub fn of(r: &Record) -> Row {
        let text = r.value_str();
        let event = text.and_then(|t| serde_json::from_str::<Value>(t).ok()).filter(Value::is_object);
        Row {
            partition: r.partition,
            offset: r.offset,
            log_time: r.timestamp,
            key: r.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
            raw: if event.is_none() { text.map(str::to_owned) } else { None },
            event,
        }
    }

    /// The event time in ms: the event's `timestamp`, else the log's.
    pub fn event_time(&self) -> i64 {
        self.event
            .as_ref()
            .and_then(|e| e.get("timestamp"))
            .and_then(Value::as_str)
            .and_then(crate::analytics::service::parse_millis)
            .unwrap_or(self.log_time)
    }

    fn at(&self, pointer: &str) -> Option<&Value> {
        self.event.as_ref().and_then(|e| if pointer.is_empty() { Some(e) } else { e.pointer(pointer) })
    }

    /// The value of `c` as text for a text or JSON column (`None` for null or missing).
    pub fn text(&self, c: &Column) -> Option<String> {
        if c.pointer.is_empty() && self.event.is_none() {
            return self.raw.clone();
        }
        match (self.at(c.pointer)?, c.kind) {
            (Value::Null, _) => None,
            (Value::String(s), Kind::Text) => Some(s.clone()),
            (v, Kind::Json) => Some(v.to_string()),
            (v, _) => Some(v.to_string()),
        }
    }

    pub fn int(&self, c: &Column) -> Option<i64> {
        let v = self.at(c.pointer)?;
        v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    }

    pub fn float(&self, c: &Column) -> Option<f64> {
        self.at(c.pointer)?.as_f64()
    }

    pub fn time(&self, c: &Column) -> Option<i64> {
        if c.name == "timestamp" {
            return Some(self.event_time());
        }
        self.at(c.pointer).and_then(Value::as_str).and_then(crate::analytics::service::parse_millis)
    }
}

/// The rows of one topic as an Arrow batch in [`schema`]'s layout.
pub fn batch(topic: &str, rows: &[&Row]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in columns(topic) {
        let array: ArrayRef = match c.kind {
            Kind::Text | Kind::Json => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
                for r in rows {
                    b.append_option(r.text(&c));
                }
                Arc::new(b.finish())
            }
            Kind::Int64 => {
                let mut b = Int64Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.int(&c));
                }
                Arc::new(b.finish())
            }
            Kind::Int32 => {
                let mut b = Int32Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.int(&c).and_then(|v| i32::try_from(v).ok()));
                }
                Arc::new(b.finish())
            }
            Kind::Float64 => {
                let mut b = Float64Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.float(&c));
                }
                Arc::new(b.finish())
            }
            Kind::Time => {
                let mut b = TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
                for r in rows {
                    b.append_option(r.time(&c));
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    let mut p = Int32Builder::with_capacity(rows.len());
    let mut o = Int64Builder::with_capacity(rows.len());
    let mut k = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
    for r in rows {
        p.append_value(r.partition as i32);
        o.append_value(r.offset as i64);
        k.append_option(r.key.as_deref());
    }
    arrays.push(Arc::new(p.finish()));
    arrays.push(Arc::new(o.finish()));
    arrays.push(Arc::new(k.finish()));
    RecordBatch::try_new(schema(topic), arrays)
}
