//! CDC crash safety with real processes: a writer commits 10,000 changes to SQLite while
//! `eventline cdc run` is killed with SIGKILL at random moments (at least 20 rounds). Afterwards
//! every committed change is in the log exactly once (by message id), in commit order per key.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

const EXE: &str = env!("CARGO_BIN_EXE_eventline");
const COMMITS: u64 = 10_000;
const USERS: u64 = 200;

fn relay(data: &std::path::Path) -> Child {
    Command::new(EXE)
        .arg("--data-dir")
        .arg(data)
        .args(["-q", "cdc", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn outbox_rows(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM _eventline_cdc_outbox", [], |r| r.get(0)).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_relay_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let db = data.join("eventline.db");
    // The application's tables (capture reads them, it does not create them), then the first
    // relay installs the capture triggers.
    let migrate = std::process::Command::new(EXE).arg("--data-dir").arg(&data).arg("migrate").status().unwrap();
    assert!(migrate.success());
    let mut child = relay(&data);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = db.exists()
            && rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", [], |r| r.get::<_, i64>(0))
                })
                .unwrap_or(0)
                >= 6;
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "capture never installed its triggers");
        std::thread::sleep(Duration::from_millis(20));
    }

    let done = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, done, committed) = (db.clone(), done.clone(), committed.clone());
        std::thread::spawn(move || {
            let conn = eventline_platform::store::sqlite::open(&db).unwrap();
            for n in 0..COMMITS {
                let user = format!("u{}", n % USERS);
                if n < USERS {
                    conn.execute(
                        "INSERT INTO Users (UserId, Email, Name) VALUES (?1, ?2, ?3)",
                        [&user, &format!("{user}@example.com"), &n.to_string()],
                    )
                    .unwrap();
                } else {
                    conn.execute("UPDATE Users SET Name = ?2 WHERE UserId = ?1", [&user, &n.to_string()]).unwrap();
                }
                committed.fetch_add(1, Ordering::Relaxed);
            }
            done.store(true, Ordering::Release);
        })
    };

    let mut rng = rand::rng();
    let mut rounds = 0;
    while rounds < 20 || !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        child.kill().unwrap();
        child.wait().unwrap();
        rounds += 1;
        child = relay(&data);
    }
    writer.join().unwrap();
    // Let the last relay drain the outbox, then stop it cleanly.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while outbox_rows(&conn) != 0 {
        assert!(Instant::now() < deadline, "the relay did not drain the outbox");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success(), "SIGTERM stops capture cleanly");

    let total = common::users_changes_exactly_once_in_commit_order(&data).await;
    assert_eq!(total, COMMITS, "every committed change is in the log");
    eprintln!("{rounds} SIGKILL rounds, {total} changes, each exactly once, in commit order per key");
}
