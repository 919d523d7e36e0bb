//! `eventline up`: the platform in one process — the log (embedded or Kafka), the SQLite
//! database with the demo bank, change data capture of `Users` and `conversations`, the
//! gateway with the card, loan and wealth agents behind governance and the CRM and market-data
//! integrations, the price feed (consumer group `eventline-prices` on `external.market.data`
//! keeping the wealth agent's `prices` current), the audit trail (`eventline-audit`),
//! notifications (`eventline-notify`), analytics (`eventline-analytics`) and the Parquet lake
//! (`eventline-lake`).
//!
//! Shutdown (Ctrl-C or SIGTERM) runs in order: the gateway stops accepting and finishes the
//! requests (and agent executions, integration appends) in flight; then capture relays every
//! change those requests made and stops, the event outbox relay appends what is left, while the price feed applies and commits the ticks in
//! hand and leaves its group; then the log is flushed as the last handle on it is dropped.
//!
//! Once the gateway listens, `<data-dir>/up.json` (`{"pid", "url"}`) says where, so that
//! `topics`, `produce` and `consume` on the same data directory go through it (`crate::remote`);
//! it is removed when `up` stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use eventline_cdc::sqlite::SqliteCapture;
use eventline_gateway::{AppState, GatewayOptions, Readiness, keys};
use eventline_model::topics::{AGENT_EXECUTIONS, COMPLIANCE_ALERTS};
use eventline_pipeline::Pipeline;
use eventline_platform::db::Database;
use eventline_platform::executor::AgentExecutor;
use eventline_platform::outbox::Outbox;
use eventline_platform::seed;
use eventline_services::analytics::AnalyticsService;
use eventline_services::audit::store::CheckpointPolicy;
use eventline_services::audit::{AuditOptions, AuditService, AuditSigner};
use eventline_services::notify::NotifyService;
use eventline_services::prices::PriceFeed;
use tokio::sync::watch;

use crate::Exit;
use crate::backend::open_log;
use crate::cli::UpArgs;
use crate::commands::cdc::shutdown_signal;
use crate::config::Config;
use crate::remote::{self, UpFile};

/// The SQLite database `up` runs on.
fn database_path(args: &UpArgs, config: &Config) -> anyhow::Result<PathBuf> {
    match args.database.as_deref().or(config.database.url.as_deref()) {
        None => Ok(config.data_dir.join("eventline.db")),
        Some(u) if u.starts_with("sqlite://") => Ok(PathBuf::from(&u["sqlite://".len()..])),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Err(Exit::new(
            2,
            "`eventline up --database postgres://…` is not available in this build: the agents and the \
             gateway run on SQLite only. PostgreSQL works for the schema and for capture \
             (`eventline cdc run --database postgres://…`). Run `eventline up` without --database \
             (SQLite at <data-dir>/eventline.db).",
        )
        .into()),
        Some(u) => Err(Exit::new(2, format!("--database `{u}`: use sqlite:///path/to/file.db")).into()),
    }
}

