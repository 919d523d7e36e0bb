//! The audit trail against a real embedded log and a real SQLite database: the service appends
//! each record once, the chain verifies, and every kind of tampering done with the `sqlite3` CLI
//! (installed by scripts/services/receivers.sh) is found and the first bad record named.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, ProduceRecord, Record};
use eventline_model::topics::{
    AGENT_EXECUTIONS, Acks, COMPLIANCE_ALERTS, DB_CHANGES_USERS, SECURITY_EVENTS, TopicSpec, builtin_specs,
};
use eventline_platform::db::Database;
use eventline_services::audit::record::describe;
use eventline_services::audit::store::{self, CheckpointPolicy, Query};
use eventline_services::audit::verify::{Report, verify};
use eventline_services::audit::{AUDIT_GROUP, AuditOptions, AuditService, AuditSigner, coverage};
use serde_json::{Value, json};
use tokio::sync::watch;

fn execution(i: u64, user: &str) -> Value {
    json!({
        "execution_id": format!("exe_{i}"), "agent_id": "card_agent",
        "status": if i.is_multiple_of(5) { "failed" } else { "completed" }, "duration_ms": i,
        "input": {"query": "balance?", "user_id": user, "key_id": "elk_0000feed"}, "output": {},
        "timestamp": format!("2026-11-30T10:{:02}:{:02}.000Z", (i / 60) % 60, i % 60),
        "_metadata": {"timestamp": "2026-11-30T10:00:00Z", "message_id": format!("m{i}"), "producer": "eventline"}
    })
}

fn event_for(topic: &str, i: u64) -> Value {
    match topic {
        DB_CHANGES_USERS => {
            json!({"event_type": "UPDATE", "table": "Users", "data": {"UserId": format!("u-{}", i % 7)},
            "timestamp": "2026-11-30T10:00:00Z", "_metadata": {"producer": "eventline-cdc", "message_id": format!("c{i}"), "timestamp": "2026-11-30T10:00:00Z"}})
        }
        COMPLIANCE_ALERTS => json!({"alert_id": format!("a{i}"), "alert_type": "PII_EXPOSURE", "severity": "HIGH",
            "details": {"component": "card_agent", "field": "/output/message", "action": "REDACTED"},
            "timestamp": "2026-11-30T10:00:00Z", "_metadata": {"producer": "eventline", "message_id": format!("a{i}"), "timestamp": "2026-11-30T10:00:00Z"}}),
        SECURITY_EVENTS => json!({"event_id": format!("s{i}"), "event_type": "auth.failed", "outcome": "failure",
            "component": "gateway", "key_id": null, "method": "GET", "route": "/v1/audit", "status": 401,
            "source_address": "127.0.0.1", "timestamp": "2026-11-30T10:00:00Z",
            "_metadata": {"producer": "eventline", "message_id": format!("s{i}"), "timestamp": "2026-11-30T10:00:00Z"}}),
        _ => execution(i, &format!("u-{}", i % 7)),
    }
}

async fn open_log(dir: &Path) -> Arc<EmbeddedLog> {
    let log = Arc::new(EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default()).unwrap());
    for spec in builtin_specs(&TopicSpec::new("defaults")) {
        log.ensure_topic(&spec).await.unwrap();
    }
    log
}

fn options(dir: &Path) -> AuditOptions {
    AuditOptions {
        checkpoint: CheckpointPolicy { every_records: 100, every: Duration::from_millis(200) },
        retention: None,
        data_dir: dir.to_owned(),
    }
}

async fn count(db: &Database) -> u64 {
    db.read(|c| store::stats(c).unwrap().0).await.unwrap()
}

