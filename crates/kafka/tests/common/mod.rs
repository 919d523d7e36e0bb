//! The test broker: its address comes from `EVENTLINE_TEST_KAFKA_BROKERS`, which
//! `scripts/services/kafka.sh start` writes into `scripts/services/.env`.

#![allow(dead_code)]

use std::time::Duration;

use eventline_kafka::KafkaOptions;

/// Consumer-group session timeout for tests: tansu makes a join wait about half of it.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// The broker's address; `None` (after saying so) when `EVENTLINE_SKIP_KAFKA=1`. Without either
/// variable the test fails: a Kafka test that silently passes proves nothing.
pub fn brokers() -> Option<String> {
    if let Ok(b) = std::env::var("EVENTLINE_TEST_KAFKA_BROKERS")
        && !b.trim().is_empty()
    {
        return Some(b);
    }
    if std::env::var("EVENTLINE_SKIP_KAFKA").as_deref() == Ok("1") {
        eprintln!("SKIPPED: EVENTLINE_SKIP_KAFKA=1, no Kafka broker test ran");
        return None;
    }
    panic!(
        "EVENTLINE_TEST_KAFKA_BROKERS is not set: run `scripts/services/kafka.sh start` and \
         `set -a; source scripts/services/.env; set +a` (scripts/test.sh does both), \
         or set EVENTLINE_SKIP_KAFKA=1 to skip the Kafka tests"
    );
}

pub fn options(brokers: &str) -> KafkaOptions {
    // tansu reports the base offset of the last batch as the high watermark.
    KafkaOptions { session_timeout: SESSION_TIMEOUT, exact_watermarks: false, ..KafkaOptions::new(brokers) }
}
