//! Configuration: typed, every key documented in `eventline.example.toml`.
//!
//! Precedence, lowest to highest: built-in defaults, the TOML file (`--config`), environment
//! variables, command-line flags. Any key can be set from the environment as
//! `EVENTLINE_<SECTION>__<KEY>` (e.g. `EVENTLINE_TOPICS__COMPRESSION=zstd`,
//! `EVENTLINE_LOG__SEGMENT_BYTES=1048576`); the global flags also read `EVENTLINE_DATA_DIR`,
//! `EVENTLINE_BACKEND`, `EVENTLINE_KAFKA_BROKERS`, `EVENTLINE_CONFIG` and `EVENTLINE_DATABASE_URL`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eventline_log::EmbeddedOptions;
use eventline_model::topics::{self, Acks, Compression, TopicSpec, duration_text};
use serde::{Deserialize, Serialize};

/// Which log backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The built-in durable log under the data directory (nothing to install).
    #[default]
    Embedded,
    /// An Apache Kafka cluster (`--kafka-brokers`).
    Kafka,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub backend: Backend,
    /// `_metadata.producer` of the events eventline writes.
    pub producer: String,
    pub log: LogSection,
    pub topics: TopicsSection,
    pub kafka: KafkaSection,
    pub gateway: GatewaySection,
    pub database: DatabaseSection,
    pub governance: GovernanceSection,
    pub audit: AuditSection,
    pub lake: LakeSection,
    pub metrics: MetricsSection,
    pub telemetry: TelemetrySection,
    /// `[[notifications.channels]]` and `[[notifications.routes]]` (see `eventline_services::notify::config`).
    pub notifications: eventline_services::notify::NotificationsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./eventline-data"),
            backend: Backend::Embedded,
            producer: eventline_model::DEFAULT_PRODUCER.to_owned(),
            log: LogSection::default(),
            topics: TopicsSection::default(),
            kafka: KafkaSection::default(),
            gateway: GatewaySection::default(),
            database: DatabaseSection::default(),
            governance: GovernanceSection::default(),
            audit: AuditSection::default(),
            lake: LakeSection::default(),
            metrics: MetricsSection::default(),
            telemetry: TelemetrySection::default(),
            notifications: Default::default(),
        }
    }
}

mod duration {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a duration ({e}); write e.g. 7d, 36h, 15m, 30s"))
        })
    }
}

/// The embedded log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub segment_bytes: u64,
    #[serde(with = "duration")]
    pub segment_age: Duration,
    pub index_interval_bytes: u32,
    pub max_record_bytes: usize,
    #[serde(with = "duration")]
    pub retention_check_interval: Duration,
}

impl Default for LogSection {
    fn default() -> Self {
        let o = EmbeddedOptions::default();
        Self {
            segment_bytes: o.segment_bytes,
            segment_age: o.segment_age,
            index_interval_bytes: o.index_interval_bytes,
            max_record_bytes: o.max_record_bytes,
            retention_check_interval: o.retention_check_interval,
        }
    }
}

impl LogSection {
    pub fn options(&self) -> EmbeddedOptions {
        EmbeddedOptions {
            segment_bytes: self.segment_bytes,
            segment_age: self.segment_age,
            index_interval_bytes: self.index_interval_bytes,
            max_record_bytes: self.max_record_bytes,
            retention_check_interval: self.retention_check_interval,
            ..EmbeddedOptions::default()
        }
    }
}

/// Defaults for every topic, and per-topic overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsSection {
    pub partitions: u32,
    pub replication_factor: u16,
    #[serde(with = "duration_text")]
    pub retention: Option<Duration>,
    pub retention_bytes: Option<u64>,
    pub compression: Compression,
    pub acks: Acks,
    /// Per-topic settings, e.g. `[topics.overrides."external.market.data"] compression = "zstd"`.
    pub overrides: BTreeMap<String, TopicOverride>,
}

