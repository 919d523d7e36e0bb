//! `POST /v1/users/{user_id}/tokens` (role `agent` or `admin`): a short-lived signed token with
//! which the bank's front end lets one signed-in customer call the API as that customer only
//! (role `user`). Body (optional): `{"ttl": "15m"}` (at most 24 h). Answer: `{"token",
//! "token_type": "Bearer", "user_id", "expires_at"}`. 404 for an unknown user.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use eventline_platform::users;
use serde::Deserialize;
use serde_json::{Value, json};

use super::check_id;
use crate::error::ApiError;
use crate::security::{Caller, SecurityEvent};
use crate::state::AppState;
use crate::tokens::{DEFAULT_TTL, MAX_TTL};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// How long the token lives, e.g. `15m`, `1h` (default 15m, at most 24h).
    #[serde(default)]
    ttl: Option<String>,
}

pub async fn post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The body is optional.
    let request: TokenRequest =
        if body.iter().all(u8::is_ascii_whitespace) { TokenRequest::default() } else { crate::json::parse(&body)? };
    check_id("user_id", &user_id, 64)?;
    super::require_own(&state, &caller, &user_id, format!("users/{user_id}"))?;
    let ttl = match request.ttl {
        None => DEFAULT_TTL,
        Some(text) => humantime::parse_duration(&text)
            .ok()
            .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_TTL)
            .ok_or_else(|| ApiError::invalid_field("ttl", "give a duration from 1s to 24h, e.g. 15m"))?,
    };
    let lookup = user_id.clone();
    let profile = state
        .db()
        .read(move |c| users::get(c, &lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let Some(profile) = profile else {
        return Err(ApiError::not_found("user_not_found", format!("no user `{user_id}`")));
    };
    let (token, exp) = state.inner.tokens.issue(&user_id, &profile.created_at, &caller.key.id, ttl);
    state.inner.security.record(
        SecurityEvent::by(&caller, "token.issued", 201, format!("issued a user token valid for {} s", ttl.as_secs()))
            .resource(format!("users/{user_id}"))
            .user(user_id.clone()),
    );
    let expires_at = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "token_type": "Bearer", "user_id": user_id, "expires_at": expires_at})),
    ))
}
