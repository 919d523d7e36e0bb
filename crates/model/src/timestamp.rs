//! RFC 3339 timestamps that round-trip exactly.
//!
//! eventline *writes* UTC timestamps with millisecond precision (`2026-11-27T03:04:05.123Z`) and
//! *reads* any RFC 3339 timestamp. The original text is kept so that an event read from the wire
//! serialises back to the same string it arrived with.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated RFC 3339 timestamp; compares and orders by instant.
#[derive(Clone, Debug)]
pub struct Timestamp {
    text: String,
    instant: DateTime<Utc>,
}

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 timestamp (expected e.g. 2026-11-27T03:04:05.123Z): {reason}")]
pub struct TimestampError {
    text: String,
    reason: String,
}

impl Timestamp {
    /// The current time, UTC, milliseconds.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Formats `instant` the way eventline writes timestamps (UTC, milliseconds, `Z`).
    pub fn from_datetime(instant: DateTime<Utc>) -> Self {
        let text = instant.to_rfc3339_opts(SecondsFormat::Millis, true);
        // Re-parse so the stored instant is truncated to the written precision.
        let instant = DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).unwrap_or(instant);
        Self { text, instant }
    }

    /// Milliseconds since the Unix epoch.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        DateTime::<Utc>::from_timestamp_millis(ms).map(Self::from_datetime)
    }

    /// The instant this timestamp names.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.instant.timestamp_millis()
    }

    /// The text exactly as it was written or read.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let instant = DateTime::parse_from_rfc3339(text)
            .map_err(|e| TimestampError { text: text.to_owned(), reason: e.to_string() })?;
        Ok(Self { text: text.to_owned(), instant: instant.with_timezone(&Utc) })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.instant == other.instant
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.instant.cmp(&other.instant)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_timestamps_are_utc_with_milliseconds() {
        let ts = Timestamp::from_unix_millis(1_732_665_600_123).unwrap();
        assert_eq!(ts.as_str(), "2024-11-27T00:00:00.123Z");
    }

    #[test]
    fn any_rfc3339_is_read_and_kept_verbatim() {
        for text in ["2024-11-27T00:00:00Z", "2024-11-27T01:00:00+01:00", "2024-11-27T00:00:00.123456789Z"] {
            let ts: Timestamp = text.parse().unwrap();
            assert_eq!(ts.as_str(), text);
        }
        let a: Timestamp = "2024-11-27T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2024-11-27T01:00:00+01:00".parse().unwrap();
        assert_eq!(a, b, "equal instants compare equal whatever the offset");
    }

    #[test]
    fn garbage_is_rejected_with_the_text() {
        let err = "yesterday".parse::<Timestamp>().unwrap_err().to_string();
        assert!(err.contains("`yesterday`"), "{err}");
        assert!("2024-11-27 00:00:00".parse::<Timestamp>().is_err());
    }
}
