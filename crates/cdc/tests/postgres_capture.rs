//! PostgreSQL capture against a real PostgreSQL (logical replication) and the real embedded log.
//!
//! Needs `EVENTLINE_TEST_PG_URL` (a role with LOGIN REPLICATION CREATEDB): run
//! `scripts/services/postgres.sh start` and load `scripts/services/.env` (scripts/test.sh does
//! both). Each test works in a database of its own, created and dropped by the test, with its own
//! slot and publication names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventline_cdc::CdcError;
use eventline_cdc::postgres::{PgCapture, PgOptions};
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use eventline_model::topics::{BUILTIN_TOPICS, TopicSpec};
use serde_json::{Value, json};
use tokio::sync::{RwLock, watch};
use tokio_postgres::{Client, NoTls};

/// Tests take it shared; the PostgreSQL restart test takes it exclusively.
static SERVER: RwLock<()> = RwLock::const_new(());
/// The error a capture task ended with (reported by `wait_for`).
static CAPTURE_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn base_url() -> String {
    std::env::var("EVENTLINE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "EVENTLINE_TEST_PG_URL is not set: run `scripts/services/postgres.sh start`, then \
             `set -a; . scripts/services/.env; set +a` (scripts/test.sh does both)"
        )
    })
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

struct TestDb {
    name: String,
    url: String,
    _dir: tempfile::TempDir,
    log: Arc<dyn EventLog>,
}

impl TestDb {
    async fn new(tag: &str) -> Self {
        let base = base_url();
        let admin = connect(&base).await;
        let name = format!("evl_{tag}_{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{name}");
        // The application's schema; capture reads it and does not create it.
        eventline_platform::store::postgres::migrate(&mut connect(&url).await).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(&dir.path().join("log")).await;
        Self { name, url, _dir: dir, log }
    }

    fn options(&self) -> PgOptions {
        PgOptions {
            slot: format!("{}_slot", self.name),
            publication: format!("{}_pub", self.name),
            heartbeat_interval: Duration::from_millis(500),
            status_interval: Duration::from_millis(100),
            ..PgOptions::default()
        }
    }

    async fn open(&self) -> PgCapture {
        PgCapture::open_with(
            &self.url,
            self.options(),
            eventline_pipeline::Pipeline::new(self.log.clone(), None, "test"),
        )
        .await
        .unwrap()
    }

    async fn sql(&self) -> Client {
        connect(&self.url).await
    }

    /// Drops the slot (it lives in the cluster, not the database) and the database.
    async fn drop(self) {
        let admin = connect(&base_url()).await;
        let slot = self.options().slot;
        for _ in 0..50 {
            let r = admin
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await;
            if r.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.unwrap();
    }
}

async fn open_log(dir: &std::path::Path) -> Arc<dyn EventLog> {
    let log = EmbeddedLog::open(dir, EmbeddedOptions::default()).unwrap();
    for (name, key) in BUILTIN_TOPICS {
        let mut spec = TopicSpec::new(name);
        spec.key_pointer = Some(key.to_string());
        let _ = log.create_topic(&spec).await;
    }
    Arc::new(log)
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<(PgCapture, Result<(), CdcError>)>,
}

/// Waits until the capture streams from its slot (snapshot taken, replication session active):
/// changes committed from then on are streamed.
async fn streaming(db: &TestDb) {
    let admin = connect(&base_url()).await;
    let slot = db.options().slot;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let active = eventline_cdc::postgres::setup::slot_is_streaming(&admin, &slot).await.unwrap();
        if active {
            return;
        }
        if let Some(e) = CAPTURE_ERROR.lock().unwrap().take() {
            panic!("capture ended: {e}");
        }
        assert!(Instant::now() < deadline, "capture did not start streaming within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start(mut cap: PgCapture) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let r = cap.run(rx).await;
        if let Err(e) = &r {
            *CAPTURE_ERROR.lock().unwrap() = Some(e.to_string());
        }
        (cap, r)
    });
    Running { stop, task }
}

impl Running {
    async fn stop(self) -> PgCapture {
        self.stop.send(true).unwrap();
        let (cap, r) = tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("capture stops").unwrap();
        r.unwrap();
        cap
    }
}

