//! The conformance suite against the Kafka backend on a real Kafka-protocol broker (tansu from
//! `scripts/services/kafka.sh start`, or any cluster named by `EVENTLINE_TEST_KAFKA_BROKERS`).

mod common;

use std::sync::Arc;

use eventline_kafka::KafkaLog;
use eventline_log::conformance::{Capabilities, Fixture};

async fn kafka() -> Option<Fixture> {
    let brokers = common::brokers()?;
    let log = KafkaLog::connect(common::options(&brokers)).await.expect("connect to the test broker");
    let caps = Capabilities {
        // Kafka sends no response for acks=0, so there is no offset to report.
        offsets_for_acks0: false,
        // A join completes after about session.timeout.ms / 2 on tansu; leave a margin.
        group_settle: common::SESSION_TIMEOUT + std::time::Duration::from_secs(2),
        // tansu 0.6 reports the last batch's base offset + 1 as the high watermark.
        exact_high_watermark: false,
    };
    Some(Fixture { log: Arc::new(log), caps, guard: Box::new(()) })
}

eventline_log::conformance_tests!(optional: kafka());
