//! The conformance suite: every behaviour of the [`EventLog`] port, written once, run against
//! each backend. A backend's test file calls [`conformance_tests!`] with an async expression that
//! builds a fresh [`Fixture`]; each scenario becomes one `#[tokio::test]`.
//!
//! Scenarios use their own uniquely named topics and groups, so they also run against a shared
//! broker. Where a backend legitimately differs (Kafka does not report offsets for acks=0), the
//! difference is declared in [`Capabilities`] and checked, not skipped silently.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventline_model::topics::{Acks, Compression, TopicSpec};

use crate::partitioner::partition_for_key;
use crate::{EventLog, LogError, OffsetReset, ProduceRecord, Record};

/// What a backend can and cannot do, declared by its test file.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// Offsets are reported even for acks=0.
    pub offsets_for_acks0: bool,
    /// How long a group consumer may take to get its partitions after joining.
    pub group_settle: Duration,
    /// The reported end offset (high watermark) is exactly the offset the next record gets, and
    /// reading past it is refused. The test Kafka broker (tansu 0.6) reports the base offset of
    /// the last batch plus one, which is short by up to one batch, and serves reads past it;
    /// the checks that need the exact value are gated on this flag by name.
    pub exact_high_watermark: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self { offsets_for_acks0: true, group_settle: Duration::from_secs(2), exact_high_watermark: true }
    }
}

/// A log under test, plus whatever must live as long as it (a temporary directory, a broker).
pub struct Fixture {
    pub log: Arc<dyn EventLog>,
    pub caps: Capabilities,
    pub guard: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").field("backend", &self.log.backend()).field("caps", &self.caps).finish()
    }
}

fn unique(name: &str) -> String {
    format!("conf.{name}.{:08x}", rand::random::<u32>())
}

async fn topic(log: &dyn EventLog, name: &str, partitions: u32) -> String {
    let t = unique(name);
    let mut spec = TopicSpec::new(&t);
    spec.partitions = partitions;
    log.create_topic(&spec).await.expect("create topic");
    t
}

fn rec(key: Option<&str>, value: &str) -> ProduceRecord {
    ProduceRecord::new(key.map(|k| Bytes::copy_from_slice(k.as_bytes())), Bytes::copy_from_slice(value.as_bytes()))
}

/// Reads a whole partition.
async fn read_all(log: &dyn EventLog, topic: &str, partition: u32) -> Vec<Record> {
    let (start, end) = log.watermarks(topic, partition).await.unwrap();
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let batch = log.fetch(topic, partition, at, 1000).await.unwrap();
        assert!(!batch.is_empty(), "fetch at {at} < end {end} returned nothing");
        at = batch.last().unwrap().offset + 1;
        out.extend(batch);
    }
    out
}

pub async fn topic_admin(f: Fixture) {
    let log = &*f.log;
    let t = unique("admin");
    let mut spec = TopicSpec::new(&t);
    spec.partitions = 4;
    spec.compression = Compression::Lz4;
    log.create_topic(&spec).await.unwrap();
    let listed = log.list_topics().await.unwrap();
    assert!(listed.iter().any(|d| d.spec.name == t), "created topic is listed");
    let d = log.describe_topic(&t).await.unwrap();
    assert_eq!(d.partitions.len(), 4);
    assert!(d.partitions.iter().all(|p| p.start_offset == 0 && p.end_offset == 0));
    assert!(matches!(log.create_topic(&spec).await, Err(LogError::TopicExists(_))));
    assert!(!log.ensure_topic(&spec).await.unwrap(), "ensure on an existing topic creates nothing");
    log.delete_topic(&t).await.unwrap();
    assert!(matches!(log.describe_topic(&t).await, Err(LogError::UnknownTopic(_))));
    assert!(matches!(log.delete_topic(&t).await, Err(LogError::UnknownTopic(_))));
    let mut bad = TopicSpec::new("bad/name");
    bad.partitions = 1;
    assert!(matches!(log.create_topic(&bad).await, Err(LogError::InvalidTopic(_))));
}

