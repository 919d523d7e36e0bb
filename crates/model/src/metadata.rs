//! The `_metadata` envelope every event carries.

use serde::{Deserialize, Deserializer, Serialize};

use crate::Timestamp;

/// The producer name eventline writes unless configured otherwise.
pub const DEFAULT_PRODUCER: &str = "enterprise-agent-platform";

/// A non-empty message id. eventline writes UUID v7 (time-ordered); it reads any non-empty string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// A fresh UUID v7.
    pub fn new_v7() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Wraps `id`, refusing the empty string.
    pub fn parse(id: impl Into<String>) -> Result<Self, &'static str> {
        let id = id.into();
        if id.is_empty() { Err("message_id must not be empty") } else { Ok(Self(id)) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `_metadata`: when and by whom an event was produced, and its unique id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub timestamp: Timestamp,
    pub message_id: MessageId,
    pub producer: String,
    /// Fields a producer added that eventline does not interpret; kept on round trips.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Metadata {
    /// Metadata for an event produced now by `producer`.
    pub fn new(producer: impl Into<String>) -> Self {
        Self {
            timestamp: Timestamp::now(),
            message_id: MessageId::new_v7(),
            producer: producer.into(),
            extra: Default::default(),
        }
    }

    /// Fills in `_metadata` (`timestamp`, UUID v7 `message_id`, `producer`) and the top-level
    /// `timestamp` of `event` where they are missing; what the caller sent is kept. What
    /// `eventline produce --stamp` and the gateway's ingest endpoints do to inbound events.
    pub fn stamp_missing(event: &mut serde_json::Value, producer: &str) {
        use serde_json::Value;
        let Some(obj) = event.as_object_mut() else { return };
        let meta = Metadata::new(producer);
        let now = meta.timestamp.as_str().to_owned();
        let m = obj.entry("_metadata").or_insert_with(|| serde_json::json!({}));
        if let Some(m) = m.as_object_mut() {
            m.entry("timestamp").or_insert_with(|| Value::String(now.clone()));
            m.entry("message_id").or_insert_with(|| Value::String(meta.message_id.to_string()));
            m.entry("producer").or_insert_with(|| Value::String(producer.to_owned()));
        }
        obj.entry("timestamp").or_insert(Value::String(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_ids_are_time_ordered_uuid_v7() {
        let a = MessageId::new_v7();
        let b = MessageId::new_v7();
        let ua = uuid::Uuid::parse_str(a.as_str()).unwrap();
        assert_eq!(ua.get_version_num(), 7);
        assert!(a < b, "v7 ids sort by creation time");
    }

    #[test]
    fn any_non_empty_id_is_read_and_empty_is_refused() {
        let m: MessageId = serde_json::from_str("\"msg-uuid-123\"").unwrap();
        assert_eq!(m.as_str(), "msg-uuid-123");
        let err = serde_json::from_str::<MessageId>("\"\"").unwrap_err().to_string();
        assert!(err.contains("must not be empty"), "{err}");
    }
}