impl Default for TopicsSection {
    fn default() -> Self {
        let d = TopicSpec::new("defaults");
        Self {
            partitions: d.partitions,
            replication_factor: d.replication_factor,
            retention: d.retention,
            retention_bytes: d.retention_bytes,
            compression: d.compression,
            acks: d.acks,
            overrides: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicOverride {
    pub partitions: Option<u32>,
    #[serde(default, with = "opt_duration_text", skip_serializing_if = "Option::is_none")]
    pub retention: Option<Option<Duration>>,
    pub retention_bytes: Option<u64>,
    pub compression: Option<Compression>,
    pub acks: Option<Acks>,
}

mod opt_duration_text {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Option<Option<Duration>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Duration>>, D::Error> {
        duration_text::deserialize(d).map(Some)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    /// Bootstrap servers, `HOST:PORT,...`.
    pub brokers: String,
}

impl Default for KafkaSection {
    fn default() -> Self {
        Self { brokers: "127.0.0.1:9092".into() }
    }
}

/// The HTTP gateway of `eventline up`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Address and port to serve on (`127.0.0.1:0` picks a free port and prints it).
    pub listen: SocketAddr,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// A request still running after this gets 503 (an agent execution already started finishes).
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Requests per second per service key (admin, agent, ingest, read), bursts of twice that;
    /// more get 429 with Retry-After.
    pub rate_limit_per_key: u32,
    /// Requests per second per end user (role `user` keys and user tokens), bursts of twice that.
    pub rate_limit_per_user: u32,
    /// Requests in flight in the whole server; more get 503 with Retry-After.
    pub max_in_flight: usize,
    /// Open event streams (`/v1/topics/{t}/stream`, the dashboard's) per key, and in all.
    pub max_streams_per_key: usize,
    pub max_streams: usize,
    /// An event stream ends after this long (clients reconnect).
    #[serde(with = "duration")]
    pub stream_max_lifetime: Duration,
    /// Serve HTTPS (rustls) with this PEM certificate chain and `tls_key`; unset: plain HTTP.
    /// The command line's client of a running `up` trusts this certificate.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for GatewaySection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            rate_limit_per_key: 10_000,
            rate_limit_per_user: 20,
            max_in_flight: 1024,
            max_streams_per_key: 8,
            max_streams: 256,
            stream_max_lifetime: Duration::from_secs(3600),
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `postgres://…`; empty means SQLite at `<data-dir>/eventline.db`.
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceSection {
    /// TOML field policy (allow | mask | hash | drop per topic and field); unset = the default policy:
    /// mask PII in every string field, hash the SSN, Email and Phone columns of Users.
    pub policy_file: Option<PathBuf>,
}

/// The audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Records older than this (by event time) are removed, leaving a signed anchor; `forever` keeps
    /// all. Separate from the topics' retention.
    #[serde(with = "duration_text")]
    pub retention: Option<Duration>,
    /// Sign the head after this many new records…
    pub checkpoint_records: u64,
    /// …or after this long, whichever comes first.
    #[serde(with = "duration")]
    pub checkpoint_interval: Duration,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            retention: Some(Duration::from_secs(365 * 24 * 3600)),
            checkpoint_records: 1000,
            checkpoint_interval: Duration::from_secs(10),
        }
    }
}

/// Prometheus metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Record metrics and serve `GET /metrics` (false: nothing is recorded, no `/metrics`).
    pub enabled: bool,
    /// Serve `GET /metrics` on this address instead of the gateway's (unset: the gateway's).
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self { enabled: true, listen: None }
    }
}

/// Traces exported with OpenTelemetry (OTLP over HTTP/protobuf). Off unless `otlp_endpoint` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// The collector's base URL, e.g. `http://127.0.0.1:4318` (spans go to `/v1/traces`).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Spans are sent at least this often.
    #[serde(with = "duration")]
    pub export_interval: Duration,
    /// The share of traces started here that are recorded, 0.0 – 1.0 (a caller's `traceparent`
    /// keeps the caller's decision). Lower it on a busy gateway: see BENCHMARKS.md.
    pub sample_ratio: f64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "eventline".into(),
            export_interval: Duration::from_secs(5),
            sample_ratio: 1.0,
        }
    }
}

