//! `eventline bench cdc`: how fast a committed change becomes a durable event, and how many
//! changes per second capture moves in bulk.
//!
//! Latency: a writer commits one change at a time on a fixed schedule (`--rate` per second); each
//! change's latency runs from its commit returning to the moment the relay's acks=all append that
//! holds it returned. Bulk: `--bulk-rows` rows are committed in transactions of `--txn-rows`,
//! then capture is timed from start to the last row durable in the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventline_cdc::sqlite::SqliteCapture;
use eventline_log::{EmbeddedLog, EventLog};
use serde_json::json;

use crate::Exit;
use crate::cli::BenchCdcArgs;
use crate::config::Config;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

pub async fn run(args: BenchCdcArgs, config: &Config) -> anyhow::Result<()> {
    let latency_for = humantime::parse_duration(&args.latency_duration)
        .map_err(|e| Exit::new(2, format!("--latency-duration `{}`: {e}", args.latency_duration)))?;
    if args.rate == 0 || args.txn_rows == 0 {
        return Err(Exit::new(2, "--rate and --txn-rows must be positive").into());
    }
    let dir = config.data_dir.join(format!("bench-cdc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = sqlite(&args, config, &dir, latency_for).await;
    let result = match result {
        Ok(mut figures) => postgres(&args, config, &dir, latency_for).await.map(|pg| {
            figures.as_object_mut().expect("an object").extend(pg);
            figures
        }),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let figures = result?;
    if args.json {
        outln!("{}", serde_json::to_string(&figures)?);
    }
    Ok(())
}

async fn capture(dir: &std::path::Path, config: &Config) -> anyhow::Result<(Arc<dyn EventLog>, SqliteCapture)> {
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.join("log"), config.log.options())?);
    for spec in config.builtin_specs() {
        log.ensure_topic(&spec).await?;
    }
    std::fs::create_dir_all(dir)?;
    eventline_platform::store::sqlite::migrate(&mut eventline_platform::store::sqlite::open(
        &dir.join("eventline.db"),
    )?)?;
    let cap = SqliteCapture::open(
        &dir.join("eventline.db"),
        eventline_pipeline::Pipeline::new(log.clone(), None, config.producer.clone()),
    )
    .await?;
    Ok((log, cap))
}

async fn sqlite(
    args: &BenchCdcArgs,
    config: &Config,
    dir: &std::path::Path,
    latency_for: Duration,
) -> anyhow::Result<serde_json::Value> {
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };
    // Latency at a paced commit rate.
    let (_log, mut cap) = capture(&dir.join("latency"), config).await?;
    let db = dir.join("latency").join("eventline.db");
    let total = (latency_for.as_secs_f64() * args.rate as f64) as usize;
    let commits: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let writer = {
        let (commits, rate) = (commits.clone(), args.rate as f64);
        std::thread::spawn(move || -> anyhow::Result<()> {
            let conn = eventline_platform::store::sqlite::open(&db)?;
            let start = Instant::now();
            for n in 0..total {
                let intended = start + Duration::from_secs_f64(n as f64 / rate);
                if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                conn.execute(
                    "INSERT INTO Users (UserId, Email, Name) VALUES (?1, ?2, 'bench')",
                    [format!("user-{n}"), format!("user-{n}@bench.invalid")],
                )?;
                commits.lock().expect("not poisoned").push(Instant::now());
            }
            Ok(())
        })
    };
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let mut lat = Vec::with_capacity(total);
    let mut done = 0usize;
    while done < total {
        let seen = cap.data_version().await?;
        let n = cap.relay_once().await?;
        if n == 0 {
            cap.wait_for_commit(seen, &mut stop).await?;
            continue;
        }
        let now = Instant::now();
        // The relay can see a commit before the writer has noted the time `execute` returned.
        let committed = loop {
            let c = commits.lock().expect("not poisoned");
            if c.len() >= done + n {
                break c;
            }
            drop(c);
            std::thread::yield_now();
        };
        for t in &committed[done..done + n] {
            lat.push(now.saturating_duration_since(*t).as_secs_f64() * 1e3);
        }
        drop(committed);
        done += n;
    }
    writer.join().map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    say(format!(
        "sqlite: commit→durable event at {} commits/s: p50 {p50:.3} ms, p99 {p99:.3} ms ({} commits)",
        args.rate,
        lat.len()
    ));

    // Bulk: commit everything first, then time capture draining it.
    let (_log, mut cap) = capture(&dir.join("bulk"), config).await?;
    {
        let mut conn = eventline_platform::store::sqlite::open(&dir.join("bulk").join("eventline.db"))?;
        let mut n = 0u64;
        while n < args.bulk_rows {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO Users (UserId, Email, Name) VALUES (?1, ?2, 'bulk')")?;
                for _ in 0..args.txn_rows.min(args.bulk_rows - n) {
                    stmt.execute([format!("bulk-{n}"), format!("bulk-{n}@bench.invalid")])?;
                    n += 1;
                }
            }
            tx.commit()?;
        }
    }
    let started = Instant::now();
    let mut moved = 0u64;
    loop {
        let n = cap.relay_once().await?;
        if n == 0 {
            break;
        }
        moved += n as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(moved == args.bulk_rows, "captured {moved} of {} rows", args.bulk_rows);
    let rate = moved as f64 / secs;
    say(format!("sqlite: bulk {moved} rows in {secs:.2} s = {rate:.0} changes/s"));
    Ok(json!({
        "sqlite_p50_ms": (p50 * 1000.0).round() / 1000.0,
        "sqlite_p99_ms": (p99 * 1000.0).round() / 1000.0,
        "sqlite_commits": lat.len(),
        "sqlite_changes_per_s": rate.round(),
    }))
}

