//! Records as producers hand them in and consumers get them back.

use std::sync::Arc;

use bytes::Bytes;

/// A record header: a name and an optional value, as in Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Header {
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self { key: key.into(), value: Some(value.into()) }
    }
}

/// A record to append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    /// Partitioning key; records with the same key land on the same partition, in order.
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; the log's clock when `None`.
    pub timestamp: Option<i64>,
    /// Forces a partition instead of hashing the key.
    pub partition: Option<u32>,
}

impl ProduceRecord {
    /// A record with a value and an optional key.
    pub fn new(key: Option<impl Into<Bytes>>, value: impl Into<Bytes>) -> Self {
        Self { key: key.map(Into::into), value: Some(value.into()), ..Default::default() }
    }

    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    pub fn with_timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where an appended record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordPosition {
    pub partition: u32,
    /// The record's offset; `None` when the backend does not report it (Kafka with acks=0).
    pub offset: Option<u64>,
}

/// A record read from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl Record {
    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Option<&str> {
        self.value.as_deref().and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.key == key).and_then(|h| h.value.as_deref())
    }
}
