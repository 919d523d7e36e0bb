//! The audit service: consumer group `eventline-audit` on the CDC topics, `agent.executions`,
//! `compliance.alerts` and `security.events`. Each poll's records become audit records appended
//! to the trail in one transaction; their offsets are committed only after it committed, so a
//! crash re-reads them and the trail skips what it already holds (idempotent by topic,
//! partition, offset). A timer signs the head every `checkpoint.every` and prunes records past
//! the retention.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use eventline_log::{EventLog, OffsetReset, Record};
use eventline_model::topics::{
    AGENT_EXECUTIONS, COMPLIANCE_ALERTS, DB_CHANGES_CONVERSATIONS, DB_CHANGES_USERS, SECURITY_EVENTS,
};
use eventline_pipeline::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Outcome, RuntimeError};
use eventline_platform::db::Database;
use tokio::sync::watch;

use super::record::{describe, format_time};
use super::signing::AuditSigner;
use super::store::{self, CheckpointPolicy};

/// The audit service's consumer group.
pub const AUDIT_GROUP: &str = "eventline-audit";

/// The topics the trail records.
pub const AUDITED_TOPICS: [&str; 5] =
    [DB_CHANGES_USERS, DB_CHANGES_CONVERSATIONS, AGENT_EXECUTIONS, COMPLIANCE_ALERTS, SECURITY_EVENTS];

/// How the trail is kept.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub checkpoint: CheckpointPolicy,
    /// Records older than this (by event time) are pruned; `None` keeps everything.
    pub retention: Option<Duration>,
    /// The data directory: the signing key and the head file live there.
    pub data_dir: PathBuf,
}

/// Counters of the running service (for `/metrics`: `eventline_audit_records_total`).
#[derive(Debug, Default)]
pub struct AuditCounters {
    pub appended: AtomicU64,
    pub duplicates: AtomicU64,
    pub checkpoints: AtomicU64,
}

/// Log → trail. See the module documentation.
#[derive(Clone)]
pub struct AuditService {
    log: Arc<dyn EventLog>,
    db: Database,
    signer: AuditSigner,
    options: AuditOptions,
    group: String,
    counters: Arc<AuditCounters>,
}

impl std::fmt::Debug for AuditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditService").field("group", &self.group).field("signer", &self.signer).finish()
    }
}

struct AuditHandler {
    db: Database,
    signer: AuditSigner,
    options: AuditOptions,
    counters: Arc<AuditCounters>,
}

#[async_trait]
impl Handler for AuditHandler {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        let records = records.to_vec();
        let signer = self.signer.clone();
        let policy = self.options.checkpoint;
        let dir = self.options.data_dir.clone();
        let n = records.len();
        let done = self
            .db
            .call(move |conn| {
                let entries: Vec<_> = records.iter().map(describe).collect();
                store::append(conn, &entries, &signer, policy, &dir)
            })
            .await
            .map_err(HandlerError::new)?;
        self.counters.appended.fetch_add(done.appended, Ordering::Relaxed);
        metrics::counter!("eventline_audit_records_total").increment(done.appended);
        metrics::counter!("eventline_audit_duplicates_total").increment(done.duplicates);
        self.counters.duplicates.fetch_add(done.duplicates, Ordering::Relaxed);
        self.counters.checkpoints.fetch_add(u64::from(done.checkpointed), Ordering::Relaxed);
        Ok(vec![Outcome::Done; n])
    }
}

impl AuditService {
    pub fn new(log: Arc<dyn EventLog>, db: Database, signer: AuditSigner, options: AuditOptions) -> Self {
        Self { log, db, signer, options, group: AUDIT_GROUP.to_owned(), counters: Arc::default() }
    }

    /// Uses consumer group `group` instead of [`AUDIT_GROUP`].
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    pub fn counters(&self) -> Arc<AuditCounters> {
        self.counters.clone()
    }

    /// The runtime this service runs on. A new group starts at the earliest record still in the
    /// log: the trail holds everything the log still has.
    pub fn runtime(&self) -> ConsumerRuntime {
        ConsumerRuntime::new(
            self.log.clone(),
            ConsumerConfig::new(self.group.clone(), &AUDITED_TOPICS, OffsetReset::Earliest),
        )
    }

    /// Consumes until `stop` turns true, then signs the head and leaves the group.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        self.run_on(self.runtime(), stop).await
    }

    /// Like [`AuditService::run`], on `runtime` (whose counters someone else holds).
    pub async fn run_on(&self, runtime: ConsumerRuntime, stop: watch::Receiver<bool>) -> Result<(), RuntimeError> {
        let handler = AuditHandler {
            db: self.db.clone(),
            signer: self.signer.clone(),
            options: self.options.clone(),
            counters: self.counters.clone(),
        };
        tracing::info!(group = %self.group, public_key = %self.signer.public_key_hex(), "audit trail consuming");
        let timer = self.housekeeping(stop.clone());
        let (result, ()) = tokio::join!(runtime.run(handler, stop), timer);
        // A clean stop signs what came after the last checkpoint.
        if let Err(e) = self.checkpoint_now().await {
            tracing::warn!(error = %e, "cannot sign the audit trail's head at shutdown");
        }
        result.map(|_| ())
    }

    /// Signs the head now if records came after the last checkpoint.
    pub async fn checkpoint_now(&self) -> rusqlite::Result<bool> {
        let signer = self.signer.clone();
        let dir = self.options.data_dir.clone();
        let signed = self.db.call(move |c| store::checkpoint_now(c, &signer, &dir)).await?;
        if signed {
            self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("eventline_audit_checkpoints_total").increment(1);
        }
        Ok(signed)
    }

    /// Every `checkpoint.every`: sign the head if it moved; every hour (and at start): prune.
    async fn housekeeping(&self, mut stop: watch::Receiver<bool>) {
        let every = self.options.checkpoint.every.max(Duration::from_millis(100));
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_prune = Some(std::time::Instant::now());
                if let Some(retention) = self.options.retention {
                    let cutoff = format_time(chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64);
                    let signer = self.signer.clone();
                    match self.db.call(move |c| store::prune_before(c, &signer, &cutoff)).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "audit retention removed the oldest records"),
                        Err(e) => tracing::warn!(error = %e, "audit retention failed"),
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.checkpoint_now().await {
                tracing::warn!(error = %e, "cannot sign the audit trail's head");
            }
        }
    }
}
