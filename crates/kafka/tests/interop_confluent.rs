//! Interoperability with a Kafka client eventline did not write: Python's `confluent-kafka`
//! (installed by `scripts/services/kafka.sh` next to the broker) reads what eventline produced —
//! the contract's JSON byte for byte, with its keys and headers — and eventline's group consumer
//! reads what confluent-kafka produced.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use eventline_kafka::KafkaLog;
use eventline_log::partitioner::partition_for_key;
use eventline_log::{EventLog, OffsetReset, ProduceRecord};
use eventline_model::schema;
use eventline_model::topics::{Acks, Compression, TopicSpec};
use serde_json::Value;

/// The peer script of this checkout (read at run time: a test binary built in another clone of the
/// same path-less fingerprint would otherwise point into that clone).
fn peer_script() -> String {
    format!("{}/tests/interop/confluent_peer.py", std::env::var("CARGO_MANIFEST_DIR").unwrap())
}

/// Events in the seed's format, as eventline writes them (compact JSON, contract field names).
const SEED_EVENTS: [(&str, &str); 3] = [
    (
        "agent.executions",
        r#"{"execution_id":"exec-456","agent_id":"card_agent","status":"completed","duration_ms":250,"input":{"query":"check my card balance"},"output":{"balance":5432.10},"timestamp":"2024-11-27T00:00:00Z","_metadata":{"timestamp":"2024-11-27T00:00:00.123Z","message_id":"msg-uuid-456","producer":"enterprise-agent-platform"}}"#,
    ),
    (
        "db.changes.users",
        r#"{"event_type":"UPDATE","table":"Users","data":{"UserId":"user-123","Email":"new@example.com","UpdatedAt":"2024-11-27T00:00:01.000Z"},"before":{"Email":"old@example.com"},"timestamp":"2024-11-27T00:00:01.000Z","_metadata":{"timestamp":"2024-11-27T00:00:01.004Z","message_id":"0193698c-1c1e-7a3b-9f2e-5a1c2d3e4f50","producer":"enterprise-agent-platform"}}"#,
    ),
    (
        "compliance.alerts",
        r#"{"alert_id":"alert-789","alert_type":"PII_EXPOSURE","severity":"HIGH","details":{"component":"card_agent","field":"output.ssn","action":"REDACTED"},"timestamp":"2024-11-27T00:00:02.000Z","_metadata":{"timestamp":"2024-11-27T00:00:02.010Z","message_id":"msg-uuid-789","producer":"enterprise-agent-platform"}}"#,
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn python() -> String {
    std::env::var("EVENTLINE_TEST_KAFKA_PYTHON").unwrap_or_else(|_| {
        panic!("EVENTLINE_TEST_KAFKA_PYTHON is not set: run `scripts/services/kafka.sh start` and source scripts/services/.env")
    })
}

fn peer(args: &[&str], stdin: &str) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(peer_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the confluent-kafka peer");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "confluent-kafka peer {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn topic(log: &KafkaLog, name: &str, compression: Compression) -> String {
    let t = format!("interop.{name}.{:08x}", rand::random::<u32>());
    let mut spec = TopicSpec::new(&t);
    spec.compression = compression;
    log.create_topic(&spec).await.unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(eventline_skip_kafka, ignore = "EVENTLINE_SKIP_KAFKA=1: no broker to test against")]
async fn confluent_kafka_reads_what_eventline_produced() {
    let Some(brokers) = common::brokers() else { return };
    let log = KafkaLog::connect(common::options(&brokers)).await.unwrap();
    // zstd: the codec Debian's librdkafka lacked; the peer must decode it.
    let t = topic(&log, "to-python", Compression::Zstd).await;
    let mut sent = Vec::new();
    for (i, (seed_topic, json)) in SEED_EVENTS.iter().enumerate() {
        let event: Value = serde_json::from_str(json).unwrap();
        schema::validate(seed_topic, &event).expect("the seed events follow the contract");
        let key = [event.pointer("/execution_id"), event.pointer("/data/UserId"), event.pointer("/alert_id")]
            .into_iter()
            .flatten()
            .next()
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        let traceparent = format!("00-4bf92f3577b34da6a3ce929d0e0e473{i}-00f067aa0ba902b7-01");
        let metadata = event["_metadata"].to_string();
        sent.push((key, json.to_string(), traceparent, metadata));
    }
    let records = sent
        .iter()
        .map(|(k, v, tp, md)| {
            ProduceRecord::new(Some(k.clone()), v.clone())
                .with_header("traceparent", tp.clone())
                .with_header("_metadata", md.clone())
        })
        .collect();
    let positions = log.produce(&t, records, Acks::All).await.unwrap();

    let got = peer(&["consume", &brokers, &t, &sent.len().to_string()], "");
    assert_eq!(got.len(), sent.len());
    for ((key, value, traceparent, metadata), pos) in sent.iter().zip(&positions) {
        let r = got
            .iter()
            .find(|r| r["key"].as_str().map(unhex).as_deref() == Some(key.as_bytes()))
            .unwrap_or_else(|| panic!("confluent-kafka did not read key {key}: {got:?}"));
        assert_eq!(unhex(r["value"].as_str().unwrap()), value.as_bytes(), "the event's JSON, byte for byte");
        assert_eq!(r["partition"].as_u64(), Some(u64::from(pos.partition)));
        assert_eq!(r["offset"].as_u64(), pos.offset);
        assert_eq!(pos.partition, partition_for_key(key.as_bytes(), 3), "Kafka's murmur2 partition for {key}");
        let headers: BTreeMap<String, Vec<u8>> = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_owned(), unhex(h[1].as_str().unwrap())))
            .collect();
        assert_eq!(headers.get("traceparent").map(Vec::as_slice), Some(traceparent.as_bytes()));
        assert_eq!(headers.get("_metadata").map(Vec::as_slice), Some(metadata.as_bytes()));
        let md: Value = serde_json::from_slice(&headers["_metadata"]).unwrap();
        assert_eq!(md["producer"], "enterprise-agent-platform");
    }
    log.delete_topic(&t).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(eventline_skip_kafka, ignore = "EVENTLINE_SKIP_KAFKA=1: no broker to test against")]
async fn eventline_group_consumer_reads_what_confluent_kafka_produced() {
    let Some(brokers) = common::brokers() else { return };
    let log = KafkaLog::connect(common::options(&brokers)).await.unwrap();
    let t = topic(&log, "from-python", Compression::Lz4).await;
    let input: Vec<Value> = (0..30)
        .map(|i| {
            let symbol = ["AAPL", "MSFT", "NVDA", "SAP", "ASML"][i % 5];
            let value = format!(
                r#"{{"symbol":"{symbol}","price":{}.25,"currency":"USD","timestamp":"2024-11-27T00:00:{i:02}.000Z","_metadata":{{"timestamp":"2024-11-27T00:00:{i:02}.001Z","message_id":"m-{i}","producer":"market-feed"}}}}"#,
                100 + i
            );
            serde_json::json!({"key": symbol, "value": value, "headers": {"traceparent": format!("00-{i:032x}-{i:016x}-01")}})
        })
        .collect();
    let stdin: String = input.iter().map(|v| format!("{v}\n")).collect();
    let delivered = peer(&["produce", &brokers, &t], &stdin);
    assert_eq!(delivered.len(), input.len());

    let group = format!("interop-{:08x}", rand::random::<u32>());
    let mut member = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < input.len() && tokio::time::Instant::now() < deadline {
        got.extend(member.poll(100, Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.len(), input.len(), "every record confluent-kafka produced");
    for (sent, at) in input.iter().zip(&delivered) {
        let value = sent["value"].as_str().unwrap();
        let r = got
            .iter()
            .find(|r| r.value.as_deref() == Some(value.as_bytes()))
            .unwrap_or_else(|| panic!("eventline did not read {value}"));
        let key = sent["key"].as_str().unwrap();
        assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(r.header("traceparent"), Some(sent["headers"]["traceparent"].as_str().unwrap().as_bytes()));
        assert_eq!(u64::from(r.partition), at["partition"].as_u64().unwrap());
        assert_eq!(Some(r.offset), at["offset"].as_u64());
        assert_eq!(r.partition, partition_for_key(key.as_bytes(), 3), "Java-compatible partitioning on both sides");
        schema::validate("external.market.data", &serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
            .expect("a market tick by the contract");
    }
    member.commit().await.unwrap();
    for p in 0..3 {
        let want = got.iter().filter(|r| r.partition == p).map(|r| r.offset + 1).max();
        assert_eq!(log.committed(&group, &t, p).await.unwrap(), want, "committed position of partition {p}");
    }
    member.close().await.unwrap();
    log.delete_topic(&t).await.unwrap();
}
