//! PostgreSQL CDC crash safety with real processes: `psql` commits 10,000 changes (one
//! transaction each) while `eventline cdc run --database postgres://…` is killed with SIGKILL at
//! random moments (at least 20 rounds). Afterwards every committed change is in the log exactly
//! once (by message id), in commit order per key.
//!
//! Needs `EVENTLINE_TEST_PG_URL` (`scripts/services/postgres.sh start`, then load
//! `scripts/services/.env`); works in a database and slot of its own, dropped at the end.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

const EXE: &str = env!("CARGO_BIN_EXE_eventline");
const COMMITS: u64 = 10_000;
const USERS: u64 = 200;

fn base_url() -> String {
    std::env::var("EVENTLINE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "EVENTLINE_TEST_PG_URL is not set: run `scripts/services/postgres.sh start`, then \
             `set -a; . scripts/services/.env; set +a` (scripts/test.sh does both)"
        )
    })
}

/// One value from `psql -tAc`.
fn psql(url: &str, sql: &str) -> String {
    let out =
        Command::new("psql").arg(url).args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn capture(data: &std::path::Path, url: &str, slot: &str) -> Child {
    Command::new(EXE)
        .arg("--data-dir")
        .arg(data)
        .args(["-q", "cdc", "run", "--database", url, "--slot", slot])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_postgres_capture_loses_and_duplicates_nothing() {
    let base = base_url();
    let name = format!("evl_crash_{}", &uuid_like());
    psql(&base, &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let slot = format!("{name}_slot");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();

    // The application's tables (capture reads them, it does not create them), then the first
    // capture creates the publication and the slot.
    let migrate = std::process::Command::new(EXE)
        .arg("--data-dir")
        .arg(&data)
        .args(["migrate", "--database", &url])
        .status()
        .unwrap();
    assert!(migrate.success());
    let mut child = capture(&data, &url, &slot);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Streaming, not just `active` (also true while the slot is being created): see
    // eventline_cdc::postgres::setup::slot_is_streaming.
    let streaming = format!(
        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid \
         WHERE s.slot_name = '{slot}' AND a.query LIKE 'START_REPLICATION%')"
    );
    while psql(&base, &streaming) != "t" {
        assert!(Instant::now() < deadline, "capture never started streaming");
        assert!(child.try_wait().unwrap().is_none(), "capture exited during start-up");
        std::thread::sleep(Duration::from_millis(50));
    }

    // psql commits 200 inserts, then 9,800 updates, each statement its own transaction.
    let mut script = tempfile::NamedTempFile::new().unwrap();
    for n in 0..COMMITS {
        let user = format!("u{}", n % USERS);
        if n < USERS {
            writeln!(
                script,
                r#"INSERT INTO "Users" ("UserId", "Email", "Name") VALUES ('{user}', '{user}@example.com', '{n}');"#
            )
            .unwrap();
        } else {
            writeln!(script, r#"UPDATE "Users" SET "Name" = '{n}' WHERE "UserId" = '{user}';"#).unwrap();
        }
    }
    script.flush().unwrap();
    let mut writer = Command::new("psql")
        .arg(&url)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(script.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let mut rng = rand::rng();
    let mut rounds = 0;
    let mut writer_done = false;
    while rounds < 20 || !writer_done {
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        rounds += 1;
        child = capture(&data, &url, &slot);
        if !writer_done && let Some(status) = writer.try_wait().unwrap() {
            assert!(status.success(), "psql writer failed");
            writer_done = true;
        }
    }
    assert!(writer.wait().unwrap().success(), "psql writer failed");
    // Let the last capture confirm everything written, then stop it cleanly.
    let end = psql(&url, "SELECT pg_current_wal_lsn()");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let caught_up = psql(
            &base,
            &format!(
                "SELECT confirmed_flush_lsn >= '{end}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
            ),
        );
        if caught_up == "t" {
            break;
        }
        assert!(Instant::now() < deadline, "capture did not confirm the last commit within 90 s");
        assert!(child.try_wait().unwrap().is_none(), "capture exited while catching up");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success(), "SIGTERM stops capture cleanly");

    let total = common::users_changes_exactly_once_in_commit_order(&data).await;
    assert_eq!(total, COMMITS, "every committed change is in the log");
    eprintln!("{rounds} SIGKILL rounds, {total} changes, each exactly once, in commit order per key");

    psql(&base, &format!("SELECT pg_drop_replication_slot('{slot}')"));
    psql(&base, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}", nanos & 0xffff_ffff, std::process::id())
}
