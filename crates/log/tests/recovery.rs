//! Recovery of the embedded log after crashes and damage: incomplete tails are cut, indexes are
//! rebuilt, and damage inside the log is refused with the file named.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, LogError, ProduceRecord};
use eventline_model::topics::{Acks, TopicSpec};

fn opts() -> EmbeddedOptions {
    EmbeddedOptions { segment_bytes: 64 << 10, index_interval_bytes: 512, ..Default::default() }
}

fn spec(name: &str) -> TopicSpec {
    let mut s = TopicSpec::new(name);
    s.partitions = 1;
    s
}

async fn fill(dir: &Path, n: usize) -> Vec<String> {
    let log = EmbeddedLog::open(dir, opts()).unwrap();
    log.create_topic(&spec("t")).await.unwrap();
    let values: Vec<String> = (0..n).map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(i % 40))).collect();
    for chunk in values.chunks(10) {
        let batch = chunk.iter().map(|v| ProduceRecord::new(Some("k"), v.clone())).collect();
        log.produce("t", batch, Acks::All).await.unwrap();
    }
    log.close().unwrap();
    values
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("t/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// The first 60 bytes of a batch at `base_offset` that announces 500: what a crash in the middle
/// of writing it leaves.
fn torn_batch(base_offset: u64) -> Vec<u8> {
    let mut torn = vec![0u8; 60];
    torn[0..8].copy_from_slice(&base_offset.to_le_bytes());
    torn[8..12].copy_from_slice(&500u32.to_le_bytes());
    torn[16] = 1;
    torn[20] = 3;
    torn
}

async fn values(log: &EmbeddedLog) -> Vec<String> {
    let (_, end) = log.watermarks("t", 0).await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < end {
        let got = log.fetch("t", 0, out.len() as u64, 500).await.unwrap();
        out.extend(got.iter().map(|r| r.value_str().unwrap().to_owned()));
    }
    out
}

#[tokio::test]
async fn data_survives_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 4000).await;
    assert!(segments(dir.path()).len() > 3, "small segments roll");
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(values(&log).await, written);
}

#[tokio::test]
async fn an_incomplete_tail_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 300).await;
    let active = segments(dir.path()).pop().unwrap();
    // A crash in the middle of writing the next batch: half a batch at the end.
    let f = OpenOptions::new().append(true).open(&active).unwrap();
    let len = f.metadata().unwrap().len();
    f.write_all_at(&torn_batch(written.len() as u64), len).unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len, "only the torn batch was cut");
    assert_eq!(values(&log).await, written);
    let pos = log.produce("t", vec![ProduceRecord::new(Some("k"), "after")], Acks::All).await.unwrap();
    assert_eq!(pos[0].offset, Some(written.len() as u64), "offsets continue without a gap");
}

#[tokio::test]
async fn a_zero_filled_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 100).await;
    let active = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    OpenOptions::new().write(true).open(&active).unwrap().set_len(len + 4096).unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(values(&log).await, written);
}

#[tokio::test]
async fn closing_gives_back_the_preallocated_space() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 100).await;
    let active = segments(dir.path()).pop().unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    log.produce("t", vec![ProduceRecord::new(Some("k"), "one more")], Acks::All).await.unwrap();
    let running = std::fs::metadata(&active).unwrap().len();
    assert!(running >= len + (1 << 20), "the active segment is allocated ahead: {len} -> {running}");
    log.close().unwrap();
    let closed = std::fs::metadata(&active).unwrap().len();
    assert!(closed > len && closed < len + 200, "closed at its data: {len} -> {closed}");
}

#[tokio::test]
async fn a_crash_inside_the_allocation_recovers_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 300).await;
    let active = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    // After a SIGKILL the file is longer than its data by up to a whole preallocation step,
    // which is more than recovery reads in one piece.
    let f = OpenOptions::new().write(true).open(&active).unwrap();
    f.set_len(len + (9 << 20)).unwrap();
    // ...and the batch being written may be torn, with zeros after it.
    f.write_all_at(&torn_batch(written.len() as u64), len).unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len, "cut at the last whole batch");
    assert_eq!(values(&log).await, written);
    let pos = log.produce("t", vec![ProduceRecord::new(Some("k"), "after")], Acks::All).await.unwrap();
    assert_eq!(pos[0].offset, Some(written.len() as u64), "offsets continue without a gap");
}

#[tokio::test]
async fn a_sealed_segment_still_holding_its_allocation_opens() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 4000).await;
    let first = segments(dir.path()).remove(0);
    // A crash after the roll but before the trim of the sealed segment reached the disk.
    let len = std::fs::metadata(&first).unwrap().len();
    OpenOptions::new().write(true).open(&first).unwrap().set_len(len + (1 << 20)).unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(values(&log).await, written);
    assert_eq!(std::fs::metadata(&first).unwrap().len(), len, "trimmed back to its data");
}

#[tokio::test]
async fn damage_followed_by_zeros_and_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 300).await;
    let active = segments(dir.path()).pop().unwrap();
    // Zero a whole region in the middle of the active segment: a zeroed range with data after it
    // is not unused allocation.
    let f = OpenOptions::new().read(true).write(true).open(&active).unwrap();
    f.write_all_at(&[0u8; 256], 0).unwrap();
    std::fs::remove_file(active.with_extension("index")).unwrap();
    let err = EmbeddedLog::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { position: 0, .. }), "{err}");
}

