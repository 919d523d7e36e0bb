//! `POST /v1/keys` `{role}` (admin): a new API key; the secret is in this response only.
//! `DELETE /v1/keys/{key_id}` (admin): revokes a key at once. Both are security events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::check_id;
use crate::auth::Role;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::keys;
use crate::security::{Caller, SecurityEvent};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    role: Role,
}

pub async fn post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = body.role;
    let (secret, key) = state.db().call(move |conn| keys::create(conn, role)).await.map_err(ApiError::internal)?;
    tracing::info!(key_id = %key.id, role = role.as_str(), "API key created");
    state.inner.keys.write().unwrap_or_else(|p| p.into_inner()).insert(key.clone());
    state.inner.security.record(
        SecurityEvent::by(&caller, "key.created", 201, format!("created a key with role `{}`", role.as_str()))
            .resource(format!("keys/{}", key.id)),
    );
    Ok((StatusCode::CREATED, Json(json!({"key_id": key.id, "role": role, "key": secret}))))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_id("key_id", &key_id, 64)?;
    if key_id == caller.key.id {
        return Err(ApiError::conflict(
            "revoking_own_key",
            "a key cannot revoke itself; use another admin key (the admin key rotates by deleting admin.key and restarting)",
        ));
    }
    let id = key_id.clone();
    match state.db().call(move |conn| keys::revoke(conn, &id)).await.map_err(ApiError::internal)? {
        keys::Revoked::Revoked => {}
        keys::Revoked::NotFound => {
            return Err(ApiError::not_found("key_not_found", format!("no API key `{key_id}`")));
        }
        keys::Revoked::Bootstrap => {
            return Err(ApiError::conflict(
                "bootstrap_key",
                "this is the data directory's admin.key: revoking it here would not survive a restart; \
                 rotate it by deleting admin.key and restarting `eventline up`",
            ));
        }
    }
    state.inner.keys.write().unwrap_or_else(|p| p.into_inner()).remove(&key_id);
    state.inner.sessions.close_key(&key_id);
    tracing::info!(key_id = %key_id, "API key revoked");
    state
        .inner
        .security
        .record(SecurityEvent::by(&caller, "key.revoked", 204, "revoked a key").resource(format!("keys/{key_id}")));
    Ok(StatusCode::NO_CONTENT)
}
