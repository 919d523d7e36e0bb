//! The PostgreSQL half of `eventline bench cdc`, in a scratch database created and dropped here.
//!
//! * Latency: writers commit one `INSERT` per transaction on a fixed schedule (`rate` per second,
//!   spread over a few connections because one commit round trip with fsync takes about a
//!   millisecond here); a change's latency runs from its `COMMIT` returning to the moment the
//!   capture's acks=all append holding it returned ([`PgCapture::durable_changes`]).
//! * Bulk: with capture stopped (its slot retaining WAL), `bulk_rows` rows are committed in
//!   transactions of `txn_rows`; then capture is started and timed until the last row is durable.
//! * Reference: `pg_recvlogical` on a second pgoutput slot created at the same moment streams the
//!   same WAL to `/dev/null` (`--endpos` = the WAL position after the bulk load); timed the same way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventline_log::EventLog;
use tokio::sync::watch;

use super::setup::ConnInfo;
use super::{PgCapture, PgOptions};
use crate::error::{CdcError, Result};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchSettings {
    pub rate: u32,
    pub latency_for: Duration,
    pub bulk_rows: u64,
    pub txn_rows: u64,
    /// Connections committing in the latency phase.
    pub writers: usize,
}

/// The figures, under the names `eventline bench cdc --json` prints (prefixed `pg_`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchFigures {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub commits: usize,
    pub changes_per_s: f64,
    pub bulk_secs: f64,
    pub recvlogical_changes_per_s: Option<f64>,
    pub recvlogical_secs: Option<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let after_scheme = main.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match main[after_scheme..].find('/') {
        Some(i) => &main[..after_scheme + i],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Runs both phases and the reference against the server at `url` (the role needs CREATEDB and
/// REPLICATION). `latency_log` and `bulk_log` should be empty logs with the built-in topics.
pub async fn run(
    url: &str,
    settings: &BenchSettings,
    latency_log: Arc<dyn EventLog>,
    bulk_log: Arc<dyn EventLog>,
    say: &(dyn Fn(String) + Sync),
) -> Result<BenchFigures> {
    let admin_info = ConnInfo::parse(url)?;
    let admin = admin_info.connect().await?;
    let db = format!("eventline_bench_{}_{}", std::process::id(), Instant::now().elapsed().subsec_nanos());
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.map_err(|e| {
        CdcError::Config(format!("bench cdc: CREATE DATABASE {db} failed ({e}); the role needs CREATEDB"))
    })?;
    let bench_url = with_database(url, &db);
    let mut scratch = ConnInfo::parse(&bench_url)?.connect().await?;
    eventline_platform::store::postgres::migrate(&mut scratch)
        .await
        .map_err(|e| CdcError::Config(format!("bench cdc: creating the tables in {db} failed: {e}")))?;
    drop(scratch);
    let result = phases(&bench_url, &db, settings, latency_log, bulk_log, say).await;
    for slot in ["eventline_bench_lat", "eventline_bench_bulk", "eventline_bench_ref"] {
        let _ = super::setup::drop_slot(&admin, slot, Duration::from_secs(10)).await;
    }
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    result
}

fn options(slot: &str) -> PgOptions {
    PgOptions { slot: slot.into(), publication: "eventline_bench".into(), ..PgOptions::default() }
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<(PgCapture, Result<()>)>,
}

fn spawn(mut cap: PgCapture) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let r = cap.run(rx).await;
        (cap, r)
    });
    Running { stop, task }
}

impl Running {
    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let (_, r) = self.task.await.map_err(|e| CdcError::Config(format!("capture task: {e}")))?;
        r
    }
}

