//! Opens the configured log backend, with the built-in topics in place.

use std::sync::Arc;

use anyhow::Context;
use eventline_kafka::{KafkaLog, KafkaOptions};
use eventline_log::{EmbeddedLog, EventLog};

use crate::Exit;
use crate::config::{Backend, Config};

/// Opens the log the configuration names and makes sure the six built-in topics and their
/// dead-letter topics exist.
pub async fn open_log(config: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    let log: Arc<dyn EventLog> = match config.backend {
        Backend::Embedded => {
            let dir = config.log_dir();
            let log = EmbeddedLog::open(&dir, config.log.options())
                .with_context(|| format!("cannot open the embedded log in {}", dir.display()))?;
            Arc::new(log)
        }
        Backend::Kafka => {
            let opts = kafka_options(config)?;
            let log = KafkaLog::connect(opts)
                .await
                .with_context(|| format!("cannot open the kafka backend at {}", config.kafka.brokers))?;
            Arc::new(log)
        }
    };
    for spec in config.builtin_specs() {
        log.ensure_topic(&spec).await.with_context(|| format!("cannot create built-in topic {}", spec.name))?;
    }
    Ok(log)
}

/// The Kafka client settings: `kafka.brokers` (`--kafka-brokers`, `EVENTLINE_KAFKA_BROKERS`), plus
/// TLS/SASL and further librdkafka properties from `EVENTLINE_KAFKA_SECURITY_PROTOCOL`,
/// `EVENTLINE_KAFKA_SASL_MECHANISM`, `EVENTLINE_KAFKA_SASL_USERNAME`, `EVENTLINE_KAFKA_SASL_PASSWORD`,
/// `EVENTLINE_KAFKA_SSL_*_LOCATION` and `EVENTLINE_KAFKA_PROPERTIES=name=value,...`.
pub fn kafka_options(config: &Config) -> anyhow::Result<KafkaOptions> {
    KafkaOptions::new(config.kafka.brokers.trim())
        .with_env(std::env::vars())
        .map_err(|e| Exit::new(2, format!("invalid Kafka settings: {e}")).into())
}
