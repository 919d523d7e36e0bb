//! `eventline lake sync [--follow]` and `lake compact`: the lake consumer on its own, and merging
//! a day's small files.

use std::sync::Arc;

use eventline_services::lake::warehouse::Warehouse;
use eventline_services::lake::{LakeService, Roll, files};

use crate::Exit;
use crate::cli::LakeCommand;
use crate::commands::cdc::shutdown_signal;
use crate::config::Config;

/// The lake service the configuration describes, on `log`.
pub async fn service(log: Arc<dyn eventline_log::EventLog>, config: &Config) -> anyhow::Result<LakeService> {
    let warehouse = match &config.lake.warehouse_url {
        Some(url) => Some(Arc::new(Warehouse::connect(url).await.map_err(|e| Exit::new(2, e))?)),
        None => None,
    };
    let roll = Roll {
        max_records: config.lake.max_file_records,
        max_bytes: config.lake.max_file_bytes,
        max_age: config.lake.max_file_age,
    };
    Ok(LakeService::new(log, config.lake.dir(&config.data_dir), roll, warehouse))
}

pub async fn run(cmd: LakeCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        LakeCommand::Sync { follow } => {
            let access = crate::remote::open(config).await?;
            if let Some(up) = &access.up {
                return Err(Exit::new(
                    2,
                    format!(
                        "`eventline up` at {} holds the log and runs the lake consumer itself (group eventline-lake); \
                         its files are in {}. Stop it to run `lake sync` on its own.",
                        up.url(),
                        config.lake.dir(&config.data_dir).display()
                    ),
                )
                .into());
            }
            let lake = service(access.log.clone(), config).await?;
            if follow {
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let run = lake.run(stopped);
                tokio::pin!(run);
                tokio::select! {
                    r = &mut run => r?,
                    _ = shutdown_signal() => {
                        let _ = stop.send(true);
                        run.await?;
                    }
                }
            } else {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_message("writing the log to Parquet");
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                let counters = lake.counters();
                let ticker = {
                    let bar = bar.clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            bar.set_message(format!(
                                "{} records in {} files",
                                counters.records.load(std::sync::atomic::Ordering::Relaxed),
                                counters.files.load(std::sync::atomic::Ordering::Relaxed)
                            ));
                        }
                    })
                };
                let written = lake.sync().await;
                ticker.abort();
                bar.finish_and_clear();
                let written = written?;
                eprintln!(
                    "eventline: lake in step with the log: {written} records written to {} ({} files)",
                    lake.root().display(),
                    lake.counters().files.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            Ok(())
        }
        LakeCommand::Compact { topic, date } => {
            if let Some(d) = &date
                && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err()
            {
                return Err(Exit::new(2, format!("--date `{d}`: write YYYY-MM-DD")).into());
            }
            let root = config.lake.dir(&config.data_dir);
            let topics: Vec<String> = match topic {
                Some(t) => vec![t],
                None => std::fs::read_dir(&root)
                    .map(|rd| {
                        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                            .filter(|n| !n.starts_with('.'))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            for t in topics {
                let (root, t2, d) = (root.clone(), t.clone(), date.clone());
                let done = tokio::task::spawn_blocking(move || files::compact(&root, &t2, d.as_deref()))
                    .await?
                    .map_err(|e| Exit::new(1, format!("lake compact {t}: {e}")))?;
                outln!("{t}: {} files merged into {} ({} records)", done.merged_files, done.into_files, done.records);
            }
            Ok(())
        }
    }
}