pub async fn produce_positions_follow_input_order(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "order", 3).await;
    let records: Vec<_> = (0..300).map(|i| rec(Some(&format!("user-{}", i % 17)), &format!("{{\"n\":{i}}}"))).collect();
    let pos = log.produce(&t, records.clone(), Acks::All).await.unwrap();
    assert_eq!(pos.len(), 300);
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    for (i, p) in pos.iter().enumerate() {
        let key = format!("user-{}", i % 17);
        assert_eq!(p.partition, partition_for_key(key.as_bytes(), 3), "key {key} lands on Kafka's murmur2 partition");
        let want = next.entry(p.partition).or_insert(0);
        assert_eq!(p.offset, Some(*want), "record {i}: offsets are dense and in input order per partition");
        *want += 1;
    }
    for (p, n) in next {
        let (start, end) = log.watermarks(&t, p).await.unwrap();
        if f.caps.exact_high_watermark {
            assert_eq!((start, end), (0, n));
        } else {
            // Gated (exact_high_watermark): the end may be short by up to one batch.
            assert!(start == 0 && end > 0 && end <= n, "watermarks ({start}, {end}) of {n} records");
        }
    }
}

pub async fn records_round_trip_byte_for_byte(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "bytes", 1).await;
    let odd = Bytes::from_static(&[0, 159, 146, 150, 255, b'\n']);
    let input = vec![
        ProduceRecord::new(Some("k1"), "{\"a\":1}")
            .with_header("traceparent", "00-abc-def-01")
            .with_timestamp(1_700_000_000_123),
        ProduceRecord { key: None, value: Some(odd.clone()), ..Default::default() },
        ProduceRecord { key: Some(Bytes::from_static(b"tomb")), value: None, ..Default::default() },
    ];
    log.produce(&t, input.clone(), Acks::All).await.unwrap();
    let out = read_all(log, &t, 0).await;
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(out[0].value_str(), Some("{\"a\":1}"));
    assert_eq!(out[0].header("traceparent"), Some(&b"00-abc-def-01"[..]));
    assert_eq!(out[0].timestamp, 1_700_000_000_123);
    assert_eq!(out[1].value.as_ref(), Some(&odd));
    assert_eq!(out[1].key, None);
    assert_eq!(out[2].value, None, "null values (tombstones) stay null");
    assert!(out.iter().enumerate().all(|(i, r)| r.offset == i as u64 && *r.topic == *t && r.partition == 0));
}

pub async fn null_keys_spread_over_partitions(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "rr", 3).await;
    let pos = log.produce(&t, (0..30).map(|i| rec(None, &i.to_string())).collect(), Acks::Leader).await.unwrap();
    let used: BTreeSet<u32> = pos.iter().map(|p| p.partition).collect();
    assert_eq!(used.len(), 3, "keyless records use every partition");
}

pub async fn every_acks_level_is_readable(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "acks", 1).await;
    for (i, acks) in [Acks::None, Acks::Leader, Acks::All].into_iter().enumerate() {
        let pos = log.produce(&t, vec![rec(Some("k"), &format!("v{i}"))], acks).await.unwrap();
        if acks != Acks::None || f.caps.offsets_for_acks0 {
            assert_eq!(pos[0].offset, Some(i as u64), "acks={acks}");
        }
    }
    let mut values = Vec::new();
    for _ in 0..50 {
        values = read_all(log, &t, 0).await.iter().map(|r| r.value_str().unwrap().to_owned()).collect();
        if values.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(values, ["v0", "v1", "v2"]);
}

pub async fn fetch_from_any_offset(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "fetch", 1).await;
    for chunk in 0..10 {
        let batch = (0..100).map(|i| rec(Some("k"), &format!("{}", chunk * 100 + i))).collect();
        log.produce(&t, batch, Acks::Leader).await.unwrap();
    }
    for start in [0u64, 1, 99, 100, 555, 999] {
        let got = log.fetch(&t, 0, start, 7).await.unwrap();
        assert!(!got.is_empty() && got.len() <= 7);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, start + i as u64);
            assert_eq!(r.value_str().unwrap(), (start + i as u64).to_string());
        }
    }
    assert!(log.fetch(&t, 0, 1000, 10).await.unwrap().is_empty(), "fetch at the end returns nothing");
    if f.caps.exact_high_watermark {
        assert!(matches!(log.fetch(&t, 0, 5000, 10).await, Err(LogError::OffsetOutOfRange { .. })));
    } else {
        // Gated (exact_high_watermark): the broker serves an empty read past the end.
        assert!(log.fetch(&t, 0, 5000, 10).await.unwrap_or_default().is_empty());
    }
    assert!(matches!(log.fetch(&t, 7, 0, 10).await, Err(LogError::UnknownPartition { .. })));
}

