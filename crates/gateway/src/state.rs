//! What every handler shares: the executor (database, log, governance), the integrations, the
//! keys, readiness and the tracker of executions still running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use eventline_platform::executor::AgentExecutor;
use eventline_platform::integrations::{IntegrationIngest, MAX_BATCH_EVENTS};
use tokio_util::task::TaskTracker;

use crate::auth::KeyStore;
use crate::security::SecurityLog;

/// Readiness inputs set by whoever runs the gateway: change data capture up, shutting down.
#[derive(Debug, Default)]
pub struct Readiness {
    cdc_running: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    pub fn set_cdc_running(&self, running: bool) {
        self.cdc_running.store(running, Ordering::SeqCst);
    }

    pub fn cdc_running(&self) -> bool {
        self.cdc_running.load(Ordering::SeqCst)
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Limits of the HTTP server.
#[derive(Clone, Copy, Debug)]
pub struct GatewayOptions {
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// A request still running after this gets 503 (an execution already started still finishes).
    pub request_timeout: Duration,
    /// Integration batches with more events get 413 (at most [`MAX_BATCH_EVENTS`]).
    pub max_batch_events: usize,
    /// Serve `GET /metrics` on the API's address (false when `[metrics] listen` moves it).
    pub metrics_here: bool,
    /// How long a dashboard session cookie lives.
    pub session_ttl: Duration,
    /// Request rates, requests in flight, event streams.
    pub limits: crate::limits::LimitOptions,
    /// Served over HTTPS (cookies are marked `Secure`).
    pub tls: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            max_batch_events: MAX_BATCH_EVENTS,
            metrics_here: true,
            session_ttl: Duration::from_secs(3600),
            limits: crate::limits::LimitOptions::default(),
            tls: false,
        }
    }
}

/// The gateway's shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub executor: AgentExecutor,
    pub integrations: IntegrationIngest,
    pub keys: RwLock<KeyStore>,
    pub readiness: Arc<Readiness>,
    pub tracker: TaskTracker,
    pub options: GatewayOptions,
    pub security: SecurityLog,
    /// Where the audit trail's signing key and head file are (`GET /v1/audit/verify`).
    pub data_dir: Option<std::path::PathBuf>,
    /// The running analytics (`GET /v1/analytics/agents`); without it the figures are computed
    /// from the log on each request.
    pub analytics: Option<eventline_services::analytics::AnalyticsService>,
    /// The dashboard's browser sessions.
    pub sessions: crate::session::Sessions,
    /// The last audit chain check the dashboard showed, and when it ran.
    /// Held while the chain is checked again (one check at a time).
    pub audit_status: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
    /// Change data capture's lag in microseconds, when capture runs in this process.
    pub cdc_lag: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Signs and checks user tokens.
    pub tokens: crate::tokens::UserTokens,
    pub limits: Arc<crate::limits::Limits>,
}

impl AppState {
    pub fn new(executor: AgentExecutor, keys: KeyStore, readiness: Arc<Readiness>, options: GatewayOptions) -> Self {
        let integrations = IntegrationIngest::new(executor.pipeline().clone(), executor.database().clone());
        let security = SecurityLog::new(executor.log().clone(), executor.producer());
        Self {
            inner: Arc::new(Inner {
                executor,
                integrations,
                keys: RwLock::new(keys),
                readiness,
                tracker: TaskTracker::new(),
                options,
                security,
                data_dir: None,
                analytics: None,
                sessions: crate::session::Sessions::new(options.session_ttl),
                audit_status: tokio::sync::Mutex::new(None),
                cdc_lag: None,
                tokens: crate::tokens::UserTokens::ephemeral(),
                limits: Arc::new(crate::limits::Limits::new(options.limits)),
            }),
        }
    }

    /// Whether `key` still works: not revoked (a user token: not expired; revoking the key that
    /// issued it is checked on each request). Long-lived streams ask this as they go.
    pub(crate) fn key_alive(&self, key: &crate::auth::ApiKey) -> bool {
        if key.id.starts_with("utk_") {
            return !key.expired();
        }
        self.inner.keys.read().unwrap_or_else(|p| p.into_inner()).by_id(&key.id).is_some()
    }

    /// The analytics service whose figures `GET /v1/analytics/agents` serves. Call before serving.
    pub fn with_analytics(mut self, analytics: eventline_services::analytics::AnalyticsService) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.analytics = Some(analytics);
        }
        self
    }

    /// Where change data capture keeps its lag (microseconds), for the dashboard. Call before serving.
    pub fn with_cdc_lag(mut self, lag_us: Arc<std::sync::atomic::AtomicU64>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.cdc_lag = Some(lag_us);
        }
        self
    }

    /// The key user tokens are signed with (the data directory's). Call before serving.
    pub fn with_user_tokens(mut self, tokens: crate::tokens::UserTokens) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.tokens = tokens;
        }
        self
    }

    /// The data directory (for the audit trail's key and head file). Call before serving.
    pub fn with_data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.data_dir = Some(dir.into());
        }
        self
    }

    pub fn readiness(&self) -> &Arc<Readiness> {
        &self.inner.readiness
    }

    pub(crate) fn executor(&self) -> &AgentExecutor {
        &self.inner.executor
    }

    pub(crate) fn integrations(&self) -> &IntegrationIngest {
        &self.inner.integrations
    }

    pub(crate) fn db(&self) -> &eventline_platform::db::Database {
        self.inner.executor.database()
    }

    /// Waits for executions that outlived their request (client gone, timeout).
    pub async fn wait_for_executions(&self) {
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}
