//! How eventline reaches a Kafka cluster: bootstrap servers, optional TLS and SASL settings, and
//! any further librdkafka properties, all passed through to every client the backend creates.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

/// Connection and tuning settings of the Kafka backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaOptions {
    /// Bootstrap servers, `HOST:PORT,...`.
    pub brokers: String,
    /// TLS and SASL settings; `None` for a plaintext listener.
    pub security: Option<KafkaSecurity>,
    /// Consumer-group session timeout (default 10 s). A member that stops heartbeating for this
    /// long loses its partitions. Some brokers, tansu among them, also wait about half of it
    /// before a join completes, so tests use a few seconds.
    pub session_timeout: Duration,
    /// How long an admin or metadata request may take before it fails.
    pub request_timeout: Duration,
    /// Producer `linger.ms`: how long librdkafka waits to fill a batch.
    pub linger: Duration,
    /// Consumer `fetch.wait.max.ms` (default 10 ms): how long a fetch may wait for data. Kafka
    /// answers as soon as data is there, so this only paces idle polling; tansu holds every fetch
    /// for the full wait, so a long one costs latency and throughput there.
    pub fetch_wait: Duration,
    /// The largest record (key + value + headers) the producer accepts; librdkafka's
    /// `message.max.bytes` (the broker has its own limit, 1 MB by default).
    pub max_message_bytes: usize,
    /// Whether the broker reports exact high watermarks (Apache Kafka does). A group member then
    /// resumes a partition whose committed offset is beyond the reported end at the end instead of
    /// librdkafka's reset to the beginning. Turn it off for brokers whose reported end may fall
    /// short of the real one (tansu reports the last batch's base offset): there librdkafka's
    /// `auto.offset.reset` applies to a committed offset beyond the end.
    pub exact_watermarks: bool,
    /// Further librdkafka properties (`name = value`), applied last to every client, so they can
    /// override anything above. E.g. `{"batch.size": "1000000", "socket.nagle.disable": "true"}`.
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            security: None,
            session_timeout: Duration::from_secs(10),
            exact_watermarks: true,
            request_timeout: Duration::from_secs(10),
            linger: Duration::from_millis(5),
            fetch_wait: Duration::from_millis(10),
            max_message_bytes: 1_000_000,
            extra: BTreeMap::new(),
        }
    }
}

/// TLS and SASL settings, mapped one to one onto librdkafka's `security.protocol`, `sasl.*` and
/// `ssl.*` properties.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: String,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512` or `PLAIN`.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
    /// PEM file of the certificate authorities that sign the brokers' certificates.
    pub ssl_ca_location: Option<String>,
    /// Client certificate and key for mutual TLS.
    pub ssl_certificate_location: Option<String>,
    pub ssl_key_location: Option<String>,
    pub ssl_key_password: Option<String>,
}

impl std::fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &redact(&self.sasl_password))
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field("ssl_key_password", &redact(&self.ssl_key_password))
            .finish()
    }
}

/// The environment variables [`KafkaOptions::with_env`] reads, and the librdkafka property each sets.
pub const SECURITY_ENV: [(&str, &str); 8] = [
    ("EVENTLINE_KAFKA_SECURITY_PROTOCOL", "security.protocol"),
    ("EVENTLINE_KAFKA_SASL_MECHANISM", "sasl.mechanism"),
    ("EVENTLINE_KAFKA_SASL_USERNAME", "sasl.username"),
    ("EVENTLINE_KAFKA_SASL_PASSWORD", "sasl.password"),
    ("EVENTLINE_KAFKA_SSL_CA_LOCATION", "ssl.ca.location"),
    ("EVENTLINE_KAFKA_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location"),
    ("EVENTLINE_KAFKA_SSL_KEY_LOCATION", "ssl.key.location"),
    ("EVENTLINE_KAFKA_SSL_KEY_PASSWORD", "ssl.key.password"),
];

/// `name=value,name=value` librdkafka properties from the environment.
pub const PROPERTIES_ENV: &str = "EVENTLINE_KAFKA_PROPERTIES";