/// Every record of a topic, partition by partition, in log order: (event, headers).
async fn records(log: &dyn EventLog, topic: &str) -> Vec<(Value, HashMap<String, String>)> {
    let mut out = Vec::new();
    for p in 0..3 {
        let (_, end) = log.watermarks(topic, p).await.unwrap();
        let mut at = 0;
        while at < end {
            let batch = log.fetch(topic, p, at, 5000).await.unwrap();
            for r in &batch {
                let headers = r
                    .headers
                    .iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.as_ref().unwrap()).into_owned()))
                    .collect();
                out.push((serde_json::from_slice::<Value>(r.value.as_ref().unwrap()).unwrap(), headers));
            }
            at = batch.last().unwrap().offset + 1;
        }
    }
    out
}

async fn events(log: &dyn EventLog, topic: &str) -> Vec<Value> {
    records(log, topic).await.into_iter().map(|(v, _)| v).collect()
}

/// Waits until an event satisfies `done`, then returns the topic's events.
async fn wait_for(log: &dyn EventLog, topic: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let evs = events(log, topic).await;
        if evs.iter().any(&done) {
            return evs;
        }
        assert!(Instant::now() < deadline, "no matching event on {topic} within 60 s; have {evs:#?}");
        if let Some(task) = CAPTURE_ERROR.lock().unwrap().take() {
            panic!("capture ended: {task}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn of_key<'a>(evs: &'a [Value], col: &str, key: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["data"][col] == key).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_update_delete_and_rollback_give_the_right_events() {
    let _shared = SERVER.read().await;
    let db = TestDb::new("iud").await;
    let run = start(db.open().await);
    streaming(&db).await;
    let sql = db.sql().await;
    // One transaction per statement (a multi-statement simple query would be one transaction).
    for stmt in [
        r#"INSERT INTO "Users" ("UserId", "Email", "Name", "CreatedAt", "UpdatedAt")
             VALUES ('u1', 'a@example.com', 'Ann', '2026-01-02 03:04:05.123456+00', '2026-01-02 03:04:05.123456+00')"#,
        r#"UPDATE "Users" SET "Email" = 'b@example.com', "UpdatedAt" = '2026-02-01 00:00:00+00' WHERE "UserId" = 'u1'"#,
        r#"BEGIN; INSERT INTO "Users" ("UserId", "Email") VALUES ('u2', 'rolled@example.com'); ROLLBACK"#,
        r#"DELETE FROM "Users" WHERE "UserId" = 'u1'"#,
        r#"INSERT INTO conversations (conversation_id, user_id, doc) VALUES ('c1', 'u1', '{"turns": [{"q": "hi", "n": 1.5}]}')"#,
        r#"INSERT INTO "Users" ("UserId", "Email") VALUES ('end', 'end@example.com')"#,
    ] {
        sql.batch_execute(stmt).await.unwrap();
    }
    let evs = wait_for(&*db.log, "db.changes.users", |e| e["data"]["UserId"] == "end").await;
    let u1 = of_key(&evs, "UserId", "u1");
    assert_eq!(u1.len(), 3, "INSERT, UPDATE, DELETE of u1: {u1:#?}");
    assert_eq!(u1[0]["event_type"], "INSERT");
    assert_eq!(u1[0]["table"], "Users");
    assert_eq!(u1[0]["data"]["Email"], "a@example.com");
    assert_eq!(u1[0]["data"]["Phone"], Value::Null);
    assert_eq!(u1[0]["data"]["CreatedAt"], "2026-01-02T03:04:05.123456Z", "timestamptz as RFC 3339 UTC");
    assert!(u1[0].get("before").is_none_or(Value::is_null));
    assert_eq!(u1[1]["event_type"], "UPDATE");
    assert_eq!(u1[1]["data"]["Email"], "b@example.com");
    assert_eq!(u1[1]["before"], json!({"Email": "a@example.com", "UpdatedAt": "2026-01-02T03:04:05.123456Z"}));
    assert_eq!(u1[2]["event_type"], "DELETE");
    assert_eq!(u1[2]["data"], json!({"UserId": "u1"}));
    assert_eq!(u1[2]["before"]["Email"], "b@example.com");
    assert!(of_key(&evs, "UserId", "u2").is_empty(), "a rolled-back transaction gives no event");
    // All three events of one key carry the commit time as `timestamp` and unique message ids.
    let ids: HashSet<&str> = evs.iter().map(|e| e["_metadata"]["message_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), evs.len());

    let convs = wait_for(&*db.log, "db.changes.conversations", |e| e["data"]["conversation_id"] == "c1").await;
    assert_eq!(convs[0]["data"]["doc"], json!({"turns": [{"q": "hi", "n": 1.5}]}), "jsonb is JSON, not a string");
    assert_eq!(convs[0]["key"], Value::Null);

    let recs = records(&*db.log, "db.changes.users").await;
    let (_, headers) = recs.iter().find(|(e, _)| e["data"]["UserId"] == "end").unwrap();
    assert!(headers.contains_key("eventline.cdc.lsn") && headers.contains_key("eventline.cdc.index"));
    let cap = run.stop().await;
    let status = cap.status().await.unwrap();
    let slot = status.slot_row.expect("slot exists");
    assert_eq!(slot.wal_status.as_deref(), Some("reserved"));
    assert!(slot.confirmed_flush_lsn.is_some());
    assert!(status.snapshot_done);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_toast_value_survives_an_update_of_another_column() {
    let _shared = SERVER.read().await;
    let db = TestDb::new("toast").await;
    let run = start(db.open().await);
    streaming(&db).await;
    let sql = db.sql().await;
    // md5 text does not compress: 102,400 bytes stored out of line (TOAST).
    sql.batch_execute(
        "INSERT INTO conversations (conversation_id, user_id, doc)
           SELECT 'big', 'u1', jsonb_build_object('turns', jsonb_build_array(string_agg(md5(i::text), '')))
             FROM generate_series(1, 3200) i",
    )
    .await
    .unwrap();
    sql.batch_execute("UPDATE conversations SET user_id = 'u2' WHERE conversation_id = 'big'").await.unwrap();
    let stored: i32 = sql
        .query_one("SELECT pg_column_size(doc) FROM conversations WHERE conversation_id = 'big'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(stored > 100_000, "the document is stored uncompressed out of line ({stored} bytes)");
    let evs = wait_for(&*db.log, "db.changes.conversations", |e| e["event_type"] == "UPDATE").await;
    let update = evs.iter().find(|e| e["event_type"] == "UPDATE").unwrap();
    let text = update["data"]["doc"]["turns"][0].as_str().expect("doc kept, not null");
    assert_eq!(text.len(), 102_400);
    assert_eq!(update["data"]["user_id"], "u2");
    assert_eq!(update["before"], json!({"user_id": "u1"}), "only the changed column in before");
    run.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_with_psql_is_captured() {
    let _shared = SERVER.read().await;
    let db = TestDb::new("psql").await;
    let run = start(db.open().await);
    streaming(&db).await;
    let out = tokio::process::Command::new("psql")
        .arg(&db.url)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(r#"INSERT INTO "Users" ("UserId", "Email", "Name") VALUES ('from-psql', 'p@example.com', 'Psql')"#)
        .output()
        .await
        .expect("psql is installed (scripts/services/postgres.sh installs it)");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    let evs = wait_for(&*db.log, "db.changes.users", |e| e["data"]["UserId"] == "from-psql").await;
    assert_eq!(evs[0]["event_type"], "INSERT");
    assert_eq!(evs[0]["data"]["Name"], "Psql");
    run.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_existing_rows_hands_off_to_the_stream_without_gap_or_duplicate() {
    let _shared = SERVER.read().await;
    let db = TestDb::new("snap").await;
    // Tables and 300 rows before capture ever ran.
    let mut sql = db.sql().await;
    eventline_platform::store::postgres::migrate(&mut sql).await.unwrap();
    sql.batch_execute(
        r#"INSERT INTO "Users" ("UserId", "Email", "Name") SELECT 'u' || i, 'u' || i || '@example.com', '0' FROM generate_series(0, 299) i"#,
    )
    .await
    .unwrap();
    // A writer keeps updating while capture opens, snapshots and starts streaming.
    let writer = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let sql = connect(&url).await;
            let mut committed = Vec::new();
            for n in 1..=3000u32 {
                let user = format!("u{}", (n * 7919) % 300);
                sql.execute(r#"UPDATE "Users" SET "Name" = $2 WHERE "UserId" = $1"#, &[&user, &n.to_string()])
                    .await
                    .unwrap();
                committed.push((user, n));
                if n % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            committed
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let run = start(db.open().await);
    let committed = writer.await.unwrap();
    sql.batch_execute(r#"INSERT INTO "Users" ("UserId", "Email") VALUES ('end', 'e@example.com')"#).await.unwrap();
    wait_for(&*db.log, "db.changes.users", |e| e["data"]["UserId"] == "end").await;
    let recs = records(&*db.log, "db.changes.users").await;

    let mut per_key: HashMap<String, Vec<(String, u32)>> = HashMap::new();
    for (e, headers) in &recs {
        let key = e["data"]["UserId"].as_str().unwrap().to_owned();
        if key == "end" {
            continue;
        }
        let kind = e["event_type"].as_str().unwrap().to_owned();
        assert_eq!(headers.contains_key("eventline.cdc.snapshot"), kind == "SNAPSHOT");
        per_key.entry(key).or_default().push((kind, e["data"]["Name"].as_str().unwrap().parse().unwrap()));
    }
    assert_eq!(per_key.len(), 300, "every pre-existing row is captured");
    let snapshotted: usize = per_key.values().map(|v| v.iter().filter(|(k, _)| k == "SNAPSHOT").count()).sum();
    assert_eq!(snapshotted, 300, "each pre-existing row exactly once as SNAPSHOT");
    for (key, seen) in &per_key {
        assert_eq!(seen[0].0, "SNAPSHOT", "{key}: the snapshot comes first");
        let at_snapshot = seen[0].1;
        let expected: Vec<u32> =
            committed.iter().filter(|(k, n)| k == key && *n > at_snapshot).map(|(_, n)| *n).collect();
        let streamed: Vec<u32> = seen[1..]
            .iter()
            .map(|(kind, n)| {
                assert_eq!(kind, "UPDATE");
                *n
            })
            .collect();
        assert_eq!(streamed, expected, "{key}: every update after the snapshot exactly once, in order");
    }
    let cap = run.stop().await;
    assert_eq!(cap.lag().snapshot_rows, 300);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_capture_resumes_without_loss_or_duplicates_and_a_lost_slot_is_reported() {
    let _shared = SERVER.read().await;
    let db = TestDb::new("resume").await;
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let run = start(
        PgCapture::open_with(&db.url, db.options(), eventline_pipeline::Pipeline::new(log.clone(), None, "test"))
            .await
            .unwrap(),
    );
    let sql = db.sql().await;
    for i in 0..50 {
        sql.execute(r#"INSERT INTO "Users" ("UserId", "Email") VALUES ($1, 'x@example.com')"#, &[&format!("a{i}")])
            .await
            .unwrap();
    }
    wait_for(&*log, "db.changes.users", |e| e["data"]["UserId"] == "a49").await;
    // Abort without the clean stop: the last positions may not be confirmed to the server.
    run.task.abort();
    let _ = run.task.await;
    drop(log);
    for i in 0..50 {
        sql.execute(r#"INSERT INTO "Users" ("UserId", "Email") VALUES ($1, 'x@example.com')"#, &[&format!("b{i}")])
            .await
            .unwrap();
    }
    // A new process: a fresh log handle on the same directory (once the aborted capture's
    // append task has let go of it), a fresh capture.
    let mut reopened = None;
    for _ in 0..100 {
        match EmbeddedLog::open(dir.path(), EmbeddedOptions::default()) {
            Ok(l) => {
                reopened = Some(l);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let log: Arc<dyn EventLog> = Arc::new(reopened.expect("the log is released"));
    let cap = PgCapture::open_with(&db.url, db.options(), eventline_pipeline::Pipeline::new(log.clone(), None, "test"))
        .await
        .unwrap();
    assert!(!cap.snapshot_pending(), "the snapshot is not redone");
    let run = start(cap);
    let evs = wait_for(&*log, "db.changes.users", |e| e["data"]["UserId"] == "b49").await;
    assert_eq!(evs.len(), 100, "each change exactly once");
    let cap = run.stop().await;
    let lag = cap.lag();
    assert_eq!(lag.time_ms, 0);
    drop(cap);

    // Someone drops the slot: capture refuses with the re-snapshot command, which then works.
    let admin = connect(&base_url()).await;
    admin.execute("SELECT pg_drop_replication_slot($1)", &[&db.options().slot]).await.unwrap();
    let err = PgCapture::open_with(&db.url, db.options(), eventline_pipeline::Pipeline::new(log.clone(), None, "test"))
        .await
        .unwrap_err();
    assert!(matches!(err, CdcError::SlotLost { .. }), "{err}");
    assert!(err.to_string().contains("--resnapshot"), "{err}");
    let cap = PgCapture::open_with(
        &db.url,
        PgOptions { resnapshot: true, ..db.options() },
        eventline_pipeline::Pipeline::new(log.clone(), None, "test"),
    )
    .await
    .unwrap();
    assert!(cap.snapshot_pending());
    let run = start(cap);
    let deadline = Instant::now() + Duration::from_secs(30);
    while events(&*log, "db.changes.users").await.iter().filter(|e| e["event_type"] == "SNAPSHOT").count() < 100 {
        assert!(Instant::now() < deadline, "re-snapshot did not publish the 100 rows");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_replica_identity_full_is_refused_by_name() {
    let _shared = SERVER.read().await;
    let db = TestDb::new("ident").await;
    let mut sql = db.sql().await;
    eventline_platform::store::postgres::migrate(&mut sql).await.unwrap();
    sql.batch_execute("ALTER TABLE conversations REPLICA IDENTITY DEFAULT").await.unwrap();
    let err =
        PgCapture::open_with(&db.url, db.options(), eventline_pipeline::Pipeline::new(db.log.clone(), None, "test"))
            .await
            .unwrap_err();
    assert!(matches!(&err, CdcError::ReplicaIdentity { table, .. } if table == "conversations"), "{err}");
    assert!(err.to_string().contains("ALTER TABLE \"conversations\" REPLICA IDENTITY FULL"), "{err}");
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_stream_capture_resumes() {
    let _exclusive = SERVER.write().await;
    let db = TestDb::new("pgrestart").await;
    let run = start(db.open().await);
    streaming(&db).await;
    let writer = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let mut sql = None;
            let mut i = 0;
            while i < 400 {
                if sql.as_ref().is_none_or(|c: &Client| c.is_closed()) {
                    sql = tokio_postgres::connect(&url, NoTls).await.ok().map(|(c, conn)| {
                        tokio::spawn(conn);
                        c
                    });
                }
                let Some(c) = &sql else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let r = c
                    .execute(
                        r#"INSERT INTO "Users" ("UserId", "Email") VALUES ($1, 'r@example.com') ON CONFLICT DO NOTHING"#,
                        &[&format!("r{i}")],
                    )
                    .await;
                if r.is_ok() {
                    i += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let script = &format!("{}/../../scripts/services/postgres.sh", std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = tokio::process::Command::new("bash").arg(script).arg("restart").output().await.unwrap();
    assert!(out.status.success(), "restart: {}", String::from_utf8_lossy(&out.stderr));
    writer.await.unwrap();
    let evs = wait_for(&*db.log, "db.changes.users", |e| e["data"]["UserId"] == "r399").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut evs = evs;
    while evs.len() < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        evs = events(&*db.log, "db.changes.users").await;
    }
    let keys: HashSet<&str> = evs.iter().map(|e| e["data"]["UserId"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 400, "every committed row is captured across the restart");
    assert_eq!(evs.len(), 400, "and none twice");
    run.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_measures_latency_throughput_and_the_pg_recvlogical_reference() {
    let _shared = SERVER.read().await;
    let scale = |var: &str, default: u64| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let settings = eventline_cdc::postgres::bench::BenchSettings {
        rate: 1000,
        latency_for: Duration::from_secs(scale("EVENTLINE_TEST_PG_BENCH_SECS", 2)),
        bulk_rows: scale("EVENTLINE_TEST_PG_BENCH_ROWS", 20_000),
        txn_rows: 1000,
        writers: 4,
    };
    let dir = tempfile::tempdir().unwrap();
    let lat = open_log(&dir.path().join("lat")).await;
    let bulk = open_log(&dir.path().join("bulk")).await;
    let say = |line: String| eprintln!("{line}");
    let f = eventline_cdc::postgres::bench::run(&base_url(), &settings, lat, bulk, &say).await.unwrap();
    eprintln!("{}", serde_json::to_string(&f).unwrap());
    assert_eq!(f.commits as u64, 1000 * settings.latency_for.as_secs());
    assert!(f.p50_ms > 0.0 && f.p50_ms <= f.p99_ms);
    assert!(f.changes_per_s > 0.0);
    assert!(f.recvlogical_changes_per_s.is_some(), "pg_recvlogical ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_refuses_a_database_without_the_tables_and_creates_none() {
    let base = base_url();
    let admin = connect(&base).await;
    let name = format!("evl_bare_{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&dir.path().join("log")).await;
    let options =
        PgOptions { slot: format!("{name}_slot"), publication: format!("{name}_pub"), ..PgOptions::default() };
    let err =
        PgCapture::open_with(&url, options, eventline_pipeline::Pipeline::new(log, None, "test")).await.unwrap_err();
    assert!(matches!(err, CdcError::Config(_)), "{err}");
    assert!(err.to_string().contains("`Users`"), "{err}");
    let tables: i64 = connect(&url)
        .await
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "capture created nothing in the application's database");
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_over_tls_checks_the_servers_certificate() {
    let _shared = SERVER.read().await;
    let ca = std::env::var("EVENTLINE_TEST_PG_CA")
        .expect("EVENTLINE_TEST_PG_CA is not set: run scripts/services/postgres.sh start (scripts/test.sh does)");
    let db = TestDb::new("tls").await;
    let tls_url = format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url);
    let mut cap =
        PgCapture::open_with(&tls_url, db.options(), eventline_pipeline::Pipeline::new(db.log.clone(), None, "test"))
            .await
            .unwrap();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let r = cap.run(rx).await;
        if let Err(e) = &r {
            *CAPTURE_ERROR.lock().unwrap() = Some(e.to_string());
        }
        r
    });
    streaming(&db).await;
    db.sql()
        .await
        .batch_execute(r#"INSERT INTO "Users" ("UserId", "Email", "Name") VALUES ('over-tls', 't@example.com', 'Tls')"#)
        .await
        .unwrap();
    let evs = wait_for(&*db.log, "db.changes.users", |e| e["data"]["UserId"] == "over-tls").await;
    assert_eq!(evs[0]["event_type"], "INSERT");
    // The replication session and the SQL session of capture are both encrypted.
    let admin = connect(&base_url()).await;
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name LIKE 'eventline-cdc%'",
            &[],
        )
        .await
        .unwrap();
    let (encrypted, all): (i64, i64) = (row.get(0), row.get(1));
    assert!(all >= 1 && encrypted == all, "{encrypted} of {all} capture sessions encrypted");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), task).await.unwrap().unwrap().unwrap();
    // A certificate the given CA did not sign is refused; so is verify-full without a CA.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other", "-keyout"])
        .arg(dir.path().join("k.pem"))
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let wrong = format!("{}?sslmode=verify-full&sslrootcert={}", db.url, other.display());
    let err =
        PgCapture::open_with(&wrong, db.options(), eventline_pipeline::Pipeline::new(db.log.clone(), None, "test"))
            .await
            .expect_err("an unknown certificate is refused");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    let err = PgCapture::open_with(
        &format!("{}?sslmode=verify-full", db.url),
        db.options(),
        eventline_pipeline::Pipeline::new(db.log.clone(), None, "test"),
    )
    .await
    .expect_err("verify-full needs a CA");
    assert!(err.to_string().contains("sslrootcert"), "{err}");
    db.drop().await;
}