async fn run_until(service: &AuditService, db: &Database, want: u64) {
    let (stop, stopped) = watch::channel(false);
    let s = service.clone();
    let task = tokio::spawn(async move { s.run(stopped).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(db).await < want {
        assert!(tokio::time::Instant::now() < deadline, "the trail reached only {} of {want}", count(db).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

async fn report(db: &Database, dir: &Path) -> Report {
    let key = eventline_services::audit::signing::public_key_of(dir).unwrap();
    let dir = dir.to_owned();
    db.read(move |c| verify(c, key.as_ref(), &dir)).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_records_each_log_record_once_and_the_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let topics = [DB_CHANGES_USERS, AGENT_EXECUTIONS, COMPLIANCE_ALERTS, SECURITY_EVENTS];
    for (t, topic) in topics.iter().enumerate() {
        let records = (0..75u64)
            .map(|i| ProduceRecord::new(Some(format!("k{i}")), event_for(topic, t as u64 * 100 + i).to_string()))
            .collect();
        log.produce(topic, records, Acks::All).await.unwrap();
    }
    let db = Database::open(&dir.path().join("eventline.db")).unwrap();
    let signer = AuditSigner::load_or_create(dir.path()).unwrap();
    let service = AuditService::new(log.clone(), db.clone(), signer.clone(), options(dir.path()));
    run_until(&service, &db, 300).await;
    assert_eq!(count(&db).await, 300);

    // Redelivery (a crash before the commit, here: a new group reading from the start) adds nothing.
    let again = AuditService::new(log.clone(), db.clone(), signer, options(dir.path())).with_group("audit-replay");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn({
        let again = again.clone();
        async move { again.run(stopped).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(count(&db).await, 300, "records the trail holds are not appended twice");
    assert_eq!(again.counters().duplicates.load(std::sync::atomic::Ordering::Relaxed), 300);

    let r = report(&db, dir.path()).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.records, r.first_seq, r.last_seq), (300, Some(0), Some(299)));
    assert!(r.checkpoints >= 1, "{r:?}");
    assert_eq!(r.last_checkpoint.as_ref().map(|c| c.seq), Some(299), "a clean stop signs the head");

    // Nothing in the log is missing from the trail; a new record is pending until audited.
    let c = coverage::check(&*log, &db, AUDIT_GROUP).await.unwrap();
    assert_eq!((c.checked, c.missing, c.pending), (300, 0, 0), "{c:?}");
    log.produce(
        AGENT_EXECUTIONS,
        vec![ProduceRecord::new(Some("k".to_owned()), execution(999, "u-1").to_string())],
        Acks::All,
    )
    .await
    .unwrap();
    let c = coverage::check(&*log, &db, AUDIT_GROUP).await.unwrap();
    assert_eq!((c.missing, c.pending), (0, 1), "{c:?}");
    // A record removed from the trail is missing against the log.
    db.call(|c| c.execute("DELETE FROM audit_trail WHERE seq = 150", [])).await.unwrap();
    let c = coverage::check(&*log, &db, AUDIT_GROUP).await.unwrap();
    assert_eq!(c.missing, 1, "{c:?}");

    // Who, what, when, outcome, origin, resource of an execution.
    let page = db
        .read(|c| store::query(c, &Query { entity: Some("exe_101".into()), limit: 10, ..Query::default() }))
        .await
        .unwrap()
        .unwrap();
    let rec = &page.records[0].record;
    assert_eq!(page.records.len(), 1);
    assert_eq!(rec["who"], json!({"user_id": "u-3", "key_id": "elk_0000feed", "component": "card_agent"}));
    assert_eq!(rec["what"]["action"], "card_agent.execute");
    assert_eq!(rec["outcome"], "success");
    assert_eq!(rec["resource"], json!({"type": "execution", "id": "exe_101"}));
    assert_eq!(rec["event"]["execution_id"], "exe_101", "the event itself is in the record");
}

/// A trail of `n` records written straight to the store, signed at the end.
fn trail(dir: &Path, n: u64) -> std::path::PathBuf {
    let path = dir.join("eventline.db");
    let db = Database::open(&path).unwrap();
    let signer = AuditSigner::load_or_create(dir).unwrap();
    let entries: Vec<_> = (0..n)
        .map(|i| {
            describe(&Record {
                topic: AGENT_EXECUTIONS.into(),
                partition: (i % 3) as u32,
                offset: i,
                timestamp: 1_796_100_000_000 + i as i64,
                key: None,
                value: Some(Bytes::from(execution(i, &format!("u-{}", i % 4)).to_string())),
                headers: Vec::new(),
            })
        })
        .collect();
    let policy = CheckpointPolicy { every_records: 1_000_000, every: Duration::from_secs(3600) };
    db.call_blocking(|c| {
        store::append(c, &entries, &signer, policy, dir).unwrap();
        store::checkpoint_now(c, &signer, dir).unwrap();
    });
    path
}

fn sqlite3(db: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 CLI runs (scripts/services/receivers.sh installs it: apt-get install sqlite3)");
    assert!(out.status.success(), "sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn first_bad_after(sql: &str) -> (u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = trail(dir.path(), 50);
    let db = Database::open(&path).unwrap();
    assert!(report(&db, dir.path()).await.ok, "intact before");
    sqlite3(&path, sql);
    let r = report(&db, dir.path()).await;
    assert!(!r.ok, "{sql}: not found");
    let bad = r.first_bad.unwrap();
    (bad.seq, bad.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_the_sqlite3_cli_is_found_and_the_first_bad_record_named() {
    // Edit a field of the hashed record.
    let (seq, why) = first_bad_after(
        r#"UPDATE audit_trail SET record = replace(record, '"status":"completed"', '"status":"failed"') WHERE seq = 17"#,
    )
    .await;
    assert_eq!(seq, 17, "{why}");
    assert!(why.contains("altered"), "{why}");
    // Edit a column only (the record still hashes right).
    let (seq, why) = first_bad_after("UPDATE audit_trail SET outcome = 'failure' WHERE seq = 21").await;
    assert_eq!(seq, 21, "{why}");
    assert!(why.contains("column"), "{why}");
    // Delete a row.
    let (seq, why) = first_bad_after("DELETE FROM audit_trail WHERE seq = 23").await;
    assert_eq!(seq, 24, "{why}");
    assert!(why.contains("missing"), "{why}");
    // Swap two rows (their contents change places).
    let (seq, why) = first_bad_after(
        "UPDATE audit_trail SET seq = -1 WHERE seq = 30; UPDATE audit_trail SET seq = 30 WHERE seq = 31; \
         UPDATE audit_trail SET seq = 31 WHERE seq = -1;",
    )
    .await;
    assert_eq!(seq, 30, "{why}");
    // Insert one in the middle (renumbering the rest).
    let (seq, why) = first_bad_after(
        "UPDATE audit_trail SET seq = -seq - 1 WHERE seq >= 25; UPDATE audit_trail SET seq = -seq WHERE seq < 0; \
         INSERT INTO audit_trail (seq, topic, partition, \"offset\", event_time, actor, subject, resource, action, outcome, record, prev_hash, hash) \
         SELECT 25, topic, partition, \"offset\" + 1000, event_time, actor, subject, resource, action, outcome, record, prev_hash, hash \
         FROM audit_trail WHERE seq = 24;",
    )
    .await;
    assert_eq!(seq, 25, "{why}");
    // Insert one at the end.
    let (seq, _) = first_bad_after(
        "INSERT INTO audit_trail (seq, topic, partition, \"offset\", event_time, actor, subject, resource, action, outcome, record, prev_hash, hash) \
         SELECT 50, topic, partition, \"offset\" + 1000, event_time, actor, subject, resource, action, outcome, record, prev_hash, hash \
         FROM audit_trail WHERE seq = 10;",
    )
    .await;
    assert_eq!(seq, 50);
    // Cut the tail: the signed head is beyond the last record.
    let (seq, why) = first_bad_after("DELETE FROM audit_trail WHERE seq >= 45").await;
    assert_eq!(seq, 45, "{why}");
    assert!(why.contains("cut off"), "{why}");
    // Cut the tail and the checkpoints: the head file outside the database still knows.
    let (seq, why) = first_bad_after("DELETE FROM audit_trail WHERE seq >= 40; DELETE FROM audit_checkpoints;").await;
    assert_eq!(seq, 40, "{why}");
    assert!(why.contains("audit-head.json"), "{why}");
    // A checkpoint moved to another record no longer verifies.
    let (_, why) = first_bad_after("UPDATE audit_checkpoints SET seq = 10").await;
    assert!(why.contains("signature"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trail_rewritten_from_some_record_on_fails_against_the_signed_head() {
    // Someone who can write the database recomputes every hash after an edit: the links hold,
    // but the signed checkpoint of the head does not match any more.
    let dir = tempfile::tempdir().unwrap();
    let path = trail(dir.path(), 20);
    let db = Database::open(&path).unwrap();
    db.call_blocking(|c| {
        let rows: Vec<(i64, String)> = c
            .prepare("SELECT seq, record FROM audit_trail ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut prev = [0u8; 32];
        for (seq, record) in rows {
            let record = if seq == 6 { record.replace("\"completed\"", "\"failed\"") } else { record };
            let hash = eventline_services::audit::chain::link_hash(&prev, seq as u64, record.as_bytes());
            c.execute(
                "UPDATE audit_trail SET record = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
                rusqlite::params![
                    seq,
                    record,
                    eventline_services::audit::chain::hex(&prev),
                    eventline_services::audit::chain::hex(&hash)
                ],
            )
            .unwrap();
            prev = hash;
        }
    });
    let r = report(&db, dir.path()).await;
    assert!(!r.ok);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 19, "{bad:?}");
    assert!(bad.reason.contains("checkpoint"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_the_oldest_records_and_the_rest_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail(dir.path(), 40);
    let db = Database::open(&path).unwrap();
    let signer = AuditSigner::load_or_create(dir.path()).unwrap();
    // Executions i have event times 10:00:00 + i s; keep those at or after 10:00:25.
    let removed = db.call_blocking(|c| store::prune_before(c, &signer, "2026-11-30T10:00:25.000Z")).unwrap();
    assert_eq!(removed, 25);
    let r = report(&db, dir.path()).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.records, r.first_seq), (15, Some(25)));
    // New records continue the chain after pruning.
    let policy = CheckpointPolicy::default();
    let more = vec![describe(&Record {
        topic: AGENT_EXECUTIONS.into(),
        partition: 0,
        offset: 1000,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from(execution(1000, "u-9").to_string())),
        headers: Vec::new(),
    })];
    db.call_blocking(|c| store::append(c, &more, &signer, policy, dir.path())).unwrap();
    assert!(report(&db, dir.path()).await.ok);
    // Removing the first retained record is still found.
    sqlite3(&path, "DELETE FROM audit_trail WHERE seq = 25");
    assert_eq!(report(&db, dir.path()).await.first_bad.unwrap().seq, 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_filters_by_entity_topic_and_time_and_pages_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail(dir.path(), 40);
    let db = Database::open(&path).unwrap();
    let run = |q: Query| db.call_blocking(|c| store::query(c, &q)).unwrap();
    // u-1 is the subject of executions 1, 5, 9, … (10 of them).
    let all = run(Query { entity: Some("u-1".into()), limit: 100, ..Query::default() });
    assert_eq!(all.records.len(), 10);
    assert!(all.records.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let first = run(Query { entity: Some("u-1".into()), limit: 4, oldest_first: true, ..Query::default() });
    assert_eq!(first.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 5, 9, 13]);
    let cursor = first.next_cursor.unwrap().parse().unwrap();
    let second = run(Query {
        entity: Some("u-1".into()),
        limit: 4,
        oldest_first: true,
        cursor: Some(cursor),
        ..Query::default()
    });
    assert_eq!(second.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [17, 21, 25, 29]);
    let by_time = run(Query {
        since: Some("2026-11-30T10:00:10.000Z".into()),
        until: Some("2026-11-30T10:00:20.000Z".into()),
        limit: 100,
        ..Query::default()
    });
    assert_eq!(by_time.records.len(), 10);
    assert_eq!(by_time.next_cursor, None);
    let by_key = run(Query { entity: Some("elk_0000feed".into()), limit: 100, ..Query::default() });
    assert_eq!(by_key.records.len(), 40, "the key that acted");
    assert!(run(Query { topic: Some(COMPLIANCE_ALERTS.into()), limit: 10, ..Query::default() }).records.is_empty());
}
