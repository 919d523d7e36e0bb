//! SQLite capture against a real SQLite database and the real embedded log.

use std::path::Path;
use std::sync::Arc;

use eventline_cdc::sqlite::{OUTBOX, SqliteCapture};
use eventline_governance::{Gate, Policy};
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use eventline_model::topics::{BUILTIN_TOPICS, TopicSpec};
use rusqlite::Connection;
use serde_json::Value;

struct Setup {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    log: Arc<dyn EventLog>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap();
    for (name, key) in BUILTIN_TOPICS {
        let mut spec = TopicSpec::new(name);
        spec.key_pointer = Some(key.to_string());
        log.create_topic(&spec).await.unwrap();
    }
    // The application's schema; capture reads it and does not create it.
    let db = dir.path().join("eventline.db");
    eventline_platform::store::sqlite::migrate(&mut eventline_platform::store::sqlite::open(&db).unwrap()).unwrap();
    Setup { db, log: Arc::new(log), _dir: dir }
}

fn writer(db: &Path) -> Connection {
    eventline_platform::store::sqlite::open(db).unwrap()
}

async fn events(log: &dyn EventLog, topic: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for p in 0..3 {
        let (_, end) = log.watermarks(topic, p).await.unwrap();
        if end > 0 {
            for r in log.fetch(topic, p, 0, end as usize).await.unwrap() {
                let seq: i64 =
                    r.header("eventline.cdc.seq").map_or(0, |s| std::str::from_utf8(s).unwrap().parse().unwrap());
                out.push((seq, serde_json::from_slice::<Value>(r.value.as_ref().unwrap()).unwrap()));
            }
        }
    }
    // Commit order: the outbox sequence number each captured record carries.
    out.sort_by_key(|(seq, _)| *seq);
    out.into_iter().map(|(_, e)| e).collect()
}

async fn drain(c: &mut SqliteCapture) {
    while c.relay_once().await.unwrap() > 0 {}
}

#[tokio::test]
async fn insert_update_delete_become_contract_events() {
    let s = setup().await;
    let mut cap =
        SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), None, "test")).await.unwrap();
    let w = writer(&s.db);
    w.execute("INSERT INTO Users (UserId, Email, Name) VALUES ('u1', 'a@example.com', 'Ann')", []).unwrap();
    w.execute(
        "UPDATE Users SET Email = 'b@example.com', UpdatedAt = '2026-01-01T00:00:00.000Z' WHERE UserId = 'u1'",
        [],
    )
    .unwrap();
    w.execute("DELETE FROM Users WHERE UserId = 'u1'", []).unwrap();
    drain(&mut cap).await;
    let ev = events(&*s.log, "db.changes.users").await;
    let kinds: Vec<&str> = ev.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["INSERT", "UPDATE", "DELETE"], "in commit order");
    let mut ids: Vec<&str> = ev.iter().map(|e| e["_metadata"]["message_id"].as_str().unwrap()).collect();
    let in_order = ids.clone();
    ids.sort();
    assert_eq!(ids, in_order, "v7 message ids sort in commit order");
    assert!(ev.iter().all(|e| e["table"] == "Users"));
    assert_eq!(ev[0]["data"]["Email"], "a@example.com");
    assert!(ev[0].get("before").is_none());
    assert_eq!(ev[1]["data"]["Email"], "b@example.com");
    assert_eq!(ev[1]["before"], serde_json::json!({"Email": "a@example.com", "UpdatedAt": ev[0]["data"]["UpdatedAt"]}));
    assert_eq!(ev[2]["data"], serde_json::json!({"UserId": "u1"}), "DELETE carries the key");
    assert_eq!(ev[2]["before"]["Name"], "Ann", "and the full prior row");
    for e in &ev {
        eventline_model::schema::validate("db.changes.users", e).unwrap();
        let id = uuid::Uuid::parse_str(e["_metadata"]["message_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }
    let left: i64 = w.query_row(&format!("SELECT count(*) FROM {OUTBOX}"), [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "relayed rows leave the outbox");
}

#[tokio::test]
async fn insert_or_replace_is_a_delete_and_an_insert_and_rollback_is_nothing() {
    let s = setup().await;
    let mut cap =
        SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), None, "test")).await.unwrap();
    let mut w = writer(&s.db);
    w.execute("INSERT INTO Users (UserId, Email) VALUES ('u1', 'a@example.com')", []).unwrap();
    w.execute("INSERT OR REPLACE INTO Users (UserId, Email) VALUES ('u1', 'c@example.com')", []).unwrap();
    let tx = w.transaction().unwrap();
    tx.execute("INSERT INTO Users (UserId, Email) VALUES ('ghost', 'g@example.com')", []).unwrap();
    tx.rollback().unwrap();
    drain(&mut cap).await;
    let ev = events(&*s.log, "db.changes.users").await;
    let kinds: Vec<&str> = ev.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["INSERT", "DELETE", "INSERT"]);
    assert_eq!(ev[2]["data"]["Email"], "c@example.com");
    assert!(!serde_json::to_string(&ev).unwrap().contains("ghost"), "a rolled-back change is never captured");
}

