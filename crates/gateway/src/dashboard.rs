//! The dashboard: the page at `/` with its script and style sheet embedded in the binary (no CDN,
//! works offline), and `GET /v1/dashboard/stream` (role `read`; the page authenticates with the
//! session cookie of [`crate::session`]): Server-Sent Events, one `snapshot` at once and then every
//! [`INTERVAL`] — per-topic rates, consumer lag per group, per-agent latency and success (last
//! 5 minutes), the last alerts with their delivery state, the audit chain's status, CDC lag and
//! notification deliveries. The topic browser reads `GET /v1/topics/{topic}/records`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use eventline_services::analytics::{Window, report_from_log};
use eventline_services::audit::signing::public_key_of;
use eventline_services::audit::verify::verify;
use eventline_services::notify::store as notify_store;
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::state::AppState;

/// How often a snapshot is sent.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// The audit chain is verified again at most this often (a full pass over the trail).
const AUDIT_EVERY: Duration = Duration::from_secs(15);

const INDEX: &str = include_str!("../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../assets/dashboard/app.js");
const STYLE: &str = include_str!("../assets/dashboard/app.css");

/// Only the page's own files; nothing inline but styles, nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /`.
pub async fn index() -> Response {
    page(INDEX, "text/html; charset=utf-8")
}

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => page(SCRIPT, "text/javascript; charset=utf-8"),
        "app.css" => page(STYLE, "text/css; charset=utf-8"),
        _ => crate::error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset").into_response(),
    }
}

/// `GET /v1/dashboard/stream`.
pub async fn stream(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<crate::security::Caller>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, crate::error::ApiError> {
    // Opened with the session cookie: the stream ends with the session (logout, expiry).
    let session = match headers.contains_key(header::AUTHORIZATION) {
        true => None,
        false => crate::session::token(&headers).map(str::to_owned),
    };
    let permit = state.inner.limits.open_stream(&caller.key.id)?;
    let ends_at = Instant::now() + state.inner.limits.options().stream_lifetime;
    let (tx, mut rx) = mpsc::channel::<Event>(4);
    let readiness = state.readiness().clone();
    tokio::spawn(async move {
        let _permit = permit;
        let mut snap = Snapshots::default();
        let alive =
            || state.key_alive(&caller.key) && session.as_deref().is_none_or(|t| state.inner.sessions.get(t).is_some());
        loop {
            // A revoked key's streams end, so do an ended session's; every stream ends at its
            // maximum lifetime, and a client that stops reading does not hold it open.
            if !alive() || Instant::now() >= ends_at {
                return;
            }
            let data = snap.next(&state).await;
            let event = Event::default().event("snapshot").data(data.to_string());
            let Some(room) = crate::limits::room(&tx, ends_at, alive).await else { return };
            room.send(event);
            if readiness.draining() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = tx.closed() => return,
            }
            if readiness.draining() {
                return;
            }
        }
    });
    let events = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One stream's view over time: rates are the change of end offsets since its last snapshot.
#[derive(Default)]
struct Snapshots {
    previous: Option<(Instant, HashMap<String, u64>)>,
}

impl Snapshots {
    async fn next(&mut self, state: &AppState) -> Value {
        let log = state.executor().log().clone();
        let now = Instant::now();
        let mut ends = HashMap::new();
        let mut topics = Vec::new();
        if let Ok(list) = log.list_topics().await {
            for t in list {
                let end: u64 = t.partitions.iter().map(|p| p.end_offset).sum();
                let rate = match &self.previous {
                    Some((at, prev)) => {
                        let secs = now.duration_since(*at).as_secs_f64().max(0.001);
                        (end.saturating_sub(prev.get(&t.spec.name).copied().unwrap_or(end)) as f64 / secs * 100.0)
                            .round()
                            / 100.0
                    }
                    None => 0.0,
                };
                topics.push(json!({"topic": t.spec.name, "partitions": t.partitions.len(), "end_offset": end, "events_per_s": rate}));
                ends.insert(t.spec.name.clone(), end);
            }
        }
        self.previous = Some((now, ends));
        let mut groups = Vec::new();
        if let Ok(names) = log.list_groups().await {
            for g in names {
                if let Ok(lags) = log.group_lag(&g).await {
                    groups.push(json!({"group": g, "lag": lags.iter().map(|l| l.lag).sum::<u64>()}));
                }
            }
        }
        let agents = match &state.inner.analytics {
            Some(a) => a.report(Window::FiveMinutes).await,
            None => report_from_log(&*log, Window::FiveMinutes).await,
        }
        .map(|r| serde_json::to_value(r.figures.agents).unwrap_or_default())
        .unwrap_or_else(|_| json!([]));
        let from_db = state
            .db()
            .read(|c| -> rusqlite::Result<_> { Ok((notify_store::recent(c, 10, None)?, notify_store::counts(c)?)) })
            .await;
        let (alerts, deliveries) = match from_db {
            Ok(Ok((a, d))) => (serde_json::to_value(a).unwrap_or_default(), d),
            _ => (json!([]), Vec::new()),
        };
        let mut notifications = json!({"delivered": 0, "pending": 0, "coalesced": 0, "dead_lettered": 0});
        for (_, st, n) in deliveries {
            let name = if st == "dead" { "dead_lettered".to_owned() } else { st };
            let slot = &mut notifications[name.as_str()];
            *slot = json!(slot.as_u64().unwrap_or(0) + n);
        }
        let cdc = match &state.inner.cdc_lag {
            Some(us) => json!([{"source": "sqlite", "lag_seconds": us.load(Ordering::Relaxed) as f64 / 1e6}]),
            None => json!([]),
        };
        json!({
            "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "interval_ms": INTERVAL.as_millis() as u64,
            "topics": topics,
            "groups": groups,
            "agents": agents,
            "alerts": alerts,
            "audit": audit_status(state).await,
            "cdc": cdc,
            "notifications": notifications,
        })
    }
}

/// The audit chain's status, verified again when the last check is older than [`AUDIT_EVERY`]
/// (shared by every stream of the process).
async fn audit_status(state: &AppState) -> Value {
    // Held through the check: one at a time for the whole process, the others wait for its result.
    let mut cached = state.inner.audit_status.lock().await;
    if let Some((at, v)) = &*cached
        && at.elapsed() < AUDIT_EVERY
    {
        return v.clone();
    }
    let checked_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = match state.inner.data_dir.clone() {
        None => json!({"state": "unknown", "records": 0, "checked_at": checked_at, "first_bad": null}),
        Some(dir) => {
            let report = match public_key_of(&dir) {
                Ok(key) => state.db().read(move |c| verify(c, key.as_ref(), &dir)).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match report {
                Ok(Ok(r)) => json!({
                    "state": if r.ok { "intact" } else { "broken" },
                    "records": r.records,
                    "checked_at": checked_at,
                    "first_bad": r.first_bad.map(|b| format!("record {}: {}", b.seq, b.reason)),
                }),
                _ => json!({"state": "unknown", "records": 0, "checked_at": checked_at, "first_bad": null}),
            }
        }
    };
    *cached = Some((Instant::now(), status.clone()));
    status
}