impl TelemetrySection {
    /// The exporter's settings, when spans are exported.
    pub fn otlp(&self) -> Option<eventline_telemetry::OtlpConfig> {
        self.otlp_endpoint.as_ref().map(|e| eventline_telemetry::OtlpConfig {
            endpoint: e.clone(),
            service_name: self.service_name.clone(),
            export_interval: self.export_interval,
            sample_ratio: self.sample_ratio,
        })
    }
}

/// The Parquet data lake (consumer group eventline-lake).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSection {
    /// Where the files go; default `<data_dir>/lake`.
    pub dir: Option<PathBuf>,
    /// A file is written when its partition's buffer holds this many records…
    pub max_file_records: usize,
    /// …or this many bytes of events…
    pub max_file_bytes: usize,
    /// …or its oldest record waited this long (data is queryable within it).
    #[serde(with = "duration")]
    pub max_file_age: Duration,
    /// Also write the rows to one PostgreSQL table per topic (`postgres://…`).
    pub warehouse_url: Option<String>,
}

impl Default for LakeSection {
    fn default() -> Self {
        Self {
            dir: None,
            max_file_records: 100_000,
            max_file_bytes: 64 << 20,
            max_file_age: Duration::from_secs(60),
            warehouse_url: None,
        }
    }
}

impl LakeSection {
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("lake"))
    }
}

/// Values given on the command line (already merged with their own environment variables).
#[derive(Clone, Debug, Default)]
pub struct FlagOverrides {
    pub data_dir: Option<PathBuf>,
    pub backend: Option<Backend>,
    pub kafka_brokers: Option<String>,
    pub database_url: Option<String>,
}

/// A configuration problem, naming the key, the value and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

const ENV_PREFIX: &str = "EVENTLINE_";

