//! One module per command.

mod alerts;
mod analytics;
mod audit;
mod bench_cdc;
mod bench_log;
mod bench_services;
mod cdc;
mod consume;
mod demo;
mod keys;
mod lake;
mod pii;
mod produce;
mod schema;
mod topics;
mod up;

use crate::Exit;
use crate::cli::{BenchCommand, Command};
use crate::config::Config;

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Topics(cmd) => topics::run(cmd, &config).await,
        Command::Produce(args) => produce::run(args, &config).await,
        Command::Consume(args) => consume::run(args, &config).await,
        Command::Schema { topic } => schema::run(&topic),
        Command::Pii(cmd) => pii::run(cmd),
        Command::Bench(BenchCommand::Log(args)) => bench_log::run(args, &config).await,
        Command::Up(args) => up::run(args, &config).await,
        Command::Audit(cmd) => audit::run(cmd, &config).await,
        Command::Alerts { limit, alert_type, json } => alerts::run(limit, alert_type, json, &config).await,
        Command::Analytics { window, json } => analytics::run(&window, json, &config).await,
        Command::Lake(cmd) => lake::run(cmd, &config).await,
        Command::Cdc(cmd) => cdc::run(cmd, &config).await,
        Command::Migrate { database } => cdc::migrate(database.as_deref(), &config).await,
        Command::Demo(args) => demo::run(args, &config).await,
        Command::Keys(args) => keys::run(args, &config).await,
        Command::Bench(BenchCommand::Pipeline { .. }) => unavailable("bench pipeline", "the gateway and consumers"),
        Command::Bench(BenchCommand::Cdc(args)) => bench_cdc::run(args, &config).await,
        Command::Bench(BenchCommand::Services(args)) => bench_services::run(args, &config).await,
    }
}

/// The platform's SQLite database: `database.url` when it is `sqlite://…`, else
/// `<data-dir>/eventline.db`.
pub(crate) fn platform_db_path(config: &Config) -> anyhow::Result<std::path::PathBuf> {
    match config.database.url.as_deref() {
        None => Ok(config.data_dir.join("eventline.db")),
        Some(u) if u.starts_with("sqlite://") => Ok(std::path::PathBuf::from(&u["sqlite://".len()..])),
        Some(_) => Err(Exit::new(
            2,
            "the platform (and its audit trail and delivery state) runs on SQLite in this build; \
             unset --database / EVENTLINE_DATABASE_URL or give sqlite:///path/to/eventline.db",
        )
        .into()),
    }
}

/// Commands of the contract whose component is not in this build say so and fail.
fn unavailable(command: &str, needs: &str) -> anyhow::Result<()> {
    Err(Exit::new(
        2,
        format!(
            "`eventline {command}` is not available in this build: it needs {needs}, which is not built yet \
             (see ARCHITECTURE.md, \"Status\"). Available now: up (gateway, agents, governance, CDC, audit trail, notifications), topics, produce, consume, schema, audit verify/query, alerts, analytics, lake sync/compact, demo, pii scan, cdc run/status, migrate, bench log, bench cdc, bench services."
        ),
    )
    .into())
}