pub async fn run(args: UpArgs, config: &Config) -> anyhow::Result<()> {
    // From the very start: a SIGTERM while starting up stops `up` cleanly too.
    let shutdown = shutdown_signal();
    let db_path = database_path(&args, config)?;
    // What `up` creates is its own: directories 0700, files 0600 (the database, keys, the log,
    // the lake), whatever the inherited umask.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    // Metrics first, so everything from here on is counted; every append through the log wrapper.
    let log: Arc<dyn eventline_log::EventLog> = if config.metrics.enabled {
        let _ = eventline_gateway::metrics::handle();
        Arc::new(eventline_pipeline::metered::Metered(open_log(config).await?))
    } else {
        open_log(config).await?
    };
    let gate = Arc::new(crate::gate::load(config)?);
    let pipeline = Pipeline::new(log.clone(), Some(gate), config.producer.clone());

    // The schema first (the migrations), then capture: its triggers are in place before anything
    // writes, so the demo customers seeded below reach db.changes.users like every later change.
    let db = Database::open(&db_path).with_context(|| format!("cannot open {}", db_path.display()))?;
    let capture = SqliteCapture::open(&db_path, pipeline.clone())
        .await
        .with_context(|| format!("cannot start change data capture on {}", db_path.display()))?;
    if db.call_blocking(|c| seed::seed_demo_bank(c, chrono::Utc::now())).context("cannot seed the demo bank")? {
        eprintln!(
            "eventline: seeded the demo bank: {} customers ({}) with accounts, cards, loans and holdings",
            seed::DEMO_USERS.len(),
            seed::DEMO_USERS.iter().map(|u| u.user_id).collect::<Vec<_>>().join(", ")
        );
    }
    // Card numbers are kept only encrypted (PCI DSS 3.5): seal any still in clear before serving.
    let vault = eventline_platform::cardvault::CardVault::load_or_create(
        &config.data_dir,
        std::env::var(eventline_platform::cardvault::KEY_ENV).ok(),
    )
    .context("cannot load the card data key")?;
    let first = vault.clone();
    let sealed = db.call_blocking(move |c| first.protect(c)).context("cannot encrypt the card numbers")?;
    if sealed > 0 {
        eprintln!("eventline: encrypted {sealed} card number(s) at rest (AES-256-GCM, key card-data.key)");
    }
    // A card another client writes in clear while up runs is sealed within a minute.
    {
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let vault = vault.clone();
                match db.call(move |c| vault.protect(c)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(cards = n, "encrypted card numbers written in clear"),
                    Err(e) => tracing::warn!(error = %e, "cannot encrypt card numbers written in clear"),
                }
            }
        });
    }
    let admin = db.call_blocking(|c| keys::bootstrap_admin(c, &config.data_dir))?;
    let key_store = db.call_blocking(|c| keys::load(c))?;
    let outbox = Outbox::open(db.clone(), log.clone(), &[AGENT_EXECUTIONS, COMPLIANCE_ALERTS])
        .await
        .context("cannot open the event outbox")?;

    let listener = tokio::net::TcpListener::bind(config.gateway.listen)
        .await
        .map_err(|e| Exit::new(1, format!("cannot listen on {} (gateway.listen): {e}", config.gateway.listen)))?;
    let addr = listener.local_addr()?;
    // Where the CLI finds this server while the log is locked (`crate::remote`).
    let mut reachable = addr;
    if reachable.ip().is_unspecified() {
        reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let tls = match (&config.gateway.tls_cert, &config.gateway.tls_key) {
        (Some(cert), Some(key)) => {
            Some(eventline_gateway::server::tls_config(cert, key).await.map_err(|e| Exit::new(2, e))?)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    UpFile { pid: std::process::id(), url: format!("{scheme}://{reachable}") }
        .write(&config.data_dir)
        .with_context(|| format!("cannot write {}", config.data_dir.join(remote::UP_FILE).display()))?;

    // The key's id only; the secret stays in the file.
    eprintln!(
        "eventline: admin API key {} {} {} (mode 0600; send it as `Authorization: Bearer $(cat {})`)",
        admin.key_id,
        if admin.created { "written to" } else { "is in" },
        admin.path.display(),
        admin.path.display()
    );
    eprintln!(
        "eventline: gateway listening on {scheme}://{addr} ({} log, SQLite {}); Ctrl-C to stop",
        log.backend(),
        db_path.display()
    );
    eprintln!(
        "eventline: dashboard on {scheme}://{reachable}/ (log in with a key of role read, or the admin key in {})",
        admin.path.display()
    );

    let readiness = Arc::new(Readiness::default());
    let cdc_lag = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let capture = capture.with_lag_gauge(cdc_lag.clone());
    let prices = PriceFeed::new(log.clone(), db.clone());
    let signer = AuditSigner::load_or_create(&config.data_dir).context("cannot load the audit signing key")?;
    eprintln!("eventline: audit trail signing key {} (public)", signer.public_key_hex());
    let audit = AuditService::new(
        log.clone(),
        db.clone(),
        signer,
        AuditOptions {
            checkpoint: CheckpointPolicy {
                every_records: config.audit.checkpoint_records,
                every: config.audit.checkpoint_interval,
            },
            retention: config.audit.retention,
            data_dir: config.data_dir.clone(),
        },
    );
    let routing = config.notifications.resolve(|v| std::env::var(v).ok()).map_err(|e| Exit::new(2, e))?;
    if routing.channels.is_empty() {
        eprintln!(
            "eventline: no notification channels configured ([[notifications.channels]]); alerts are kept for `eventline alerts`"
        );
    }
    let notify = NotifyService::new(log.clone(), db.clone(), routing).map_err(|e| Exit::new(2, e))?;
    let analytics = AnalyticsService::new(log.clone());
    let lake = super::lake::service(log.clone(), config).await?;
    let executor = AgentExecutor::new(db, pipeline.clone(), outbox.clone());
    let options = GatewayOptions {
        max_body_bytes: config.gateway.max_body_bytes,
        request_timeout: config.gateway.request_timeout,
        metrics_here: config.metrics.enabled && config.metrics.listen.is_none(),
        tls: config.gateway.tls_cert.is_some(),
        limits: eventline_gateway::limits::LimitOptions {
            per_key_per_s: config.gateway.rate_limit_per_key,
            per_user_per_s: config.gateway.rate_limit_per_user,
            max_in_flight: config.gateway.max_in_flight,
            max_streams_per_key: config.gateway.max_streams_per_key,
            max_streams: config.gateway.max_streams,
            stream_lifetime: config.gateway.stream_max_lifetime,
        },
        ..GatewayOptions::default()
    };
    let state = AppState::new(executor, key_store, readiness.clone(), options)
        .with_data_dir(&config.data_dir)
        .with_analytics(analytics.clone())
        .with_cdc_lag(cdc_lag.clone())
        .with_user_tokens(
            eventline_gateway::tokens::UserTokens::load_or_create(&config.data_dir)
                .context("cannot load the user-token signing key")?,
        );

    if let Some(addr) = config.metrics.listen.filter(|_| config.metrics.enabled) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Exit::new(1, format!("cannot listen on {addr} (metrics.listen): {e}")))?;
        eprintln!("eventline: metrics on http://{}/metrics", listener.local_addr()?);
        let app = eventline_gateway::server::metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let (stop_server, mut server_stopped) = watch::channel(false);
    let stopped = async move {
        let _ = server_stopped.wait_for(|s| *s).await;
    };
    let mut server = match tls {
        Some(tls) => tokio::spawn(eventline_gateway::serve_tls(listener, state, tls, stopped)),
        None => tokio::spawn(eventline_gateway::serve(listener, state, stopped)),
    };
    let (stop_capture, capture_stopped) = watch::channel(false);
    let price_feed = supervise("price feed", capture_stopped.clone(), move |stop| {
        let feed = prices.clone();
        async move { feed.run(stop).await.map(|_| ()) }
    });
    let audit_trail = supervise("audit trail", capture_stopped.clone(), move |stop| {
        let audit = audit.clone();
        async move { audit.run(stop).await }
    });
    let notifications = supervise("notifications", capture_stopped.clone(), move |stop| {
        let notify = notify.clone();
        async move { notify.run(stop).await }
    });
    let analytics_task = supervise("analytics", capture_stopped.clone(), move |stop| {
        let analytics = analytics.clone();
        async move { analytics.run(stop).await }
    });
    let lake_task = supervise("lake", capture_stopped.clone(), move |stop| {
        let lake = lake.clone();
        async move { lake.run(stop).await }
    });
    let relay = Relay { capture: Some(capture), db_path, pipeline, readiness, lag: cdc_lag };
    let outbox_relay = run_outbox(outbox, capture_stopped.clone());

    let control = async {
        let served = tokio::select! {
            _ = shutdown => {
                eprintln!("eventline: shutting down: finishing the requests in flight");
                let _ = stop_server.send(true);
                (&mut server).await
            }
            served = &mut server => served,
        };
        eprintln!("eventline: gateway stopped; relaying the last captured changes, committing the price feed");
        let _ = stop_capture.send(true);
        served
    };
    let consumers = async { tokio::join!(price_feed, audit_trail, notifications, analytics_task, lake_task) };
    let (relayed, served, outboxed, _) = tokio::join!(relay.run(capture_stopped), control, outbox_relay, consumers);
    // The gateway is gone: nobody should be sent to it any more.
    UpFile::remove(&config.data_dir);
    served.context("the gateway task failed")?.context("the gateway failed")?;
    relayed.context("change data capture failed")?;
    outboxed.context("the event outbox relay failed")?;
    eprintln!("eventline: stopped cleanly");
    Ok(())
}

/// The relay of the executor's event outbox: appends what the executions wrote, until told to stop
/// (after the gateway stopped), then appends what is left.
async fn run_outbox(outbox: Outbox, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    outbox.run(stop).await?;
    let left = outbox.backlog().await?;
    if left > 0 {
        anyhow::bail!("{left} event(s) are still in the outbox; they are appended at the next start");
    }
    Ok(())
}

/// A consumer service as a long-running part of `up`: restarts after an error (with back-off; the
/// committed offsets say where to resume) until told to stop, then finishes what it holds,
/// commits and leaves its group.
async fn supervise<F, Fut>(name: &'static str, mut stop: watch::Receiver<bool>, run: F)
where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = Result<(), eventline_pipeline::RuntimeError>>,
{
    let mut backoff = Duration::from_millis(250);
    loop {
        match run(stop.clone()).await {
            Ok(()) => {
                tracing::info!("{name} stopped");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "the {name} failed; restarting from the committed offsets");
                if *stop.borrow() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Change data capture as a long-running part of `up`: restarts after an error (with back-off,
/// readiness down meanwhile) and, when told to stop, relays everything already captured first.
struct Relay {
    capture: Option<SqliteCapture>,
    db_path: PathBuf,
    pipeline: Pipeline,
    readiness: Arc<Readiness>,
    lag: Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut capture = match self.capture.take() {
                Some(c) => c,
                None => match self.reopen(&self.db_path).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "change data capture cannot restart");
                        if *stop.borrow() {
                            return Err(e);
                        }
                        backoff = self.wait(backoff, &mut stop).await;
                        continue;
                    }
                },
            };
            self.readiness.set_cdc_running(true);
            let result = capture.run(stop.clone()).await;
            self.readiness.set_cdc_running(false);
            match result {
                Ok(()) => {
                    // Stopped: the gateway is done, so whatever is in the outbox now is all.
                    let mut drained = 0;
                    loop {
                        let n = capture.relay_once().await?;
                        if n == 0 {
                            break;
                        }
                        drained += n;
                    }
                    tracing::info!(drained, "change data capture drained");
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(error = %e, "change data capture failed; restarting");
                    if *stop.borrow() {
                        return Err(e.into());
                    }
                    backoff = self.wait(backoff, &mut stop).await;
                }
            }
        }
    }

    async fn reopen(&self, path: &Path) -> anyhow::Result<SqliteCapture> {
        Ok(SqliteCapture::open(path, self.pipeline.clone()).await?.with_lag_gauge(self.lag.clone()))
    }

    /// Sleeps `backoff` (or until stopped) and returns the next, longer one (at most 30 s).
    async fn wait(&self, backoff: Duration, stop: &mut watch::Receiver<bool>) -> Duration {
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => {}
        }
        (backoff * 2).min(Duration::from_secs(30))
    }
}
