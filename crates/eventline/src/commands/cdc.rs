//! `eventline cdc run|status`: change data capture of Users and conversations.

use std::path::PathBuf;
use std::sync::Arc;

use eventline_cdc::sqlite::{SqliteCapture, backlog};
use eventline_model::Timestamp;

use crate::Exit;
use crate::backend::open_log;
use crate::cli::CdcCommand;
use crate::config::Config;

/// Where to capture from.
enum Source {
    Sqlite(PathBuf),
}

fn source(url: Option<&str>, config: &Config) -> anyhow::Result<Source> {
    match url.or(config.database.url.as_deref()) {
        None => Ok(Source::Sqlite(config.data_dir.join("eventline.db"))),
        Some(u) if u.starts_with("sqlite://") => Ok(Source::Sqlite(PathBuf::from(&u["sqlite://".len()..]))),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Err(Exit::new(
            2,
            "capture from PostgreSQL is not available in this build yet; SQLite capture is (omit --database)",
        )
        .into()),
        Some(u) => Err(Exit::new(2, format!("--database `{u}`: use sqlite:///path/to/file.db or postgres://…")).into()),
    }
}

pub async fn run(cmd: CdcCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        CdcCommand::Run { database } => {
            let Source::Sqlite(path) = source(database.as_deref(), config)?;
            let log = open_log(config).await?;
            let gate = Arc::new(crate::gate::load(config)?);
            let mut capture = SqliteCapture::open(&path, log.clone(), Some(gate), config.producer.clone()).await?;
            eprintln!(
                "eventline: capturing Users and conversations from {} into the {} log (Ctrl-C to stop)",
                path.display(),
                log.backend()
            );
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown_signal().await;
                let _ = stop_tx.send(true);
            });
            capture.run(stop_rx).await?;
            eprintln!("eventline: capture stopped; backlog {} row(s)", capture.backlog()?.rows);
            Ok(())
        }
        CdcCommand::Status { database, json } => {
            let Source::Sqlite(path) = source(database.as_deref(), config)?;
            if !path.exists() {
                return Err(Exit::new(
                    1,
                    format!("no database at {}; start capture with `eventline cdc run`", path.display()),
                )
                .into());
            }
            let conn = eventline_platform::store::sqlite::open(&path)?;
            let b = backlog(&conn)
                .map_err(|e| anyhow::anyhow!("{e} (has `eventline cdc run` ever run on this database?)"))?;
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
                    Some(ms) => {
                        outln!("lag:            {ms} ms (oldest pending change at {})", b.oldest.unwrap_or_default())
                    }
                    None => outln!("lag:            0 (nothing pending)"),
                }
            }
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
