//! `GET /healthz` (the process answers) and `GET /readyz` (the log, the database and change
//! data capture are up, and the server is not shutting down). No authentication.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use eventline_model::topics::AGENT_EXECUTIONS;
use serde_json::{Value, json};

use crate::state::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let log = match state.executor().log().describe_topic(AGENT_EXECUTIONS).await {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("down: {e}"),
    };
    let database = match state.db().ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("down: {e}"),
    };
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