impl KafkaOptions {
    /// Options for `brokers` with every other setting at its default.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self { brokers: brokers.into(), ..Self::default() }
    }

    /// Applies the security settings and extra properties found in `env` (see [`SECURITY_ENV`]
    /// and [`PROPERTIES_ENV`]). A SASL mechanism without a protocol implies `sasl_ssl`.
    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let env: BTreeMap<String, String> =
            env.into_iter().filter(|(k, _)| k.starts_with("EVENTLINE_KAFKA_")).collect();
        let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        if SECURITY_ENV.iter().any(|(var, _)| get(var).is_some()) {
            let mut s = self.security.take().unwrap_or_default();
            if let Some(p) = get("EVENTLINE_KAFKA_SECURITY_PROTOCOL") {
                s.protocol = p;
            }
            s.sasl_mechanism = get("EVENTLINE_KAFKA_SASL_MECHANISM").or(s.sasl_mechanism);
            s.sasl_username = get("EVENTLINE_KAFKA_SASL_USERNAME").or(s.sasl_username);
            s.sasl_password = get("EVENTLINE_KAFKA_SASL_PASSWORD").or(s.sasl_password);
            s.ssl_ca_location = get("EVENTLINE_KAFKA_SSL_CA_LOCATION").or(s.ssl_ca_location);
            s.ssl_certificate_location = get("EVENTLINE_KAFKA_SSL_CERTIFICATE_LOCATION").or(s.ssl_certificate_location);
            s.ssl_key_location = get("EVENTLINE_KAFKA_SSL_KEY_LOCATION").or(s.ssl_key_location);
            s.ssl_key_password = get("EVENTLINE_KAFKA_SSL_KEY_PASSWORD").or(s.ssl_key_password);
            if s.protocol.is_empty() {
                s.protocol = if s.sasl_mechanism.is_some() { "sasl_ssl" } else { "ssl" }.into();
            }
            self.security = Some(s);
        }
        match get("EVENTLINE_KAFKA_EXACT_WATERMARKS").as_deref() {
            None => {}
            Some("true") => self.exact_watermarks = true,
            Some("false") => self.exact_watermarks = false,
            Some(other) => {
                return Err(format!("EVENTLINE_KAFKA_EXACT_WATERMARKS: `{other}` is not a boolean; use true or false"));
            }
        }
        if let Some(props) = get(PROPERTIES_ENV) {
            for pair in props.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{PROPERTIES_ENV}: `{pair}` is not `name=value` (e.g. linger.ms=10)"))?;
                self.extra.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        Ok(self)
    }

    /// The settings every client shares: servers, security, extra properties.
    pub(crate) fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", "eventline");
        if let Some(s) = &self.security {
            c.set("security.protocol", &s.protocol);
            let optional = [
                ("sasl.mechanism", &s.sasl_mechanism),
                ("sasl.username", &s.sasl_username),
                ("sasl.password", &s.sasl_password),
                ("ssl.ca.location", &s.ssl_ca_location),
                ("ssl.certificate.location", &s.ssl_certificate_location),
                ("ssl.key.location", &s.ssl_key_location),
                ("ssl.key.password", &s.ssl_key_password),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    c.set(k, v);
                }
            }
        }
        c
    }

    /// Applies [`Self::extra`] last, so a user's property wins over eventline's choice.
    pub(crate) fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn security_and_properties_come_from_the_environment() {
        let o = KafkaOptions::new("b:9093")
            .with_env(env(&[
                ("EVENTLINE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                ("EVENTLINE_KAFKA_SASL_USERNAME", "svc"),
                ("EVENTLINE_KAFKA_SASL_PASSWORD", "s3cret"),
                ("EVENTLINE_KAFKA_PROPERTIES", "linger.ms=20, socket.nagle.disable=true"),
                ("EVENTLINE_OTHER", "x"),
            ]))
            .unwrap();
        let s = o.security.as_ref().unwrap();
        assert_eq!(s.protocol, "sasl_ssl", "SASL without a protocol means SASL over TLS");
        assert_eq!(s.sasl_username.as_deref(), Some("svc"));
        assert_eq!(o.extra.get("linger.ms").map(String::as_str), Some("20"));
        let c = o.finish(o.base_config());
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("socket.nagle.disable"), Some("true"));
        assert!(!format!("{s:?}").contains("s3cret"), "passwords stay out of debug output");
    }

    #[test]
    fn malformed_properties_are_refused_with_an_example() {
        let e = KafkaOptions::default().with_env(env(&[(PROPERTIES_ENV, "linger.ms")])).unwrap_err();
        assert!(e.contains("name=value"), "{e}");
        assert!(KafkaOptions::default().with_env(Vec::new()).unwrap().security.is_none());
    }
}
