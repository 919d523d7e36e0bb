//! Security events for the audit trail (`security.events`, PCI DSS 10.2): failed authentication
//! (401), refused authorisation (403), key creation and revocation, profile writes. Each names the
//! key by its id (never the secret), the role, the route template, the source address and the
//! outcome.
//!
//! They are composed here from what the gateway knows — ids, the route template, fixed reasons —
//! never from caller text, so they are appended without the governance gate; the source address
//! is kept because the audit trail must say where a request came from. Appending happens off the
//! request (a failure is logged, the response is not held up).

use std::net::SocketAddr;
use std::sync::Arc;

use eventline_governance::Location;
use eventline_log::EventLog;
use eventline_model::topics::{SECURITY_EVENTS, TopicSpec};
use eventline_pipeline::{Draft, Pipeline};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::auth::ApiKey;

/// Who is calling, as the authorisation step found it; handlers read it from the request's
/// extensions.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key: ApiKey,
    pub address: Option<SocketAddr>,
    pub method: String,
    pub route: String,
}

/// One security event.
#[derive(Clone, Debug)]
pub struct SecurityEvent {
    pub event_type: &'static str,
    pub success: bool,
    pub key_id: Option<String>,
    pub role: Option<&'static str>,
    pub user_id: Option<String>,
    pub method: String,
    pub route: String,
    pub resource: Option<String>,
    pub status: u16,
    pub reason: String,
    pub address: Option<SocketAddr>,
}

impl SecurityEvent {
    /// A request without a valid key (401): no key id, the route template, the source address.
    pub fn auth_failed(method: String, route: String, reason: String, address: Option<SocketAddr>) -> Self {
        Self {
            event_type: "auth.failed",
            success: false,
            key_id: None,
            role: None,
            user_id: None,
            method,
            route,
            resource: None,
            status: 401,
            reason,
            address,
        }
    }

    /// An event about what `caller` did.
    pub fn by(caller: &Caller, event_type: &'static str, status: u16, reason: impl Into<String>) -> Self {
        Self {
            event_type,
            success: status < 400,
            key_id: Some(caller.key.id.clone()),
            role: Some(caller.key.role.as_str()),
            user_id: None,
            method: caller.method.clone(),
            route: caller.route.clone(),
            resource: None,
            status,
            reason: reason.into(),
            address: caller.address,
        }
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "event_id": uuid::Uuid::now_v7().to_string(),
            "event_type": self.event_type,
            "outcome": if self.success { "success" } else { "failure" },
            "component": "gateway",
            "key_id": self.key_id,
            "role": self.role,
            "user_id": self.user_id,
            "method": self.method,
            "route": self.route,
            "resource": self.resource,
            "status": self.status,
            "reason": self.reason,
            "source_address": self.address.map(|a| a.ip().to_string()),
        })
    }
}

/// Failed authentications recorded per source address and window; beyond that they are counted
/// (`eventline_security_events_suppressed_total`), not recorded one by one, so a flood of bad
/// keys cannot grow the log and the audit trail without bound.
const FAILED_AUTH_PER_WINDOW: u32 = 20;
const FAILED_AUTH_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Per source address: when its window started and how many failures it recorded in it.
type FailedBySource = std::collections::HashMap<Option<std::net::IpAddr>, (std::time::Instant, u32)>;

/// Appends security events (no gate: see the module documentation).
#[derive(Clone)]
pub struct SecurityLog {
    pipeline: Pipeline,
    spec: Arc<OnceCell<TopicSpec>>,
    failed: Arc<std::sync::Mutex<FailedBySource>>,
}

impl std::fmt::Debug for SecurityLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityLog").finish_non_exhaustive()
    }
}

impl SecurityLog {
    pub fn new(log: Arc<dyn EventLog>, producer: &str) -> Self {
        Self { pipeline: Pipeline::new(log, None, producer), spec: Arc::new(OnceCell::new()), failed: Arc::default() }
    }

    /// Appends `event` on a task of its own.
    pub fn record(&self, event: SecurityEvent) {
        if event.event_type == "auth.failed" && !self.admit_failure(event.address.map(|a| a.ip())) {
            metrics::counter!("eventline_security_events_suppressed_total", "event_type" => "auth.failed").increment(1);
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.append(&event).await {
                tracing::warn!(event_type = event.event_type, error = %e, "cannot append a security event");
            }
        });
    }

    /// Whether another failed authentication from `ip` is recorded in this window.
    fn admit_failure(&self, ip: Option<std::net::IpAddr>) -> bool {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if failed.len() > 10_000 {
            failed.retain(|_, (since, _)| now.duration_since(*since) < FAILED_AUTH_WINDOW);
        }
        let entry = failed.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILED_AUTH_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= FAILED_AUTH_PER_WINDOW
    }

    /// Appends `event` and waits for the log's acknowledgement.
    pub async fn append(&self, event: &SecurityEvent) -> Result<(), String> {
        let spec = self
            .spec
            .get_or_try_init(|| async {
                self.pipeline.log().describe_topic(SECURITY_EVENTS).await.map(|d| d.spec).map_err(|e| e.to_string())
            })
            .await?;
        let draft = Draft::json(event.to_json(), "gateway", Location::Event).stamped(true);
        let prepared = self.pipeline.prepare(spec, draft).map_err(|e| e.to_string())?;
        self.pipeline.append(SECURITY_EVENTS, vec![prepared], spec.acks).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