/// The PostgreSQL half: runs against `EVENTLINE_DATABASE_URL` / `database.url` when it is a
/// `postgres://` URL (the role needs CREATEDB and REPLICATION; a scratch database is created and
/// dropped), with `pg_recvlogical` on the same WAL as the reference. Without one the `pg_*`
/// figures are null.
async fn postgres(
    args: &BenchCdcArgs,
    config: &Config,
    dir: &std::path::Path,
    latency_for: Duration,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };
    let url = config.database.url.clone().or_else(|| std::env::var("EVENTLINE_DATABASE_URL").ok());
    let Some(url) = url.as_deref().filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://")) else {
        say("postgres: skipped (set EVENTLINE_DATABASE_URL=postgres://… to include PostgreSQL)".into());
        let null = serde_json::Value::Null;
        return Ok(["pg_p50_ms", "pg_p99_ms", "pg_changes_per_s", "pg_recvlogical_changes_per_s"]
            .into_iter()
            .map(|k| (k.to_owned(), null.clone()))
            .collect());
    };
    let open = |name: &str| -> anyhow::Result<Arc<dyn EventLog>> {
        Ok(Arc::new(EmbeddedLog::open(dir.join(name).join("log"), config.log.options())?))
    };
    let (lat, bulk) = (open("pg-latency")?, open("pg-bulk")?);
    for log in [&lat, &bulk] {
        for spec in config.builtin_specs() {
            log.ensure_topic(&spec).await?;
        }
    }
    let settings = eventline_cdc::postgres::bench::BenchSettings {
        rate: args.rate,
        latency_for,
        bulk_rows: args.bulk_rows,
        txn_rows: args.txn_rows,
        writers: 4,
    };
    let f = eventline_cdc::postgres::bench::run(url, &settings, lat, bulk, &say).await?;
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut out = serde_json::Map::new();
    out.insert("pg_p50_ms".into(), json!(round3(f.p50_ms)));
    out.insert("pg_p99_ms".into(), json!(round3(f.p99_ms)));
    out.insert("pg_commits".into(), json!(f.commits));
    out.insert("pg_changes_per_s".into(), json!(f.changes_per_s.round()));
    out.insert("pg_recvlogical_changes_per_s".into(), json!(f.recvlogical_changes_per_s.map(f64::round)));
    if let Some(r) = f.recvlogical_changes_per_s {
        say(format!("postgres: capture / pg_recvlogical = {:.2}", f.changes_per_s / r));
    }
    Ok(out)
}
