//! `GET /v1/analytics/agents` (role `read`): per agent, executions by status, success rate and
//! latency p50/p95/p99/max; per topic, events per second; alerts by type and severity — for the
//! windows 1m, 5m, 1h and all (since the analytics started), or one with `?window=`.
//! `{"generated_at", "windows": [{"window", "from", "to", "agents": […], "alerts": […], "topics": […]}]}`.

use axum::Json;
use axum::extract::{Query, State};
use eventline_services::analytics::{Window, report_from_log};
use serde_json::{Value, json};

use super::topics::{Fields, Params};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn agents(State(state): State<AppState>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&params, &["window"])?;
    let windows = match f.get("window") {
        None => Window::EVERY.to_vec(),
        Some(w) => vec![Window::parse(w).map_err(|e| ApiError::invalid_field("window", e))?],
    };
    let mut out = Vec::new();
    for w in windows {
        let report = match &state.inner.analytics {
            Some(a) => a.report(w).await,
            None => report_from_log(&**state.executor().log(), w).await,
        };
        out.push(report.map_err(ApiError::internal)?);
    }
    Ok(Json(json!({
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "windows": out,
    })))
}
