//! The consumer runtime against a real embedded log: retries, dead letters, what is committed,
//! deferred work, graceful stop, partition moves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, OffsetReset, ProduceRecord, Record};
use eventline_model::topics::{Acks, TopicSpec};
use eventline_pipeline::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Outcome, RuntimeError};
use tokio::sync::watch;

async fn log_with(topic: &str, partitions: u32, values: &[&str]) -> (tempfile::TempDir, Arc<EmbeddedLog>) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap());
    log.create_topic(&TopicSpec { partitions, ..TopicSpec::new(topic) }).await.unwrap();
    let records =
        values.iter().enumerate().map(|(i, v)| ProduceRecord::new(Some(format!("k{i}")), v.to_string())).collect();
    log.produce(topic, records, Acks::All).await.unwrap();
    (dir, log)
}

fn config(group: &str, topic: &str) -> ConsumerConfig {
    ConsumerConfig {
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        max_attempts: 3,
        poll_wait: Duration::from_millis(50),
        ..ConsumerConfig::new(group, &[topic], OffsetReset::Earliest)
    }
}

/// Decides by the record's value: `ok`, `bad` (rejected), `flaky` (fails twice, then works),
/// `down` (always fails), `later` (deferred).
#[derive(Clone, Default)]
struct Script {
    seen: Arc<Mutex<Vec<String>>>,
    tries: Arc<Mutex<BTreeMap<u64, u32>>>,
    flushed: Arc<Mutex<u32>>,
    flush_ready: Arc<Mutex<bool>>,
}

#[async_trait]
impl Handler for Script {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        let mut out = Vec::new();
        for r in records {
            let v = r.value_str().unwrap().to_owned();
            let tries = {
                let mut t = self.tries.lock().unwrap();
                let n = t.entry(r.offset).or_default();
                *n += 1;
                *n
            };
            self.seen.lock().unwrap().push(v.clone());
            out.push(match v.as_str() {
                "bad" => Outcome::Reject("not a valid event".into()),
                "flaky" if tries < 3 => Outcome::Retry("receiver busy".into()),
                "down" => Outcome::Retry("receiver down".into()),
                "later" => Outcome::Deferred,
                _ => Outcome::Done,
            });
        }
        Ok(out)
    }

    async fn flush(&mut self, force: bool) -> Result<bool, HandlerError> {
        if force || *self.flush_ready.lock().unwrap() {
            *self.flushed.lock().unwrap() += 1;
            return Ok(true);
        }
        Ok(false)
    }
}

async fn run_until<H: Handler>(
    runtime: &ConsumerRuntime,
    handler: H,
    done: impl Fn() -> bool + Send + 'static,
) -> Result<(), RuntimeError> {
    let (stop, stopped) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(true);
    });
    let result = runtime.run(handler, stopped).await;
    watcher.await.unwrap();
    result
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_with_where_they_came_from() {
    let (_dir, log, topic) = {
        let (d, l) = log_with("orders", 1, &["ok", "flaky", "bad", "down", "ok"]).await;
        (d, l, "orders")
    };
    let runtime = ConsumerRuntime::new(log.clone(), config("svc", topic));
    let script = Script::default();
    let seen = script.seen.clone();
    run_until(&runtime, script, move || seen.lock().unwrap().iter().filter(|v| *v == "ok").count() >= 2).await.unwrap();
    let stats = runtime.stats().snapshot();
    assert_eq!(stats.dead_lettered, 2, "`bad` at once, `down` after its attempts: {stats:?}");
    assert_eq!(stats.processed, 3, "two `ok` and `flaky` on its third try: {stats:?}");
    assert!(stats.retried >= 3, "{stats:?}");
    let dead = log.fetch("orders.dlq", 0, 0, 10).await.unwrap();
    let mut dead: Vec<(String, String, String, String)> = dead
        .iter()
        .map(|r| {
            let h = |n: &str| String::from_utf8(r.header(n).unwrap().to_vec()).unwrap();
            (
                r.value_str().unwrap().to_owned(),
                h("eventline.dlq.offset"),
                h("eventline.dlq.attempts"),
                h("eventline.dlq.error"),
            )
        })
        .collect();
    dead.sort();
    assert_eq!(dead[0], ("bad".into(), "2".into(), "1".into(), "not a valid event".into()));
    assert_eq!(dead[1], ("down".into(), "3".into(), "3".into(), "receiver down".into()));
    for r in log.fetch("orders.dlq", 0, 0, 10).await.unwrap() {
        assert_eq!(r.header("eventline.dlq.topic"), Some(&b"orders"[..]));
        assert_eq!(r.header("eventline.dlq.partition"), Some(&b"0"[..]));
        assert_eq!(r.header("eventline.dlq.group"), Some(&b"svc"[..]));
    }
    assert_eq!(log.committed("svc", "orders", 0).await.unwrap(), Some(5), "everything handled is committed");
}

