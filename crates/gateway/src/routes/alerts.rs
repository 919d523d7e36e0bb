//! `GET /v1/alerts` (role `read`): the most recent compliance alerts (`?limit=`, default 50, at
//! most 1000; `?alert_type=`), newest first, each with its delivery state per channel. Alerts
//! never carry the raw value they report.

use axum::Json;
use axum::extract::{Query, State};
use eventline_services::notify::store::{self, AlertView};
use serde_json::{Value, json};

use super::topics::{Fields, Params};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&params, &["limit", "alert_type"])?;
    let limit = match f.get("limit") {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", "must be a number from 1 to 1000"))?,
    };
    let alert_type = f.get("alert_type").map(str::to_owned);
    let alerts: Vec<AlertView> = state
        .db()
        .read(move |c| store::recent(c, limit, alert_type.as_deref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"alerts": alerts})))
}
