//! `POST /v1/keys` `{role}` (admin): a new API key. The secret is in this response only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Role;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::keys;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    role: Role,
}

pub async fn post(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = body.role;
    let (secret, key) = state.db().call(move |conn| keys::create(conn, role)).await.map_err(ApiError::internal)?;
    tracing::info!(key_id = %key.id, role = role.as_str(), "API key created");
    state.inner.keys.write().unwrap_or_else(|p| p.into_inner()).insert(key.clone());
    Ok((StatusCode::CREATED, Json(json!({"key_id": key.id, "role": role, "key": secret}))))
}
