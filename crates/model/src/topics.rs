//! The topic catalog: the six topics of the contract and the gateway's `security.events` (read by
//! the audit trail) with their defaults, dead-letter naming and user-defined topics.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const DB_CHANGES_USERS: &str = "db.changes.users";
pub const DB_CHANGES_CONVERSATIONS: &str = "db.changes.conversations";
pub const AGENT_EXECUTIONS: &str = "agent.executions";
pub const COMPLIANCE_ALERTS: &str = "compliance.alerts";
pub const EXTERNAL_CRM_EVENTS: &str = "external.crm.events";
pub const EXTERNAL_MARKET_DATA: &str = "external.market.data";
/// What the gateway saw that the audit trail must hold: failed authentication, refused
/// authorisation, key creation and revocation, profile writes (PCI DSS 10.2). Not one of the
/// contract's six; written by the gateway only.
pub const SECURITY_EVENTS: &str = "security.events";

/// Suffix of a topic's dead-letter topic.
pub const DLQ_SUFFIX: &str = ".dlq";

/// The built-in topics (the contract's six and [`SECURITY_EVENTS`]) and the JSON pointer of each
/// one's key within an event.
pub const BUILTIN_TOPICS: [(&str, &str); 7] = [
    (DB_CHANGES_USERS, "/data/UserId"),
    (DB_CHANGES_CONVERSATIONS, "/data/conversation_id"),
    (AGENT_EXECUTIONS, "/execution_id"),
    (COMPLIANCE_ALERTS, "/alert_id"),
    (EXTERNAL_CRM_EVENTS, "/entity_id"),
    (EXTERNAL_MARKET_DATA, "/symbol"),
    (SECURITY_EVENTS, "/event_id"),
];

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// Whether `name` is one of the built-in topics.
pub fn is_builtin(name: &str) -> bool {
    BUILTIN_TOPICS.iter().any(|(t, _)| *t == name)
}

/// Why a topic name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicNameError {
    #[error("topic name must not be empty")]
    Empty,
    #[error("topic name `{0}` is longer than 249 characters")]
    TooLong(String),
    #[error("topic name `{0}` is reserved")]
    Reserved(String),
    #[error(
        "topic name `{0}` starts with `.`; such names are reserved for the log's own files — start it with a letter or digit"
    )]
    LeadingDot(String),
    #[error("topic name `{name}` contains `{ch}`; use only ASCII letters, digits, `.`, `_` and `-`")]
    BadChar { name: String, ch: char },
}

/// Checks a topic name with Kafka's rules, so every name works on both backends.
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name.len() > 249 {
        return Err(TopicNameError::TooLong(name.to_owned()));
    }
    if name == "." || name == ".." || name.starts_with("__") {
        return Err(TopicNameError::Reserved(name.to_owned()));
    }
    // The embedded log keeps interrupted creations and deletions as `.tmp-*` / `.deleted-*`
    // directories and skips every dot directory when it opens: a topic named so would vanish.
    if name.starts_with('.') {
        return Err(TopicNameError::LeadingDot(name.to_owned()));
    }
    if let Some(ch) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(TopicNameError::BadChar { name: name.to_owned(), ch });
    }
    Ok(())
}

/// A per-batch compression codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown compression `{s}`; expected one of none, gzip, snappy, lz4, zstd"))
    }
}

/// How much durability a producer waits for before a record counts as acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Acks {
    /// Fire and forget: acknowledged once handed to the log.
    None,
    /// Written to the operating system (survives a process crash).
    Leader,
    /// Durable: fsynced (embedded) or replicated to all in-sync replicas (Kafka).
    #[default]
    All,
}

impl Acks {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "0",
            Self::Leader => "1",
            Self::All => "all",
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Acks {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0" => Ok(Self::None),
            "1" => Ok(Self::Leader),
            "all" | "-1" => Ok(Self::All),
            other => Err(format!("unknown acks `{other}`; expected one of 0, 1, all")),
        }
    }
}

impl Serialize for Acks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string().parse(),
            Raw::Text(t) => t.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// (De)serialises an optional duration as humantime text (`"7d"`, `"36h"`); `"forever"` is none.
pub mod duration_text {
    use super::*;

    pub fn parse(text: &str) -> Result<Option<Duration>, String> {
        if matches!(text, "forever" | "infinite" | "-1") {
            return Ok(None);
        }
        humantime::parse_duration(text)
            .map(Some)
            .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 7d, 36h, 15m or forever"))
    }

