//! `GET /healthz` (the process answers) and `GET /readyz` (the log, the database and change
//! data capture are up, and the server is not shutting down). No authentication.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use eventline_model::topics::AGENT_EXECUTIONS;
use serde_json::{Value, json};

use crate::state::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// How long a readiness check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let log = state.executor().log().clone();
    let (log, database) = tokio::join!(
        check(async move { log.watermarks(AGENT_EXECUTIONS, 0).await.map(|_| ()) }),
        check(state.db().ping()),
    );
    let cdc = if state.readiness().cdc_running() { "ok" } else { "down: the capture relay is not running" };
    let draining = state.readiness().draining();
    let ready = log == "ok" && database == "ok" && cdc == "ok" && !draining;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else if draining { "shutting_down" } else { "not_ready" },
            "checks": {"log": log, "database": database, "cdc": cdc},
        })),
    )
}

/// "ok", or "down: <why>" (an error, or no answer within [`CHECK_TIMEOUT`]).
async fn check<E: std::fmt::Display>(probe: impl Future<Output = Result<(), E>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!("down: {e}"),
        Err(_) => format!("down: no answer within {} s", CHECK_TIMEOUT.as_secs()),
    }
}
