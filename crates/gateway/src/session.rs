//! Browser sessions for the dashboard. A browser's `EventSource` cannot send an `Authorization`
//! header, so the dashboard's login form exchanges a key (role `read` or `admin`) for a
//! short-lived session cookie: `HttpOnly` (scripts cannot read it), `SameSite=Strict` (other sites
//! cannot make the browser send it). The cookie is honoured on `GET` requests only, so it can read
//! but never change anything. A session ends when it expires, at logout, or when its key is revoked.
//!
//! - `POST /v1/session` `{"key": "elk_…"}` → 200 `{"key_id", "role", "expires_at"}` + `Set-Cookie`;
//!   401 for an unknown key, 403 for a key whose role cannot read.
//! - `GET /v1/session` → who the cookie (or bearer key) is; 401 without a live session.
//! - `DELETE /v1/session` → 204, the session ended and the cookie cleared.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Permission, digest};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::security::SecurityEvent;
use crate::state::AppState;

/// The cookie's name.
pub const COOKIE: &str = "eventline_session";

/// Sessions kept at most; the ones closest to expiry make room for new ones.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
struct Session {
    key_id: String,
    expires: Instant,
    expires_at: String,
}

/// The live sessions, by the SHA-256 of their token (a memory dump does not yield cookies).
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    by_digest: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, by_digest: Mutex::default() }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `key_id`: its token (the cookie's value) and when it expires (RFC 3339).
    pub fn open(&self, key_id: &str) -> (String, String) {
        let bytes: [u8; 32] = rand::rng().random();
        let token = eventline_platform::keyfile::hex(&bytes);
        let expires_at = (chrono::Utc::now() + self.ttl).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let now = Instant::now();
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let session = Session { key_id: key_id.to_owned(), expires: now + self.ttl, expires_at: expires_at.clone() };
        map.insert(digest(&token), session);
        (token, expires_at)
    }

    /// The key id and expiry of a live session.
    pub fn get(&self, token: &str) -> Option<(String, String)> {
        let d = digest(token);
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&d) {
            Some(s) if s.expires > Instant::now() => Some((s.key_id.clone(), s.expires_at.clone())),
            Some(_) => {
                map.remove(&d);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, token: &str) {
        self.by_digest.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest(token));
    }

    /// Ends every session of `key_id` (the key was revoked).
    pub fn close_key(&self, key_id: &str) {
        self.by_digest.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, s| s.key_id != key_id);
    }
}

/// The session token in the request's `Cookie` headers.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"))
        .expect("a cookie of hex digits is a header value")
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// An API key with role `read` or `admin`.
    pub key: String,
}

/// `POST /v1/session`.
pub async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let address = connect.map(|c| c.0.0);
    let key = {
        let keys = state.inner.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.authenticate_key(body.key.trim()).cloned()
    };
    let Some(key) = key else {
        state.inner.security.record(SecurityEvent::auth_failed(
            "POST".into(),
            "/v1/session".into(),
            "unknown API key at login".into(),
            address,
        ));
        return Err(ApiError::unauthorized(
            "unknown API key; use a key with role `read` (eventline keys create --role read)",
        ));
    };
    if !key.role.allows(Permission::ReadTopics) {
        return Err(ApiError::forbidden(format!(
            "a key with role `{}` cannot open the dashboard; it needs role read or admin",
            key.role.as_str()
        )));
    }
    let (token, expires_at) = state.inner.sessions.open(&key.id);
    let mut response =
        Json(json!({"key_id": key.id, "role": key.role.as_str(), "expires_at": expires_at})).into_response();
    let secure = state.inner.options.tls;
    response.headers_mut().insert(header::SET_COOKIE, cookie(&token, state.inner.sessions.ttl().as_secs(), secure));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/session` (behind the read permission: a live cookie or a bearer key).
pub async fn whoami(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<crate::security::Caller>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let expires_at = token(&headers).and_then(|t| state.inner.sessions.get(t)).map(|(_, at)| at);
    Json(json!({"key_id": caller.key.id, "role": caller.key.role.as_str(), "expires_at": expires_at}))
}

/// `DELETE /v1/session`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(t) = token(&headers) {
        state.inner.sessions.close(t);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie("", 0, state.inner.options.tls));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_it_expires_is_closed_or_its_key_is_revoked() {
        let s = Sessions::new(Duration::from_secs(60));
        let (t, _) = s.open("elk_aaaa");
        assert_eq!(s.get(&t).unwrap().0, "elk_aaaa");
        assert!(s.get("00").is_none());
        s.close(&t);
        assert!(s.get(&t).is_none());
        let (t2, _) = s.open("elk_bbbb");
        s.close_key("elk_bbbb");
        assert!(s.get(&t2).is_none());
        let short = Sessions::new(Duration::from_millis(1));
        let (t3, _) = short.open("elk_cccc");
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get(&t3).is_none());
    }

    #[test]
    fn the_token_is_read_from_the_cookie_header_only_when_well_formed() {
        let mut h = HeaderMap::new();
        let t = "ab".repeat(32);
        h.insert(header::COOKIE, format!("theme=dark; {COOKIE}={t}; x=1").parse().unwrap());
        assert_eq!(token(&h), Some(t.as_str()));
        h.insert(header::COOKIE, format!("{COOKIE}=../../etc").parse().unwrap());
        assert_eq!(token(&h), None);
    }
}
