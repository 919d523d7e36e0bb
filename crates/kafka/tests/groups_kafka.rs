//! Consumer-group behaviour specific to the Kafka backend, on the test broker: positions are
//! committed only for records handed to the caller (ack, then commit), and a member that loses its
//! partitions in a rebalance commits nothing on its way out: what it was handed but did not
//! finish goes again to the next owner.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use eventline_kafka::KafkaLog;
use eventline_log::{EventLog, OffsetReset, ProduceRecord, Record};
use eventline_model::topics::{Acks, TopicSpec};

async fn topic(log: &KafkaLog, name: &str, partitions: u32) -> String {
    let t = format!("groups.{name}.{:08x}", rand::random::<u32>());
    let mut spec = TopicSpec::new(&t);
    spec.partitions = partitions;
    log.create_topic(&spec).await.unwrap();
    t
}

fn next_offsets(records: &[Record]) -> BTreeMap<u32, u64> {
    let mut next = BTreeMap::new();
    for r in records {
        let e = next.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(eventline_skip_kafka, ignore = "EVENTLINE_SKIP_KAFKA=1: no broker to test against")]
async fn only_records_handed_out_are_committed() {
    let Some(brokers) = common::brokers() else { return };
    let log = KafkaLog::connect(common::options(&brokers)).await.unwrap();
    let t = topic(&log, "handed-out", 1).await;
    let group = format!("g-handed-out-{:08x}", rand::random::<u32>());
    log.produce(&t, (0..50).map(|i| ProduceRecord::new(Some("k"), i.to_string())).collect(), Acks::All).await.unwrap();
    let mut member = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    // librdkafka has prefetched all 50 by the time five are handed out; only five count.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 5 && tokio::time::Instant::now() < deadline {
        got.extend(member.poll(5 - got.len(), Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(log.committed(&group, &t, 0).await.unwrap(), None, "nothing committed before commit()");
    member.commit().await.unwrap();
    assert_eq!(
        log.committed(&group, &t, 0).await.unwrap(),
        Some(5),
        "committed right after the last record handed out"
    );
    member.close().await.unwrap();

    // The next member of the group resumes exactly there.
    let mut member = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let rest = member.poll(100, Duration::from_secs(10)).await.unwrap();
    assert_eq!(rest.first().map(|r| r.offset), Some(5));
    member.close().await.unwrap();
    log.delete_topic(&t).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(eventline_skip_kafka, ignore = "EVENTLINE_SKIP_KAFKA=1: no broker to test against")]
async fn a_revoked_member_commits_only_what_it_finished() {
    let Some(brokers) = common::brokers() else { return };
    let log = std::sync::Arc::new(KafkaLog::connect(common::options(&brokers)).await.unwrap());
    let t = topic(&log, "revoke", 4).await;
    let group = format!("g-revoke-{:08x}", rand::random::<u32>());
    let records = (0..400).map(|i| ProduceRecord::new(Some(format!("k{i}")), i.to_string())).collect();
    log.produce(&t, records, Acks::All).await.unwrap();

    let mut a = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    assert_eq!(a.assignment().len(), 4, "a lone member owns every partition");
    // A is handed records of each partition and finishes (commits) only the first of each.
    let mut delivered = Vec::new();
    for _ in 0..20 {
        delivered.extend(a.poll(10, Duration::from_millis(200)).await.unwrap());
    }
    assert!(!delivered.is_empty());
    let mut finished = BTreeMap::new();
    for r in &delivered {
        finished.entry(r.partition).or_insert(r.offset + 1);
    }
    let offsets: Vec<(String, u32, u64)> = finished.iter().map(|(p, o)| (t.clone(), *p, *o)).collect();
    a.commit_offsets(&offsets).await.unwrap();
    assert!(next_offsets(&delivered).iter().any(|(p, o)| finished[p] < *o), "A was handed more than it finished");

    // B joins; A keeps polling (that is when librdkafka serves the revoke) and commits nothing.
    let joiner = {
        let (log, group, t) = (log.clone(), group.clone(), t.clone());
        tokio::spawn(async move { log.subscribe(&group, &[t], OffsetReset::Earliest).await.unwrap() })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !joiner.is_finished() && tokio::time::Instant::now() < deadline {
        // Poll one record at a time so A stays busy without draining the partitions.
        let _ = a.poll(1, Duration::from_millis(100)).await.unwrap();
    }
    let mut b = joiner.await.unwrap();
    assert!(!b.assignment().is_empty(), "B got partitions in the rebalance");
    let moved = a.take_rebalance().expect("A was told about the rebalance");
    for p in b.assignment() {
        assert!(moved.revoked.contains(&p), "A was told {p:?} was revoked: {moved:?}");
    }
    for (p, o) in &finished {
        let committed = log.committed(&group, &t, *p).await.unwrap();
        assert_eq!(committed, Some(*o), "partition {p}: only what A finished is committed");
    }
    // B starts where A's finished work ends on the partitions it took: the records A was handed
    // but did not finish come again.
    let taken: Vec<u32> = b.assignment().iter().map(|(_, p)| *p).collect();
    let mut b_got = Vec::new();
    for _ in 0..10 {
        b_got.extend(b.poll(1000, Duration::from_millis(200)).await.unwrap());
    }
    for p in taken {
        let first = b_got.iter().filter(|r| r.partition == p).map(|r| r.offset).min();
        if let (Some(first), Some(o)) = (first, finished.get(&p)) {
            assert_eq!(first, *o, "partition {p}: B resumes right after A's finished records");
        }
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
    log.delete_topic(&t).await.unwrap();
}