async fn wait_streaming(sql: &tokio_postgres::Client, slot: &str, run: &Running) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let active = super::setup::slot_is_streaming(sql, slot).await?;
        if active {
            return Ok(());
        }
        if run.task.is_finished() || Instant::now() > deadline {
            return Err(CdcError::Config(format!("bench: capture on slot {slot} did not start streaming")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn phases(
    url: &str,
    db: &str,
    s: &BenchSettings,
    latency_log: Arc<dyn EventLog>,
    bulk_log: Arc<dyn EventLog>,
    say: &(dyn Fn(String) + Sync),
) -> Result<BenchFigures> {
    let info = ConnInfo::parse(url)?;
    let sql = info.connect().await?;

    // ---- latency at a paced commit rate
    let cap = PgCapture::open_with(
        url,
        options("eventline_bench_lat"),
        eventline_pipeline::Pipeline::new(latency_log.clone(), None, "bench"),
    )
    .await?;
    let mut durable = cap.durable_changes();
    let run = spawn(cap);
    wait_streaming(&sql, "eventline_bench_lat", &run).await?;
    let total = (s.latency_for.as_secs_f64() * s.rate as f64) as usize;
    let commits: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
    let start = Instant::now() + Duration::from_millis(50);
    let mut writers = Vec::new();
    for w in 0..s.writers.max(1) {
        let (info, commits, rate, nw) = (info.clone(), commits.clone(), s.rate as f64, s.writers.max(1));
        writers.push(tokio::spawn(async move {
            let c = info.connect().await?;
            let stmt = c.prepare(r#"INSERT INTO "Users" ("UserId", "Email", "Name") VALUES ($1, $2, 'bench')"#).await?;
            for n in (w..total).step_by(nw) {
                tokio::time::sleep_until((start + Duration::from_secs_f64(n as f64 / rate)).into()).await;
                c.execute(&stmt, &[&format!("lat-{n}"), &format!("lat-{n}@bench.invalid")]).await?;
                commits.lock().expect("not poisoned")[n] = Some(Instant::now());
            }
            Ok::<_, CdcError>(())
        }));
    }
    let topic = "db.changes.users";
    let partitions = latency_log.describe_topic(topic).await?.spec.partitions;
    let mut next = vec![0u64; partitions as usize];
    let mut lat = Vec::with_capacity(total);
    while lat.len() < total {
        tokio::select! {
            r = durable.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                return Err(CdcError::Config(format!("bench: only {} of {total} changes arrived", lat.len())));
            }
        }
        let now = Instant::now();
        for p in 0..partitions {
            let (_, end) = latency_log.watermarks(topic, p).await?;
            while next[p as usize] < end {
                let at = next[p as usize];
                let records = latency_log.fetch(topic, p, at, (end - at) as usize).await?;
                let Some(last) = records.last() else { break };
                next[p as usize] = last.offset + 1;
                for r in &records {
                    let key = r.key.as_ref().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or("");
                    let Some(n) = key.strip_prefix("lat-").and_then(|n| n.parse::<usize>().ok()) else { continue };
                    // The append can return before the writer noted the time its COMMIT returned.
                    let committed = loop {
                        if let Some(t) = commits.lock().expect("not poisoned")[n] {
                            break t;
                        }
                        tokio::task::yield_now().await;
                    };
                    lat.push(now.saturating_duration_since(committed).as_secs_f64() * 1e3);
                }
            }
        }
    }
    for w in writers {
        w.await.map_err(|e| CdcError::Config(format!("writer: {e}")))??;
    }
    run.stop().await?;
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    say(format!(
        "postgres: commit→durable event at {} commits/s: p50 {p50:.3} ms, p99 {p99:.3} ms ({} commits)",
        s.rate,
        lat.len()
    ));

    // ---- bulk: the slot (and a reference slot) exist; load with capture stopped, then drain
    let cap = PgCapture::open_with(
        url,
        options("eventline_bench_bulk"),
        eventline_pipeline::Pipeline::new(bulk_log.clone(), None, "bench"),
    )
    .await?;
    let run = spawn(cap);
    wait_streaming(&sql, "eventline_bench_bulk", &run).await?;
    run.stop().await?;
    sql.execute("SELECT pg_create_logical_replication_slot('eventline_bench_ref', 'pgoutput')", &[]).await?;
    let mut n = 0u64;
    while n < s.bulk_rows {
        let k = s.txn_rows.min(s.bulk_rows - n) as i64;
        sql.execute(
            r#"INSERT INTO "Users" ("UserId", "Email", "Name")
               SELECT 'bulk-' || i, 'bulk-' || i || '@bench.invalid', 'bulk' FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) i"#,
            &[&(n as i64), &k],
        )
        .await?;
        n += k as u64;
    }
    let end_lsn: String = sql.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);
    let cap = PgCapture::open_with(
        url,
        options("eventline_bench_bulk"),
        eventline_pipeline::Pipeline::new(bulk_log.clone(), None, "bench"),
    )
    .await?;
    let mut durable = cap.durable_changes();
    let started = Instant::now();
    let run = spawn(cap);
    while *durable.borrow_and_update() < s.bulk_rows {
        tokio::select! {
            r = durable.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(Duration::from_secs(120)) => {
                return Err(CdcError::Config("bench: bulk capture stalled".into()));
            }
        }
    }
    let bulk_secs = started.elapsed().as_secs_f64();
    run.stop().await?;
    let changes_per_s = s.bulk_rows as f64 / bulk_secs;
    say(format!("postgres: bulk {} rows in {bulk_secs:.2} s = {changes_per_s:.0} changes/s", s.bulk_rows));

    // ---- reference: pg_recvlogical, pgoutput to /dev/null, same WAL
    let reference = recvlogical(url, db, &end_lsn).await;
    let (recvlogical_secs, recvlogical_changes_per_s) = match reference {
        Ok(secs) => {
            let rate = s.bulk_rows as f64 / secs;
            say(format!(
                "postgres: pg_recvlogical (pgoutput → /dev/null) {} rows in {secs:.2} s = {rate:.0} changes/s",
                s.bulk_rows
            ));
            (Some(secs), Some(rate))
        }
        Err(e) => {
            say(format!("postgres: pg_recvlogical reference not measured: {e}"));
            (None, None)
        }
    };
    Ok(BenchFigures {
        p50_ms: p50,
        p99_ms: p99,
        commits: lat.len(),
        changes_per_s,
        bulk_secs,
        recvlogical_changes_per_s,
        recvlogical_secs,
    })
}

/// Times `pg_recvlogical` streaming the reference slot to /dev/null up to `end_lsn`.
async fn recvlogical(url: &str, _db: &str, end_lsn: &str) -> std::result::Result<f64, String> {
    let exe = which_recvlogical().ok_or("pg_recvlogical not found (Debian package postgresql-client)")?;
    let started = Instant::now();
    let out = tokio::process::Command::new(&exe)
        .arg("-d")
        .arg(url)
        .args(["--slot", "eventline_bench_ref", "--start", "--no-loop", "-f", "/dev/null", "-E", end_lsn])
        .args(["-o", "proto_version=1", "-o", "publication_names=eventline_bench"])
        .output()
        .await
        .map_err(|e| format!("{exe}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{exe}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(secs)
}

fn which_recvlogical() -> Option<String> {
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("pg_recvlogical")).find(|f| f.is_file()));
    if let Some(p) = on_path {
        return Some(p.display().to_string());
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs.into_iter().rev().map(|d| d.join("bin/pg_recvlogical")).find(|f| f.is_file()).map(|p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(with_database("postgres://u:p@h:1/db", "x"), "postgres://u:p@h:1/x");
        assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