#[tokio::test]
async fn conversation_documents_are_json_and_large_ones_survive() {
    let s = setup().await;
    let mut cap =
        SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), None, "test")).await.unwrap();
    let w = writer(&s.db);
    let big = "x".repeat(100_000);
    let doc = serde_json::json!({"turns": [{"role": "user", "text": big}]}).to_string();
    w.execute("INSERT INTO conversations (conversation_id, user_id, doc) VALUES ('c1', 'u1', ?1)", [&doc]).unwrap();
    w.execute("UPDATE conversations SET user_id = 'u2' WHERE conversation_id = 'c1'", []).unwrap();
    drain(&mut cap).await;
    let ev = events(&*s.log, "db.changes.conversations").await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["data"]["doc"]["turns"][0]["text"].as_str().unwrap().len(), 100_000, "unchanged doc kept whole");
    assert_eq!(ev[1]["before"], serde_json::json!({"user_id": "u1"}));
}

#[tokio::test]
async fn a_change_made_with_the_sqlite3_cli_is_captured() {
    let s = setup().await;
    let mut cap =
        SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), None, "test")).await.unwrap();
    let status = std::process::Command::new("sqlite3")
        .arg(&s.db)
        .arg("INSERT INTO Users (UserId, Email) VALUES ('cli', 'cli@example.com');")
        .status()
        .expect("the sqlite3 command-line shell is installed");
    assert!(status.success());
    drain(&mut cap).await;
    let ev = events(&*s.log, "db.changes.users").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["UserId"], "cli");
}

#[tokio::test]
async fn rows_relayed_before_a_crash_are_not_appended_twice() {
    let s = setup().await;
    let w = writer(&s.db);
    {
        let mut cap =
            SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), None, "test")).await.unwrap();
        for i in 0..50 {
            w.execute("INSERT INTO Users (UserId, Email) VALUES (?1, 'x@example.com')", [format!("u{i}")]).unwrap();
        }
        // Keep a copy of the outbox, relay (which deletes), then put the rows back: exactly what a
        // crash between the append and the delete leaves behind.
        w.execute_batch(&format!("CREATE TABLE saved AS SELECT * FROM {OUTBOX}")).unwrap();
        drain(&mut cap).await;
        w.execute_batch(&format!("INSERT INTO {OUTBOX} SELECT * FROM saved; DROP TABLE saved;")).unwrap();
    }
    w.execute("INSERT INTO Users (UserId, Email) VALUES ('after', 'y@example.com')", []).unwrap();
    let mut cap =
        SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), None, "test")).await.unwrap();
    drain(&mut cap).await;
    let ev = events(&*s.log, "db.changes.users").await;
    assert_eq!(ev.len(), 51, "each change exactly once");
    let mut ids: Vec<&str> = ev.iter().map(|e| e["_metadata"]["message_id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 51);
}

#[tokio::test]
async fn the_governance_policy_applies_to_captured_rows() {
    let s = setup().await;
    let gate = Arc::new(Gate::new(Policy::default_with_key(b"0123456789abcdef0123456789abcdef".to_vec()), "test"));
    let mut cap =
        SqliteCapture::open(&s.db, eventline_pipeline::Pipeline::new(s.log.clone(), Some(gate), "test")).await.unwrap();
    let w = writer(&s.db);
    w.execute("INSERT INTO Users (UserId, Email, Phone) VALUES ('u1', 'ann@example.com', '+1 415 555 0100')", [])
        .unwrap();
    drain(&mut cap).await;
    let ev = events(&*s.log, "db.changes.users").await;
    let text = serde_json::to_string(&ev).unwrap();
    assert!(!text.contains("ann@example.com") && !text.contains("555 0100"), "{text}");
    assert!(ev[0]["data"]["Email"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert_eq!(ev[0]["data"]["UserId"], "u1");
    assert!(!events(&*s.log, "compliance.alerts").await.is_empty());
}

#[tokio::test]
async fn capture_reads_the_application_schema_and_does_not_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
    let db = dir.path().join("foreign.db");
    writer(&db).execute_batch("CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY, doc TEXT)").unwrap();
    let err = SqliteCapture::open(&db, eventline_pipeline::Pipeline::new(log, None, "test")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`Users` does not exist") && text.contains("eventline up"), "{text}");
    let tables: i64 = writer(&db)
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'Users'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "capture created no table of the application's");
}
