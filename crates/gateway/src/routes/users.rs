//! `GET/PUT/DELETE /v1/users/{user_id}`: customer profiles (the `Users` table, with its own
//! column names). Writes reach `db.changes.users` through change data capture.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use eventline_platform::users::{self, Deleted, ProfileUpdate, UserProfile};
use serde::Deserialize;

use super::check_id;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::security::{Caller, SecurityEvent};
use crate::state::AppState;

/// A profile as `PUT` takes it; the table's column names, lower-case accepted too.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[serde(rename = "Email", alias = "email")]
    email: String,
    #[serde(rename = "Name", alias = "name", default)]
    name: Option<String>,
    #[serde(rename = "Phone", alias = "phone", default)]
    phone: Option<String>,
    /// Optional; when present it must equal the path's.
    #[serde(rename = "UserId", alias = "user_id", default)]
    user_id: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<UserProfile>, ApiError> {
    check_id("user_id", &id, 64)?;
    super::require_own(&state, &caller, &id, format!("users/{id}"))?;
    let lookup = id.clone();
    state
        .db()
        .read(move |conn| users::get(conn, &lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user_not_found", format!("no user `{id}`")))
}

pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<(StatusCode, Json<UserProfile>), ApiError> {
    check_id("user_id", &id, 64)?;
    if let Some(b) = &body.user_id
        && *b != id
    {
        return Err(ApiError::invalid_field("UserId", "differs from the user id in the path"));
    }
    super::require_own(&state, &caller, &id, format!("users/{id}"))?;
    let update = validate(body)?;
    let target = id.clone();
    let span = tracing::info_span!("database write", table = "Users");
    let traceparent = crate::wire::traceparent_for(&span, &headers);
    let (profile, created) = state
        .db()
        .call(move |conn| span.in_scope(|| users::put(conn, &target, &update, traceparent.as_deref())))
        .await
        .map_err(ApiError::internal)?;
    let (kind, status) = if created { ("profile.created", 201) } else { ("profile.updated", 200) };
    state
        .inner
        .security
        .record(SecurityEvent::by(&caller, kind, status, "profile written").resource(format!("users/{id}")).user(id));
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(profile)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    check_id("user_id", &id, 64)?;
    let target = id.clone();
    let span = tracing::info_span!("database write", table = "Users");
    let traceparent = crate::wire::traceparent_for(&span, &headers);
    let deleted = state
        .db()
        .call(move |conn| span.in_scope(|| users::delete(conn, &target, traceparent.as_deref())))
        .await
        .map_err(ApiError::internal)?;
    match deleted {
        Deleted::Deleted => {
            // The customer's own keys go with them (their tokens stop at the user check).
            let user = id.clone();
            let revoked =
                state.db().call(move |c| crate::keys::revoke_user(c, &user)).await.map_err(ApiError::internal)?;
            for key_id in &revoked {
                state.inner.keys.write().unwrap_or_else(|p| p.into_inner()).remove(key_id);
                state.inner.sessions.close_key(key_id);
            }
            state.inner.security.record(
                SecurityEvent::by(&caller, "profile.deleted", 204, "profile deleted")
                    .resource(format!("users/{id}"))
                    .user(id),
            );
            Ok(StatusCode::NO_CONTENT)
        }
        Deleted::NotFound => Err(ApiError::not_found("user_not_found", format!("no user `{id}`"))),
        Deleted::HoldsProducts(what) => Err(ApiError::conflict(
            "user_holds_products",
            format!("user `{id}` still holds {}; close them before deleting the profile", what.join(", ")),
        )),
    }
}

fn validate(body: ProfileBody) -> Result<ProfileUpdate, ApiError> {
    let email = body.email.trim().to_owned();
    check_email(&email).map_err(|reason| ApiError::invalid_field("Email", reason))?;
    let name = body.name.unwrap_or_default().trim().to_owned();
    if name.chars().count() > 200 {
        return Err(ApiError::invalid_field("Name", "must be at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("Name", "must not contain control characters"));
    }
    let phone = match body.phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
        Some(p) => {
            check_phone(&p).map_err(|reason| ApiError::invalid_field("Phone", reason))?;
            Some(p)
        }
        None => None,
    };
    Ok(ProfileUpdate { email, name, phone })
}

fn check_email(email: &str) -> Result<(), &'static str> {
    if email.is_empty() {
        return Err("must not be empty");
    }
    if email.len() > 254 {
        return Err("must be at most 254 characters");
    }
    let Some((local, domain)) = email.split_once('@') else { return Err("is not an e-mail address (no `@`)") };
    if local.is_empty() || domain.contains('@') || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("is not an e-mail address");
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err("is not an e-mail address (the domain needs a dot, e.g. example.com)");
    }
    Ok(())
}

fn check_phone(phone: &str) -> Result<(), &'static str> {
    if phone.chars().any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))) {
        return Err("may hold only digits, spaces and + - ( ) .");
    }
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return Err("must have 7 to 15 digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_checks_name_the_reason() {
        assert!(check_email("jane@example.com").is_ok());
        assert!(check_email("jane.example.com").unwrap_err().contains("@"));
        assert!(check_email("jane@localhost").unwrap_err().contains("dot"));
        assert!(check_email("ja ne@example.com").is_err());
        assert!(check_phone("+1 (212) 555-0147").is_ok());
        assert!(check_phone("call me").is_err());
        assert!(check_phone("12345").unwrap_err().contains("7 to 15"));
    }
}