pub async fn offsets_by_timestamp(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "time", 1).await;
    let base = 1_700_000_000_000i64;
    let records = (0..50).map(|i| rec(Some("k"), &i.to_string()).with_timestamp(base + i * 1000)).collect();
    log.produce(&t, records, Acks::All).await.unwrap();
    assert_eq!(log.offset_for_time(&t, 0, base - 5).await.unwrap(), 0);
    assert_eq!(log.offset_for_time(&t, 0, base + 10_500).await.unwrap(), 11);
    assert_eq!(log.offset_for_time(&t, 0, base + 20_000).await.unwrap(), 20);
    assert_eq!(log.offset_for_time(&t, 0, base + 999_999).await.unwrap(), 50, "past the last record: the end offset");
}

pub async fn every_codec_round_trips(f: Fixture) {
    let log = &*f.log;
    for c in Compression::ALL {
        let t = unique(&format!("codec-{c}"));
        let mut spec = TopicSpec::new(&t);
        spec.partitions = 1;
        spec.compression = c;
        log.create_topic(&spec).await.unwrap();
        let values: Vec<String> =
            (0..200).map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50))).collect();
        log.produce(&t, values.iter().map(|v| rec(Some("k"), v)).collect(), Acks::All).await.unwrap();
        let got: Vec<String> = read_all(log, &t, 0).await.iter().map(|r| r.value_str().unwrap().to_owned()).collect();
        assert_eq!(got, values, "codec {c}");
    }
}

async fn poll_until(c: &mut Box<dyn crate::GroupConsumer>, want: usize, within: Duration) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < want && tokio::time::Instant::now() < deadline {
        out.extend(c.poll(want - out.len(), Duration::from_millis(200)).await.unwrap());
    }
    out
}

pub async fn group_commit_and_resume_without_gaps_or_repeats(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "resume", 3).await;
    let group = unique("g-resume");
    log.produce(&t, (0..120).map(|i| rec(Some(&format!("k{i}")), &i.to_string())).collect(), Acks::All).await.unwrap();
    let mut c = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let first = poll_until(&mut c, 50, f.caps.group_settle * 5).await;
    assert!(first.len() >= 50);
    c.commit().await.unwrap();
    c.close().await.unwrap();
    let mut c = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let rest = poll_until(&mut c, 120 - first.len(), f.caps.group_settle * 5).await;
    let mut seen: Vec<String> = first.iter().chain(&rest).map(|r| r.value_str().unwrap().to_owned()).collect();
    seen.sort_by_key(|v| v.parse::<u32>().unwrap());
    let want: Vec<String> = (0..120).map(|i| i.to_string()).collect();
    assert_eq!(seen, want, "every record exactly once across commit and rejoin");
    c.commit().await.unwrap();
    let lag = log.group_lag(&group).await.unwrap();
    assert_eq!(lag.iter().filter(|l| l.topic == t).map(|l| l.lag).sum::<u64>(), 0);
    c.close().await.unwrap();
}

