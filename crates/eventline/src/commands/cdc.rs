//! `eventline cdc run|status`: change data capture of Users and conversations.

use std::path::PathBuf;
use std::sync::Arc;

use eventline_pipeline::Pipeline;

use eventline_cdc::CdcError;
use eventline_cdc::postgres::{PgCapture, PgOptions, redact, slot_status};
use eventline_cdc::sqlite::{SqliteCapture, backlog};
use eventline_model::Timestamp;

use crate::Exit;
use crate::backend::open_log;
use crate::cli::CdcCommand;
use crate::config::Config;

/// Where to capture from.
enum Source {
    Sqlite(PathBuf),
    Postgres(String),
}

fn source(url: Option<&str>, config: &Config) -> anyhow::Result<Source> {
    match url.or(config.database.url.as_deref()) {
        None => Ok(Source::Sqlite(config.data_dir.join("eventline.db"))),
        Some(u) if u.starts_with("sqlite://") => Ok(Source::Sqlite(PathBuf::from(&u["sqlite://".len()..]))),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Ok(Source::Postgres(u.to_owned())),
        Some(u) => Err(Exit::new(2, format!("--database `{u}`: use sqlite:///path/to/file.db or postgres://…")).into()),
    }
}

/// Capture errors an operator acts on (a lost slot, a table without REPLICA IDENTITY FULL, a
/// bad URL) end with their own message and exit code 1.
fn operator_error(e: CdcError) -> anyhow::Error {
    match e {
        CdcError::SlotLost { .. } | CdcError::ReplicaIdentity { .. } | CdcError::Config(_) => {
            Exit::new(1, e.to_string()).into()
        }
        other => other.into(),
    }
}

/// `eventline migrate`: applies eventline's migrations to the database (SQLite or PostgreSQL).
pub async fn migrate(url: Option<&str>, config: &Config) -> anyhow::Result<()> {
    let ran = match source(url, config)? {
        Source::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut conn = eventline_platform::store::sqlite::open(&path)?;
            let ran = eventline_platform::store::sqlite::migrate(&mut conn)?;
            eprintln!("eventline: {} is at the current schema", path.display());
            ran
        }
        Source::Postgres(url) => {
            let info = eventline_cdc::postgres::setup::ConnInfo::parse(&url).map_err(operator_error)?;
            let mut client = info.connect().await.map_err(operator_error)?;
            let ran = eventline_platform::store::postgres::migrate(&mut client).await?;
            eprintln!("eventline: {} is at the current schema", redact(&url));
            ran
        }
    };
    eprintln!("eventline: {ran} migration(s) applied");
    Ok(())
}

fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    stop_rx
}

pub async fn run(cmd: CdcCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        CdcCommand::Run { database, slot, resnapshot } => match source(database.as_deref(), config)? {
            Source::Sqlite(path) => {
                if resnapshot {
                    return Err(Exit::new(2, "--resnapshot applies to PostgreSQL capture only").into());
                }
                let log = open_log(config).await?;
                let gate = Arc::new(crate::gate::load(config)?);
                let pipeline = Pipeline::new(log.clone(), Some(gate), config.producer.clone());
                let mut capture = SqliteCapture::open(&path, pipeline).await?;
                eprintln!(
                    "eventline: capturing Users and conversations from {} into the {} log (Ctrl-C to stop)",
                    path.display(),
                    log.backend()
                );
                capture.run(stop_on_signal()).await?;
                eprintln!("eventline: capture stopped; backlog {} row(s)", capture.backlog()?.rows);
                Ok(())
            }
            Source::Postgres(url) => {
                let log = open_log(config).await?;
                let gate = Arc::new(crate::gate::load(config)?);
                let options = PgOptions { publication: slot.clone(), slot, resnapshot, ..PgOptions::default() };
                let pipeline = Pipeline::new(log.clone(), Some(gate), config.producer.clone());
                let mut capture = PgCapture::open_with(&url, options, pipeline).await.map_err(operator_error)?;
                eprintln!(
                    "eventline: capturing Users and conversations from {} into the {} log{} (Ctrl-C to stop)",
                    redact(&url),
                    log.backend(),
                    if capture.snapshot_pending() { ", starting with a snapshot of the existing rows" } else { "" }
                );
                capture.run(stop_on_signal()).await.map_err(operator_error)?;
                let lag = capture.lag();
                eprintln!(
                    "eventline: capture stopped at {} ({} change(s) captured in this run)",
                    lag.durable_lsn, lag.changes
                );
                Ok(())
            }
        },
        CdcCommand::Status { database, slot, json } => match source(database.as_deref(), config)? {
            Source::Sqlite(path) => sqlite_status(path, json),
            Source::Postgres(url) => {
                let s = slot_status(&url, &slot).await.map_err(operator_error)?;
                if json {
                    outln!("{}", serde_json::json!({"source": "postgres", "status": s}));
                    return Ok(());
                }
                outln!("source:         postgres {}", s.database);
                match &s.slot_row {
                    None => {
                        outln!("slot:           {} does not exist (start capture with `eventline cdc run`)", s.slot)
                    }
                    Some(r) => {
                        outln!(
                            "slot:           {} ({}, wal_status {})",
                            s.slot,
                            if r.active { "active" } else { "inactive" },
                            r.wal_status.as_deref().unwrap_or("unknown")
                        );
                        let confirmed = r.confirmed_flush_lsn.map(|l| l.to_string()).unwrap_or_else(|| "none".into());
                        outln!("position:       confirmed {confirmed}, server at {}", s.current_wal_lsn);
                        outln!("lag:            {} WAL byte(s)", s.lag_bytes.unwrap_or(0));
                        if let Some(ms) = s.flush_lag_ms {
                            outln!("lag (time):     {ms:.1} ms (server-measured flush lag)");
                        }
                        match (r.safe_wal_size, s.max_slot_wal_keep_bytes) {
                            (Some(safe), Some(max)) => {
                                outln!("WAL headroom:   {safe} of {max} byte(s) before max_slot_wal_keep_size")
                            }
                            _ => outln!("WAL headroom:   unlimited (max_slot_wal_keep_size = -1)"),
                        }
                    }
                }
                outln!("snapshot:       {}", if s.snapshot_done { "complete" } else { "not taken yet" });
                if let Some(w) = &s.warning {
                    outln!("WARNING:        {w}");
                }
                Ok(())
            }
        },
    }
}

fn sqlite_status(path: PathBuf, json: bool) -> anyhow::Result<()> {
    if !path.exists() {
        return Err(
            Exit::new(1, format!("no database at {}; start capture with `eventline cdc run`", path.display())).into()
        );
    }
    let conn = eventline_platform::store::sqlite::open(&path)?;
    let b = backlog(&conn).map_err(|e| anyhow::anyhow!("{e} (has `eventline cdc run` ever run on this database?)"))?;
    let lag_ms = b
        .oldest
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| (Timestamp::now().unix_millis() - t.unix_millis()).max(0));
    if json {
        outln!(
            "{}",
            serde_json::json!({"source": "sqlite", "database": path, "backlog_rows": b.rows, "oldest_pending": b.oldest, "lag_ms": lag_ms})
        );
    } else {
        outln!("source:         sqlite {}", path.display());
        outln!("backlog:        {} change(s) captured, not yet in the log", b.rows);
        match lag_ms {
            Some(ms) => outln!("lag:            {ms} ms (oldest pending change at {})", b.oldest.unwrap_or_default()),
            None => outln!("lag:            0 (nothing pending)"),
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a signal that comes in between is not lost (nor fatal).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
