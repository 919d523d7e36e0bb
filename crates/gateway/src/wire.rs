//! The shapes the gateway's read endpoints put on the wire, shared with the command line's client
//! (`eventline consume` through a running `up`), so both ends agree by construction.

use std::sync::Arc;

use bytes::Bytes;
use eventline_log::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// One record as the read endpoints show it; `value` is the event's JSON as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordView {
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<String>,
    pub value: Box<RawValue>,
}

impl RecordView {
    pub fn of(r: &Record) -> RecordView {
        let value = match r.value.as_deref() {
            None => RawValue::from_string("null".to_owned()),
            Some(v) => match std::str::from_utf8(v).ok().filter(|t| serde_json::from_str::<&RawValue>(t).is_ok()) {
                Some(text) => RawValue::from_string(text.trim().to_owned()),
                // Not JSON: shown as a JSON string.
                None => RawValue::from_string(Value::String(String::from_utf8_lossy(v).into_owned()).to_string()),
            },
        }
        .expect("valid JSON");
        RecordView {
            partition: r.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp,
            key: r.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
            value,
        }
    }

    /// The record again, as the client side reads it (headers are not shown on the wire).
    pub fn into_record(self, topic: &Arc<str>) -> Record {
        let value = self.value.get();
        Record {
            topic: topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp_ms,
            key: self.key.map(Bytes::from),
            value: (value != "null").then(|| Bytes::copy_from_slice(value.as_bytes())),
            headers: Vec::new(),
        }
    }
}

/// The request's valid W3C `traceparent` header (an invalid one is ignored, as the W3C
/// recommendation asks).
pub fn incoming_traceparent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(eventline_pipeline::TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| eventline_pipeline::check_traceparent(v).is_ok())
        .map(str::to_owned)
}

/// The `traceparent` what `span` writes carries: the span's own when spans are exported,
/// otherwise the request's.
pub fn traceparent_for(span: &tracing::Span, headers: &axum::http::HeaderMap) -> Option<String> {
    eventline_telemetry::traceparent_or(span, incoming_traceparent(headers))
}