pub async fn group_members_share_partitions(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "share", 4).await;
    let group = unique("g-share");
    let topics = vec![t.clone()];
    let mut a = log.subscribe(&group, &topics, OffsetReset::Earliest).await.unwrap();
    let mut b = log.subscribe(&group, &topics, OffsetReset::Earliest).await.unwrap();
    log.produce(&t, (0..200).map(|i| rec(Some(&format!("k{i}")), &i.to_string())).collect(), Acks::All).await.unwrap();
    let deadline = tokio::time::Instant::now() + f.caps.group_settle * 5;
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    while ra.len() + rb.len() < 200 && tokio::time::Instant::now() < deadline {
        ra.extend(a.poll(100, Duration::from_millis(100)).await.unwrap());
        rb.extend(b.poll(100, Duration::from_millis(100)).await.unwrap());
    }
    let pa: BTreeSet<u32> = ra.iter().map(|r| r.partition).collect();
    let pb: BTreeSet<u32> = rb.iter().map(|r| r.partition).collect();
    assert!(pa.is_disjoint(&pb), "a partition is owned by one member: {pa:?} / {pb:?}");
    assert!(!ra.is_empty() && !rb.is_empty(), "both members got work");
    assert_eq!(ra.len() + rb.len(), 200);
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    b.close().await.unwrap();
    // The remaining member takes over every partition.
    log.produce(&t, (0..40).map(|i| rec(Some(&format!("k{i}")), "late")).collect(), Acks::All).await.unwrap();
    let late = poll_until(&mut a, 40, f.caps.group_settle * 5).await;
    assert_eq!(late.len(), 40);
    assert_eq!(a.assignment().len(), 4);
    a.close().await.unwrap();
}

pub async fn seek_rewinds(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "seek", 1).await;
    let group = unique("g-seek");
    log.produce(&t, (0..10).map(|i| rec(Some("k"), &i.to_string())).collect(), Acks::All).await.unwrap();
    let mut c = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    assert_eq!(poll_until(&mut c, 10, f.caps.group_settle * 5).await.len(), 10);
    c.seek(&t, 0, 4).await.unwrap();
    let again = poll_until(&mut c, 6, f.caps.group_settle * 5).await;
    assert_eq!(again.first().map(|r| r.offset), Some(4));
    assert_eq!(again.len(), 6);
    c.close().await.unwrap();
}

pub async fn lag_counts_uncommitted_records(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "lag", 2).await;
    let group = unique("g-lag");
    log.produce(&t, (0..30).map(|i| rec(Some(&format!("k{i}")), "x")).collect(), Acks::All).await.unwrap();
    let mut c = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let got = poll_until(&mut c, 30, f.caps.group_settle * 5).await;
    assert_eq!(got.len(), 30);
    c.commit().await.unwrap();
    log.produce(&t, (0..12).map(|i| rec(Some(&format!("k{i}")), "y")).collect(), Acks::All).await.unwrap();
    let lag = log.group_lag(&group).await.unwrap();
    let mine: Vec<_> = lag.iter().filter(|l| l.topic == t).collect();
    assert_eq!(mine.len(), 2, "one row per partition");
    let lag: u64 = mine.iter().map(|l| l.lag).sum();
    if f.caps.exact_high_watermark {
        assert_eq!(lag, 12);
    } else {
        // Gated (exact_high_watermark): lag is measured against a high watermark that may be
        // short by up to one batch per partition.
        assert!(lag > 0 && lag <= 12, "lag {lag} of 12 new records");
    }
    assert!(log.list_groups().await.unwrap().contains(&group));
    c.close().await.unwrap();
}

pub async fn latest_reset_skips_history(f: Fixture) {
    let log = &*f.log;
    let t = topic(log, "latest", 1).await;
    log.produce(&t, vec![rec(Some("k"), "old")], Acks::All).await.unwrap();
    let mut c = log.subscribe(&unique("g-latest"), std::slice::from_ref(&t), OffsetReset::Latest).await.unwrap();
    // Let the member settle on its assignment before the new record.
    let _ = c.poll(10, f.caps.group_settle).await.unwrap();
    log.produce(&t, vec![rec(Some("k"), "new")], Acks::All).await.unwrap();
    let got = poll_until(&mut c, 1, f.caps.group_settle * 5).await;
    assert_eq!(got.iter().map(|r| r.value_str().unwrap()).collect::<Vec<_>>(), ["new"]);
    c.close().await.unwrap();
}

pub async fn bad_requests_are_refused(f: Fixture) {
    let log = &*f.log;
    let missing = unique("missing");
    assert!(matches!(log.produce(&missing, vec![rec(None, "x")], Acks::All).await, Err(LogError::UnknownTopic(_))));
    let t = topic(log, "big", 1).await;
    let huge = ProduceRecord { value: Some(Bytes::from(vec![b'x'; 8 << 20])), ..Default::default() };
    assert!(log.produce(&t, vec![huge], Acks::All).await.is_err(), "an 8 MiB record is refused");
    assert_eq!(log.watermarks(&t, 0).await.unwrap(), (0, 0), "nothing half-written");
    assert!(log.subscribe("bad group!", std::slice::from_ref(&t), OffsetReset::Earliest).await.is_err());
}