impl Config {
    /// Loads the configuration: defaults, then `file`, then `env`, then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &FlagOverrides,
    ) -> Result<Self, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError(format!("config file {} is not valid TOML: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let source_of = |key: &str, env_keys: &BTreeMap<String, String>| match env_keys.get(key) {
            Some(var) => format!("environment variable {var}"),
            None => match file {
                Some(p) => format!("config file {}", p.display()),
                None => "defaults".into(),
            },
        };
        let mut env_keys = BTreeMap::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
            if !rest.contains("__") {
                continue; // the global flags' own variables are read by the command line parser
            }
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            set_path(&mut tree, &path, parse_env_value(&value));
            env_keys.insert(path.join("."), var);
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
            let key = e.path().to_string();
            let source = source_of(&key, &env_keys);
            ConfigError(format!("invalid configuration `{key}` (from {source}): {}", e.inner()))
        })?;
        let mut config = config;
        if let Some(d) = &flags.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(b) = flags.backend {
            config.backend = b;
        }
        if let Some(k) = &flags.kafka_brokers {
            config.kafka.brokers = k.clone();
        }
        if let Some(u) = &flags.database_url {
            config.database.url = Some(u.clone());
        }
        config.validate().map_err(ConfigError)?;
        Ok(config)
    }

    /// Checks values that parse but are out of range.
    pub fn validate(&self) -> Result<(), String> {
        self.log.options().validate().map_err(|e| format!("invalid configuration {e}"))?;
        let check = |name: &str, partitions: u32| {
            if partitions == 0 || partitions > 10_000 {
                Err(format!("invalid configuration `{name}` = {partitions}: must be between 1 and 10000"))
            } else {
                Ok(())
            }
        };
        check("topics.partitions", self.topics.partitions)?;
        for (topic, o) in &self.topics.overrides {
            topics::validate_topic_name(topic)
                .map_err(|e| format!("invalid configuration `topics.overrides.{topic}`: {e}"))?;
            if let Some(p) = o.partitions {
                check(&format!("topics.overrides.\"{topic}\".partitions"), p)?;
            }
        }
        if self.producer.trim().is_empty() {
            return Err("invalid configuration `producer` = \"\": must not be empty".into());
        }
        if self.gateway.max_body_bytes < 1024 {
            return Err(format!(
                "invalid configuration `gateway.max_body_bytes` = {}: must be at least 1024",
                self.gateway.max_body_bytes
            ));
        }
        let g = &self.gateway;
        if g.rate_limit_per_key == 0 || g.rate_limit_per_user == 0 || g.max_in_flight == 0 {
            return Err("invalid configuration `gateway.rate_limit_per_key`, `rate_limit_per_user` and `max_in_flight` must be at least 1".into());
        }
        if g.max_streams_per_key == 0 || g.max_streams == 0 || g.stream_max_lifetime.is_zero() {
            return Err("invalid configuration `gateway.max_streams_per_key`, `max_streams` and `stream_max_lifetime` must be more than 0".into());
        }
        if self.gateway.tls_cert.is_some() != self.gateway.tls_key.is_some() {
            return Err("invalid configuration `gateway.tls_cert` / `gateway.tls_key`: give both (PEM files) for HTTPS, or neither".into());
        }
        if self.gateway.request_timeout.is_zero() {
            return Err("invalid configuration `gateway.request_timeout` = \"0s\": must be longer than 0".into());
        }
        if self.lake.max_file_records == 0 || self.lake.max_file_bytes == 0 || self.lake.max_file_age.is_zero() {
            return Err("invalid configuration `lake.max_file_records`, `max_file_bytes` and `max_file_age` must be more than 0".into());
        }
        if let Some(u) = &self.lake.warehouse_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return Err("invalid configuration `lake.warehouse_url`: must be a postgres:// URL".into());
        }
        if let Some(e) = &self.telemetry.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!(
                "invalid configuration `telemetry.otlp_endpoint` = {:?}: must be an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318",
                eventline_model::secrets::redact_url(e)
            ));
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return Err(format!(
                "invalid configuration `telemetry.sample_ratio` = {}: must be from 0.0 (none) to 1.0 (every trace)",
                self.telemetry.sample_ratio
            ));
        }
        if self.telemetry.export_interval.is_zero() {
            return Err("invalid configuration `telemetry.export_interval` = \"0s\": must be longer than 0".into());
        }
        if self.audit.checkpoint_records == 0 {
            return Err("invalid configuration `audit.checkpoint_records` = 0: must be at least 1".into());
        }
        if self.audit.checkpoint_interval.is_zero() {
            return Err("invalid configuration `audit.checkpoint_interval` = \"0s\": must be longer than 0".into());
        }
        // The shape only: the environment of `secret_env` is read by `up`, which needs it.
        self.notifications.resolve(|_| Some("set".to_owned()))?;
        if self.backend == Backend::Kafka && self.kafka.brokers.trim().is_empty() {
            return Err("invalid configuration `kafka.brokers` = \"\": the kafka backend needs HOST:PORT,...".into());
        }
        Ok(())
    }

    /// The spec of a topic created now: the defaults with the topic's overrides.
    pub fn topic_spec(&self, name: &str) -> TopicSpec {
        let t = &self.topics;
        let mut spec = TopicSpec {
            name: name.to_owned(),
            partitions: t.partitions,
            replication_factor: t.replication_factor,
            retention: t.retention,
            retention_bytes: t.retention_bytes,
            compression: t.compression,
            acks: t.acks,
            key_pointer: topics::BUILTIN_TOPICS.iter().find(|(n, _)| *n == name).map(|(_, k)| (*k).to_owned()),
        };
        if let Some(o) = t.overrides.get(name) {
            spec.partitions = o.partitions.unwrap_or(spec.partitions);
            spec.retention = o.retention.unwrap_or(spec.retention);
            spec.retention_bytes = o.retention_bytes.or(spec.retention_bytes);
            spec.compression = o.compression.unwrap_or(spec.compression);
            spec.acks = o.acks.unwrap_or(spec.acks);
        }
        spec
    }

    /// The built-in topics and their dead-letter topics, as configured.
    pub fn builtin_specs(&self) -> Vec<TopicSpec> {
        topics::BUILTIN_TOPICS
            .iter()
            .flat_map(|(name, _)| {
                let spec = self.topic_spec(name);
                let dlq = spec.dead_letter();
                [spec, dlq]
            })
            .collect()
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = table;
    for p in parents {
        let entry = cur.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
    cur.insert(last.clone(), value);
}

/// An environment value is read as a TOML value when it is one (`3`, `true`, `"x"`), else as text.
fn parse_env_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let example = &format!("{}/../../eventline.example.toml", std::env::var("CARGO_MANIFEST_DIR").unwrap());
        let c = Config::load(Some(Path::new(example)), [], &FlagOverrides::default()).unwrap();
        let mut want = Config::default();
        want.topics.overrides = c.topics.overrides.clone();
        assert_eq!(c, want, "eventline.example.toml documents the real defaults");
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let f = write("data_dir = \"/from-file\"\n[topics]\ncompression = \"gzip\"\npartitions = 5\n");
        let env = [
            ("EVENTLINE_TOPICS__COMPRESSION".to_string(), "zstd".to_string()),
            ("EVENTLINE_LOG__SEGMENT_BYTES".to_string(), "1048576".to_string()),
        ];
        let flags = FlagOverrides { data_dir: Some("/from-flag".into()), ..Default::default() };
        let c = Config::load(Some(f.path()), env, &flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from-flag"));
        assert_eq!(c.topics.compression, Compression::Zstd);
        assert_eq!(c.topics.partitions, 5);
        assert_eq!(c.log.segment_bytes, 1 << 20);
    }

    #[test]
    fn bad_values_name_key_value_and_allowed() {
        let f = write("[topics]\ncompression = \"brotli\"\n");
        let e = Config::load(Some(f.path()), [], &FlagOverrides::default()).unwrap_err().0;
        assert!(e.contains("topics.compression") && e.contains("brotli") && e.contains("zstd"), "{e}");
        let f = write("[topics]\nretention = \"a week\"\n");
        let e = Config::load(Some(f.path()), [], &FlagOverrides::default()).unwrap_err().0;
        assert!(e.contains("topics.retention") && e.contains("a week") && e.contains("7d"), "{e}");
        let e = Config::load(None, [("EVENTLINE_TOPICS__PARTITIONS".into(), "0".into())], &FlagOverrides::default())
            .unwrap_err()
            .0;
        assert!(e.contains("topics.partitions") && e.contains("between 1 and 10000"), "{e}");
        let e =
            Config::load(None, [("EVENTLINE_TOPICS__PARTITIONS".into(), "three".into())], &FlagOverrides::default())
                .unwrap_err()
                .0;
        assert!(e.contains("EVENTLINE_TOPICS__PARTITIONS") && e.contains("three"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let f = write("[log]\nsegment_byte = 1\n");
        let e = Config::load(Some(f.path()), [], &FlagOverrides::default()).unwrap_err().0;
        assert!(e.contains("segment_byte") && e.contains("segment_bytes"), "{e}");
    }

    #[test]
    fn overrides_apply_per_topic() {
        let f = write("[topics.overrides.\"external.market.data\"]\ncompression = \"lz4\"\npartitions = 6\n");
        let c = Config::load(Some(f.path()), [], &FlagOverrides::default()).unwrap();
        let s = c.topic_spec("external.market.data");
        assert_eq!((s.compression, s.partitions), (Compression::Lz4, 6));
        assert_eq!(s.key_pointer.as_deref(), Some("/symbol"));
        assert_eq!(c.topic_spec("agent.executions").compression, Compression::None);
        assert_eq!(c.builtin_specs().len(), 2 * topics::BUILTIN_TOPICS.len(), "each with its dead-letter topic");
    }
}