    pub fn format(d: Option<Duration>) -> String {
        match d {
            None => "forever".to_owned(),
            Some(d) => humantime::format_duration(d).to_string(),
        }
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Everything that defines a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
    /// Records older than this are deleted a whole segment at a time; `None` keeps them forever.
    #[serde(with = "duration_text")]
    pub retention: Option<Duration>,
    /// Per-partition size cap in bytes, oldest segments deleted first; `None` is unbounded.
    pub retention_bytes: Option<u64>,
    pub compression: Compression,
    /// The producer acks used when the caller does not choose.
    pub acks: Acks,
    /// JSON pointer to the key inside an event, used when a record is produced without a key.
    pub key_pointer: Option<String>,
}

/// Defaults of the contract (SPEC §1): 3 partitions, 7 days, RF 1.
pub const DEFAULT_PARTITIONS: u32 = 3;
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl TopicSpec {
    /// A topic with the contract's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            partitions: DEFAULT_PARTITIONS,
            replication_factor: 1,
            retention: Some(DEFAULT_RETENTION),
            retention_bytes: None,
            compression: Compression::None,
            acks: Acks::All,
            key_pointer: None,
        }
    }

    /// The dead-letter topic for this topic: same partitions and retention, keys kept.
    pub fn dead_letter(&self) -> TopicSpec {
        TopicSpec { name: dead_letter_topic(&self.name), key_pointer: None, ..self.clone() }
    }

    /// Checks the name and the numbers.
    pub fn validate(&self) -> Result<(), String> {
        validate_topic_name(&self.name).map_err(|e| e.to_string())?;
        if self.partitions == 0 || self.partitions > 10_000 {
            return Err(format!("partitions = {}: must be between 1 and 10000", self.partitions));
        }
        if self.replication_factor == 0 {
            return Err("replication_factor = 0: must be at least 1".into());
        }
        Ok(())
    }

    /// The key of `event` by this topic's key pointer, rendered as text.
    pub fn key_of(&self, event: &serde_json::Value) -> Option<String> {
        crate::events::key_of(event.pointer(self.key_pointer.as_deref()?))
    }
}

/// The built-in topics with the given defaults applied.
pub fn builtin_specs(defaults: &TopicSpec) -> Vec<TopicSpec> {
    BUILTIN_TOPICS
        .iter()
        .map(|(name, key)| TopicSpec {
            name: (*name).to_owned(),
            key_pointer: Some((*key).to_owned()),
            ..defaults.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_follow_the_contract_defaults() {
        let specs = builtin_specs(&TopicSpec::new("defaults"));
        assert_eq!(specs.len(), 7);
        for s in &specs {
            assert_eq!(s.partitions, 3);
            assert_eq!(s.replication_factor, 1);
            assert_eq!(s.retention, Some(Duration::from_secs(604_800)));
            s.validate().unwrap();
        }
        assert_eq!(dead_letter_topic("compliance.alerts"), "compliance.alerts.dlq");
    }

    #[test]
    fn keys_come_from_the_documented_fields() {
        let specs = builtin_specs(&TopicSpec::new("d"));
        let users = specs.iter().find(|s| s.name == DB_CHANGES_USERS).unwrap();
        assert_eq!(users.key_of(&json!({"data": {"UserId": "user-123"}})).as_deref(), Some("user-123"));
        let conv = specs.iter().find(|s| s.name == DB_CHANGES_CONVERSATIONS).unwrap();
        assert_eq!(conv.key_of(&json!({"data": {"conversation_id": 42}})).as_deref(), Some("42"));
        assert_eq!(users.key_of(&json!({"data": {}})), None);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v2_x-y").is_ok());
        assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
        assert!(matches!(validate_topic_name("a/b"), Err(TopicNameError::BadChar { ch: '/', .. })));
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name("__consumer_offsets").is_err());
        assert_eq!(validate_topic_name(".hidden"), Err(TopicNameError::LeadingDot(".hidden".into())));
        assert!(validate_topic_name(".hidden").unwrap_err().to_string().contains("start it with a letter"));
        assert!(validate_topic_name("a.b.").is_ok(), "dots elsewhere are fine");
    }

    #[test]
    fn acks_and_compression_parse_with_helpful_errors() {
        assert_eq!("all".parse::<Acks>(), Ok(Acks::All));
        assert_eq!(serde_json::from_value::<Acks>(json!(1)).unwrap(), Acks::Leader);
        assert!("2".parse::<Acks>().unwrap_err().contains("0, 1, all"));
        assert_eq!("zstd".parse::<Compression>(), Ok(Compression::Zstd));
        assert!("brotli".parse::<Compression>().unwrap_err().contains("gzip"));
    }

    #[test]
    fn durations_read_as_text() {
        assert_eq!(duration_text::parse("7d").unwrap(), Some(DEFAULT_RETENTION));
        assert_eq!(duration_text::parse("forever").unwrap(), None);
        assert!(duration_text::parse("seven days").unwrap_err().contains("7d"));
    }
}