/// Polls until the member reports a rebalance that assigned it something (and returns it).
async fn await_assignment(c: &mut Box<dyn crate::GroupConsumer>, within: Duration) -> crate::Rebalance {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = crate::Rebalance::default();
    while tokio::time::Instant::now() < deadline {
        let _ = c.poll(1, Duration::from_millis(100)).await.unwrap();
        if let Some(m) = c.take_rebalance() {
            seen.revoked.extend(m.revoked);
            seen.assigned.extend(m.assigned);
            if !seen.assigned.is_empty() {
                break;
            }
        }
    }
    seen
}

/// Once a rebalance gave a partition to another member, the old owner's commit of it is refused
/// (it would overwrite the new owner's offsets), naming the group; its commits of the partitions it
/// kept go through. Both members are told what moved. (On Kafka a commit made while the
/// rebalance is still being prepared is allowed, as the broker allows it: the member owns its
/// partitions until it rejoins. On the embedded log partitions move at once when a member joins,
/// so there a commit is refused as soon as the partition moved.)
pub async fn a_commit_from_an_older_generation_is_fenced(f: Fixture) {
    let log = f.log.clone();
    let t = topic(&*log, "fence", 2).await;
    let group = unique("g-fence");
    log.produce(&t, (0..40).map(|i| rec(Some(&format!("k{i}")), &i.to_string())).collect(), Acks::All).await.unwrap();
    let mut a = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let first = await_assignment(&mut a, f.caps.group_settle * 5).await;
    assert_eq!(first.assigned.len(), 2, "the first poll reports the first assignment: {first:?}");
    let got = poll_until(&mut a, 40, f.caps.group_settle * 5).await;
    assert!(!got.is_empty());
    let next: Vec<(String, u32, u64)> = [0, 1]
        .into_iter()
        .filter_map(|p| got.iter().filter(|r| r.partition == p).map(|r| r.offset + 1).max().map(|o| (t.clone(), p, o)))
        .collect();
    a.commit_offsets(&next).await.unwrap();
    for (_, p, o) in &next {
        assert_eq!(log.committed(&group, &t, *p).await.unwrap(), Some(*o), "exactly the offsets given");
    }

    // B joins; A has not polled since, so its view of the group is stale.
    let joiner = {
        let (log, group, t) = (log.clone(), group.clone(), t.clone());
        tokio::spawn(async move { log.subscribe(&group, &[t], OffsetReset::Earliest).await.unwrap() })
    };
    // A polls (serving the rebalance), B completes its join; both see their moves.
    let deadline = tokio::time::Instant::now() + f.caps.group_settle * 10;
    let mut moved_a = crate::Rebalance::default();
    while !joiner.is_finished() && tokio::time::Instant::now() < deadline {
        let _ = a.poll(1, Duration::from_millis(100)).await.unwrap();
        if let Some(m) = a.take_rebalance() {
            moved_a.revoked.extend(m.revoked);
            moved_a.assigned.extend(m.assigned);
        }
    }
    let mut b = joiner.await.unwrap();
    let moved_b = await_assignment(&mut b, f.caps.group_settle * 5).await;
    // Let A settle on its final assignment.
    for _ in 0..10 {
        let _ = a.poll(1, Duration::from_millis(100)).await.unwrap();
        if let Some(m) = a.take_rebalance() {
            moved_a.revoked.extend(m.revoked);
            moved_a.assigned.extend(m.assigned);
        }
    }
    let (owned_a, owned_b) = (a.assignment(), b.assignment());
    assert_eq!(owned_a.len() + owned_b.len(), 2, "{owned_a:?} / {owned_b:?}");
    assert!(!owned_b.is_empty(), "B took a partition");
    for p in &owned_b {
        assert!(moved_a.revoked.contains(p), "A was told {p:?} was revoked: {moved_a:?}");
        assert!(moved_b.assigned.contains(p), "B was told {p:?} was assigned: {moved_b:?}");
    }
    let (bt, bp) = owned_b[0].clone();
    let before = log.committed(&group, &bt, bp).await.unwrap();
    let err = a.commit_offsets(&[(bt.clone(), bp, 1)]).await.expect_err("A no longer owns B's partition");
    assert!(matches!(err, LogError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains(&group), "the error names the group: {err}");
    assert_eq!(log.committed(&group, &bt, bp).await.unwrap(), before, "B's offsets are untouched");
    if let Some((at, ap)) = owned_a.first().cloned() {
        a.commit_offsets(&[(at.clone(), ap, 3)]).await.unwrap();
        assert_eq!(log.committed(&group, &at, ap).await.unwrap(), Some(3));
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A committed offset beyond the end of a partition (a log restored from an older backup, a
/// re-created topic on a cluster that kept the group's offsets) resumes at the end: the group
/// neither fails nor silently starts again from the beginning.
pub async fn a_committed_offset_beyond_the_end_resumes_at_the_end(f: Fixture) {
    if !f.caps.exact_high_watermark {
        // Gated (exact_high_watermark): the end cannot be told from a short high watermark, so
        // the backend is configured to leave such offsets to librdkafka's reset policy.
        return;
    }
    let log = &*f.log;
    let t = topic(log, "beyond", 1).await;
    let group = unique("g-beyond");
    log.produce(&t, (0..5).map(|i| rec(Some("k"), &i.to_string())).collect(), Acks::All).await.unwrap();
    let mut a = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let _ = await_assignment(&mut a, f.caps.group_settle * 5).await;
    a.commit_offsets(&[(t.clone(), 0, 1000)]).await.unwrap();
    a.close().await.unwrap();
    let mut b = log.subscribe(&group, std::slice::from_ref(&t), OffsetReset::Earliest).await.unwrap();
    let _ = await_assignment(&mut b, f.caps.group_settle * 5).await;
    log.produce(&t, vec![rec(Some("k"), "after")], Acks::All).await.unwrap();
    let got = poll_until(&mut b, 1, f.caps.group_settle * 5).await;
    let values: Vec<&str> = got.iter().map(|r| r.value_str().unwrap()).collect();
    assert_eq!(values, ["after"], "resumed at the end, not at the beginning");
    b.close().await.unwrap();
}

/// Generates one `#[tokio::test]` per scenario. `$make` is an async expression yielding a [`Fixture`].
/// With `optional:` it yields an `Option<Fixture>`: `None` means the backend's service was
/// deliberately not provided (the fixture prints that the tests were skipped), and each scenario
/// then returns at once.
#[macro_export]
macro_rules! conformance_tests {
    (optional: $make:expr) => {
        $crate::conformance_tests!(@all optional $make);
    };
    (@all $mode:ident $make:expr) => {
        $crate::conformance_tests!(@each $mode $make;
            topic_admin, produce_positions_follow_input_order, records_round_trip_byte_for_byte,
            null_keys_spread_over_partitions, every_acks_level_is_readable, fetch_from_any_offset,
            offsets_by_timestamp, every_codec_round_trips, group_commit_and_resume_without_gaps_or_repeats,
            group_members_share_partitions, seek_rewinds, lag_counts_uncommitted_records,
            latest_reset_skips_history, bad_requests_are_refused, a_commit_from_an_older_generation_is_fenced,
            a_committed_offset_beyond_the_end_resumes_at_the_end);
    };
    (@each required $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name($make.await).await;
            }
        )*
    };
    (@each optional $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            // The crate that runs an optional suite declares the cfg (see crates/kafka/build.rs):
            // a build with EVENTLINE_SKIP_KAFKA=1 reports these scenarios as ignored.
            #[cfg_attr(eventline_skip_kafka, ignore = "EVENTLINE_SKIP_KAFKA=1: no broker to test against")]
            async fn $name() {
                if let Some(fixture) = $make.await {
                    $crate::conformance::$name(fixture).await;
                }
            }
        )*
    };
    ($make:expr) => {
        $crate::conformance_tests!(@all required $make);
    };
}