#[tokio::test]
async fn damage_inside_the_log_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 300).await;
    let active = segments(dir.path()).pop().unwrap();
    // Flip a byte inside the first batch of the active segment; more batches follow it.
    let f = OpenOptions::new().read(true).write(true).open(&active).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 50).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], 50).unwrap();
    // Remove the index so recovery must scan the damaged region.
    std::fs::remove_file(active.with_extension("index")).unwrap();
    let err = EmbeddedLog::open(dir.path(), opts()).unwrap_err();
    match &err {
        LogError::Corrupt { file, position, .. } => {
            assert_eq!(file, &active);
            assert_eq!(*position, 0);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(err.to_string().contains(&active.display().to_string()), "{err}");
    let size_after = std::fs::metadata(&active).unwrap().len();
    assert!(size_after > 1000, "nothing was truncated");
}

#[tokio::test]
async fn damage_in_a_sealed_segment_is_served_as_an_error_not_as_data() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 4000).await;
    let first = segments(dir.path()).remove(0);
    let f = OpenOptions::new().read(true).write(true).open(&first).unwrap();
    f.write_all_at(b"XXXX", 100).unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    let err = log.fetch("t", 0, 0, 10).await.unwrap_err();
    assert!(matches!(err, LogError::Decode { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_segment_is_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 4000).await;
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[1]).unwrap();
    let err = EmbeddedLog::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, LogError::Hole { .. }), "{err}");
    assert!(err.to_string().contains(&segs[0].display().to_string()), "{err}");
}

#[tokio::test]
async fn missing_or_garbage_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let written = fill(dir.path(), 4000).await;
    let segs = segments(dir.path());
    std::fs::remove_file(segs[0].with_extension("index")).unwrap();
    std::fs::write(segs[1].with_extension("index"), b"garbage garbage garbage!").unwrap();
    std::fs::write(segs.last().unwrap().with_extension("timeindex"), [0xffu8; 36]).unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(values(&log).await, written);
    assert!(std::fs::metadata(segs[0].with_extension("index")).unwrap().len() > 0, "index file rewritten");
    // Random access still lands on the right records.
    let r = log.fetch("t", 0, 1234, 1).await.unwrap();
    assert_eq!(r[0].value_str().unwrap(), written[1234]);
}

#[tokio::test]
async fn a_second_process_gets_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let _log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    // flock is per open file description, so a second open in this process conflicts too.
    let err = EmbeddedLog::open(dir.path(), opts()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    assert!(msg.contains("in use"), "{msg}");
}

#[tokio::test]
async fn retention_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    let mut s = spec("t");
    s.retention = Some(Duration::from_secs(3600));
    log.create_topic(&s).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let old = now - 2 * 3600 * 1000;
    for i in 0..1000 {
        let r = ProduceRecord::new(Some("k"), format!("old-{i}-{}", "x".repeat(100))).with_timestamp(old);
        log.produce("t", vec![r], Acks::Leader).await.unwrap();
    }
    let fresh = (0..10).map(|i| ProduceRecord::new(Some("k"), format!("new-{i}"))).collect();
    log.produce("t", fresh, Acks::All).await.unwrap();
    let removed = log.enforce_retention().unwrap();
    assert!(removed >= 1);
    let (start, end) = log.watermarks("t", 0).await.unwrap();
    assert!(start > 0, "old segments are gone");
    assert_eq!(end, 1010);
    let tail = log.fetch("t", 0, 1000, 10).await.unwrap();
    assert!(tail.iter().all(|r| r.value_str().unwrap().starts_with("new-")));
    assert!(matches!(log.fetch("t", 0, 0, 1).await, Err(LogError::OffsetOutOfRange { .. })));
}

#[tokio::test]
async fn retention_by_size_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    let mut s = spec("t");
    s.retention_bytes = Some(200 << 10);
    log.create_topic(&s).await.unwrap();
    for i in 0..5000 {
        log.produce("t", vec![ProduceRecord::new(Some("k"), format!("{i}-{}", "y".repeat(100)))], Acks::Leader)
            .await
            .unwrap();
    }
    log.enforce_retention().unwrap();
    let d = log.describe_topic("t").await.unwrap();
    let size = d.partitions[0].size_bytes.unwrap();
    assert!(size <= (200 << 10) + (64 << 10), "size {size} within cap plus one segment");
    assert!(d.partitions[0].start_offset > 0);
    assert_eq!(d.partitions[0].end_offset, 5000);
}

#[tokio::test]
async fn committed_offsets_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
        log.create_topic(&spec("t")).await.unwrap();
        log.produce("t", (0..10).map(|i| ProduceRecord::new(Some("k"), i.to_string())).collect(), Acks::All)
            .await
            .unwrap();
        let mut c = log.subscribe("g", &["t".to_string()], Default::default()).await.unwrap();
        let got = c.poll(4, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 4);
        c.commit().await.unwrap();
    }
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    assert_eq!(log.committed("g", "t", 0).await.unwrap(), Some(4));
    let mut c = log.subscribe("g", &["t".to_string()], Default::default()).await.unwrap();
    let got = c.poll(100, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.first().map(|r| r.offset), Some(4));
}

/// A topic whose name starts with `.` would be skipped when the log reopens (dot directories are
/// the log's own leftovers): such names are refused at creation, so no topic can vanish.
#[tokio::test]
async fn a_topic_name_with_a_leading_dot_is_refused_not_lost() {
    use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, LogError};
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let err = log.create_topic(&eventline_model::topics::TopicSpec::new(".hidden")).await.unwrap_err();
    assert!(matches!(err, LogError::InvalidTopic(_)), "{err}");
    assert!(log.list_topics().await.unwrap().is_empty());
}
