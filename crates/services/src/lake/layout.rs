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

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    /// Integers, and times as milliseconds since the epoch.
    Int(i64),
    Float(f64),
}

impl Cell {
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn float(&self) -> Option<f64> {
        match self {
            Cell::Float(f) => Some(*f),
            Cell::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

/// The members of a JSON object, unparsed: a handful, so a list beats a map.
struct Fields<'a>(Vec<(std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a serde_json::value::RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Fields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Fields<'a>, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(12));
                while let Some((k, v)) =
                    m.next_entry::<std::borrow::Cow<'de, str>, &'de serde_json::value::RawValue>()?
                {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// One record made ready for a file: its cells in the topic's column order (the event parsed
/// once, lazily, without building a JSON tree: nested objects keep their original text).
#[derive(Clone, Debug)]
pub struct Row {
    pub partition: u32,
    pub offset: u64,
    pub key: Option<String>,
    pub cells: Vec<Cell>,
    /// The event's time (its `timestamp`, else the log's), ms.
    pub event_time: i64,
    /// The event as JSON text, when it is a JSON object (the warehouse's `event` column).
    pub json: Option<bytes::Bytes>,
}

fn cell(raw: &serde_json::value::RawValue, kind: Kind) -> Cell {
    let text = raw.get();
    if text == "null" {
        return Cell::Null;
    }
    match kind {
        Kind::Json => Cell::Text(text.to_owned()),
        Kind::Text => match serde_json::from_str::<std::borrow::Cow<str>>(text) {
            Ok(s) => Cell::Text(s.into_owned()),
            Err(_) => Cell::Text(text.to_owned()),
        },
        Kind::Int64 | Kind::Int32 => text
            .parse::<i64>()
            .ok()
            .or_else(|| text.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
            .map_or(Cell::Null, Cell::Int),
        Kind::Float64 => text.parse::<f64>().map_or(Cell::Null, Cell::Float),
        Kind::Time => serde_json::from_str::<std::borrow::Cow<str>>(text)
            .ok()
            .and_then(|s| crate::analytics::service::parse_millis(&s))
            .map_or(Cell::Null, Cell::Int),
    }
}

impl Row {
    /// `r` of `topic`, in `topic`'s layout.
    pub fn of(topic: &str, r: &Record) -> Row {
        let cols = columns(topic);
        let value = r.value.as_deref().unwrap_or_default();
        let top: Option<Fields> = serde_json::from_slice(value).ok();
        let mut nested: Vec<(&str, Option<Fields>)> = Vec::new();
        let mut cells = Vec::with_capacity(cols.len());
        let mut event_time = r.timestamp;
        for c in &cols {
            let Some(top) = &top else {
                // Not a JSON object: the generic layout keeps the text, the others have nulls.
                cells.push(if c.pointer.is_empty() {
                    Cell::Text(String::from_utf8_lossy(value).into_owned())
                } else if c.name == "timestamp" {
                    Cell::Int(r.timestamp)
                } else {
                    Cell::Null
                });
                continue;
            };
            let raw = if c.pointer.is_empty() {
                None
            } else {
                let mut parts = c.pointer[1..].splitn(2, '/');
                let first = parts.next().unwrap_or_default();
                match parts.next() {
                    None => top.get(first),
                    Some(second) => {
                        let at = match nested.iter().position(|(k, _)| *k == first) {
                            Some(i) => i,
                            None => {
                                let parsed =
                                    top.get(first).and_then(|raw| serde_json::from_str::<Fields>(raw.get()).ok());
                                nested.push((first, parsed));
                                nested.len() - 1
                            }
                        };
                        nested[at].1.as_ref().and_then(|m| m.get(second))
                    }
                }
            };
            let v = match (c.pointer.is_empty(), raw) {
                (true, _) => Cell::Text(String::from_utf8_lossy(value).into_owned()),
                (false, Some(raw)) => cell(raw, c.kind),
                (false, None) => Cell::Null,
            };
            if c.name == "timestamp" {
                match v {
                    Cell::Int(ms) => event_time = ms,
                    _ => {
                        cells.push(Cell::Int(r.timestamp));
                        continue;
                    }
                }
            }
            cells.push(v);
        }
        Row {
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
            cells,
            event_time,
            json: top.is_some().then(|| r.value.clone()).flatten(),
        }
    }

    /// The event time in ms: the event's `timestamp`, else the log's.
    pub fn event_time(&self) -> i64 {
        self.event_time
    }
}

/// The rows of one topic as an Arrow batch in [`schema`]'s layout.
pub fn batch(topic: &str, rows: &[&Row]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, c) in columns(topic).iter().enumerate() {
        let array: ArrayRef = match c.kind {
            Kind::Text | Kind::Json => {
                let bytes = rows.iter().map(|r| r.cells[i].text().map_or(0, str::len)).sum();
                let mut b = StringBuilder::with_capacity(rows.len(), bytes);
                for r in rows {
                    b.append_option(r.cells[i].text());
                }
                Arc::new(b.finish())
            }
            Kind::Int64 => {
                let mut b = Int64Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.cells[i].int());
                }
                Arc::new(b.finish())
            }
            Kind::Int32 => {
                let mut b = Int32Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.cells[i].int().and_then(|v| i32::try_from(v).ok()));
                }
                Arc::new(b.finish())
            }
            Kind::Float64 => {
                let mut b = Float64Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_option(r.cells[i].float());
                }
                Arc::new(b.finish())
            }
            Kind::Time => {
                let mut b = TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
                for r in rows {
                    b.append_option(r.cells[i].int());
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
