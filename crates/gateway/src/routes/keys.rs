//! `POST /v1/keys` `{role, user_id?, expires_in?}` (admin): a new API key; the secret is in this
//! response only. Role `user` needs the `user_id` it is bound to; `expires_in` (`30d`, `12h`)
//! makes it expire. `GET /v1/keys` (admin): every key — id, role, user, created, expiry — never a
//! secret or digest. `DELETE /v1/keys/{key_id}` (admin): revokes a key at once, with its dashboard
//! sessions, its open streams and the user tokens it issued. Creating and revoking are security
//! events.

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
    /// The user a `user` key acts for (required for that role, refused for the others).
    #[serde(default)]
    user_id: Option<String>,
    /// How long until it expires, e.g. `30d`, `12h` (default: never).
    #[serde(default)]
    expires_in: Option<String>,
}

/// `GET /v1/keys`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let keys = state.db().read(keys::list).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    Ok(Json(json!({"keys": keys})))
}

pub async fn post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = body.role;
    let user_id = match (role, body.user_id) {
        (Role::User, Some(u)) => {
            check_id("user_id", &u, 64)?;
            Some(u)
        }
        (Role::User, None) => {
            return Err(ApiError::invalid_field(
                "user_id",
                "a key with role `user` acts for one user: give its user_id",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid_field("user_id", "only a key with role `user` is bound to a user"));
        }
        (_, None) => None,
    };
    let expires_at_ms = body
        .expires_in
        .map(|text| {
            humantime::parse_duration(&text)
                .ok()
                .filter(|d| !d.is_zero() && d.as_secs() <= 10 * 365 * 86_400)
                .map(|d| chrono::Utc::now().timestamp_millis() + d.as_millis() as i64)
                .ok_or_else(|| {
                    ApiError::invalid_field("expires_in", "give a duration such as 30d or 12h (at most 10 years)")
                })
        })
        .transpose()?;
    if let Some(u) = &user_id {
        let lookup = u.clone();
        let exists = state
            .db()
            .read(move |c| eventline_platform::users::exists(c, &lookup))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        if !exists {
            return Err(ApiError::not_found("user_not_found", format!("no user `{u}`")));
        }
    }
    let bound = user_id.clone();
    let (secret, key) = state
        .db()
        .call(move |conn| keys::create(conn, role, bound.as_deref(), expires_at_ms))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(key_id = %key.id, role = role.as_str(), "API key created");
    state.inner.keys.write().unwrap_or_else(|p| p.into_inner()).insert(key.clone());
    state.inner.security.record(
        SecurityEvent::by(&caller, "key.created", 201, format!("created a key with role `{}`", role.as_str()))
            .resource(format!("keys/{}", key.id)),
    );
    let expires_at = key
        .expires_at_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    Ok((
        StatusCode::CREATED,
        Json(json!({"key_id": key.id, "role": role, "user_id": user_id, "expires_at": expires_at, "key": secret})),
    ))
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