#[tokio::test]
async fn deferred_records_are_committed_only_once_flushed() {
    let (_dir, log) = log_with("lake", 1, &["ok", "later", "ok"]).await;
    let runtime = ConsumerRuntime::new(log.clone(), config("lake-svc", "lake"));
    let script = Script::default();
    let seen = script.seen.clone();
    let (stop, stopped) = watch::channel(false);
    let flushed = script.flushed.clone();
    let ready = script.flush_ready.clone();
    let run = tokio::spawn(async move { runtime.run(script, stopped).await });
    while seen.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.committed("lake-svc", "lake", 0).await.unwrap(), Some(1), "not past the deferred record");
    *ready.lock().unwrap() = true;
    log.produce("lake", vec![ProduceRecord::new(Some("k"), "ok")], Acks::All).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while log.committed("lake-svc", "lake", 0).await.unwrap() != Some(4) {
        assert!(tokio::time::Instant::now() < deadline, "flushed work is committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(*flushed.lock().unwrap() >= 1);
    let _ = stop.send(true);
    run.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stop_flushes_deferred_work_and_commits_it() {
    let (_dir, log) = log_with("lake2", 1, &["later", "later"]).await;
    let runtime = ConsumerRuntime::new(log.clone(), config("lake-svc", "lake2"));
    let script = Script::default();
    let (seen, flushed) = (script.seen.clone(), script.flushed.clone());
    run_until(&runtime, script, move || seen.lock().unwrap().len() >= 2).await.unwrap();
    assert_eq!(*flushed.lock().unwrap(), 1, "one forced flush at the stop");
    assert_eq!(log.committed("lake-svc", "lake2", 0).await.unwrap(), Some(2));
}

struct Broken;

#[async_trait]
impl Handler for Broken {
    async fn handle(&mut self, _: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        Err(HandlerError::new("database is gone"))
    }
}

#[tokio::test]
async fn a_failing_batch_stops_the_runtime_without_committing_it() {
    let (_dir, log) = log_with("t", 1, &["a", "b"]).await;
    let runtime = ConsumerRuntime::new(log.clone(), config("g", "t"));
    let (_stop, stopped) = watch::channel(false);
    let err = runtime.run(Broken, stopped).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Handler { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains("group g") && err.to_string().contains("database is gone"), "{err}");
    assert_eq!(log.committed("g", "t", 0).await.unwrap(), None, "nothing of the failed batch is committed");
}

/// Replays from a position chosen when partitions are assigned.
#[derive(Clone, Default)]
struct Replayer {
    assigned: Arc<Mutex<Vec<(String, u32)>>>,
    revoked: Arc<Mutex<Vec<(String, u32)>>>,
    seen: Arc<Mutex<Vec<(u32, u64)>>>,
}

#[async_trait]
impl Handler for Replayer {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        self.seen.lock().unwrap().extend(records.iter().map(|r| (r.partition, r.offset)));
        Ok(vec![Outcome::Done; records.len()])
    }

    async fn on_assign(&mut self, partitions: &[(String, u32)]) -> Result<Vec<(String, u32, u64)>, HandlerError> {
        self.assigned.lock().unwrap().extend(partitions.iter().cloned());
        Ok(partitions.iter().map(|(t, p)| (t.clone(), *p, 2)).collect())
    }

    async fn on_revoke(&mut self, partitions: &[(String, u32)]) {
        self.revoked.lock().unwrap().extend(partitions.iter().cloned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_moving_are_reported_and_assignments_may_seek() {
    let values: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let (_dir, log) = log_with("moves", 2, &refs).await;
    let a = Replayer::default();
    let (stop, stopped) = watch::channel(false);
    let runtime_a = ConsumerRuntime::new(log.clone(), config("movers", "moves"));
    let handler_a = a.clone();
    let run_a = tokio::spawn(async move { runtime_a.run(handler_a, stopped).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while a.assigned.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first: Vec<(u32, u64)> = a.seen.lock().unwrap().clone();
    assert!(first.iter().all(|(_, o)| *o >= 2), "started at the position on_assign chose: {first:?}");
    // A second member takes one partition: A is told it was revoked.
    let b = Replayer::default();
    let (stop_b, stopped_b) = watch::channel(false);
    let runtime_b = ConsumerRuntime::new(log.clone(), config("movers", "moves"));
    let handler_b = b.clone();
    let run_b = tokio::spawn(async move { runtime_b.run(handler_b, stopped_b).await });
    while a.revoked.lock().unwrap().is_empty() || b.assigned.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(5), "the move is reported");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*a.revoked.lock().unwrap(), *b.assigned.lock().unwrap());
    let _ = (stop.send(true), stop_b.send(true));
    run_a.await.unwrap().unwrap();
    run_b.await.unwrap().unwrap();
}
