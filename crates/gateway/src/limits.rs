//! Resource limits (OWASP API4): a request rate per key (a lower one per end user: role `user`
//! keys and user tokens, counted per user), a ceiling on requests in flight for the whole server,
//! and Server-Sent Event streams capped per key and in total, each with a maximum lifetime.
//! Going over a rate is 429 with `Retry-After`; a full server is 503 with `Retry-After`; a stream
//! over its cap is 429.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::auth::ApiKey;
use crate::error::ApiError;

/// The limits' settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitOptions {
    /// Requests per second per service key (admin, agent, ingest, read); bursts of twice that.
    pub per_key_per_s: u32,
    /// Requests per second per end user (role `user` keys and user tokens); bursts of twice that.
    pub per_user_per_s: u32,
    /// Requests in flight in the whole server.
    pub max_in_flight: usize,
    /// Open event streams per key, and in all.
    pub max_streams_per_key: usize,
    pub max_streams: usize,
    /// A stream ends after this long (the client reconnects, and is checked again).
    pub stream_lifetime: Duration,
}

impl Default for LimitOptions {
    fn default() -> Self {
        Self {
            per_key_per_s: 10_000,
            per_user_per_s: 20,
            max_in_flight: 1024,
            max_streams_per_key: 8,
            max_streams: 256,
            stream_lifetime: Duration::from_secs(3600),
        }
    }
}

/// The server's limits and their state.
#[derive(Debug)]
pub struct Limits {
    options: LimitOptions,
    per_key: DefaultKeyedRateLimiter<String>,
    per_user: DefaultKeyedRateLimiter<String>,
    in_flight: Arc<Semaphore>,
    streams: Mutex<HashMap<String, usize>>,
    /// Checks since the rate state was last tidied.
    checks: std::sync::atomic::AtomicU64,
}

fn quota(per_s: u32) -> Quota {
    let rate = NonZeroU32::new(per_s.max(1)).expect("at least 1");
    Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::new(2).expect("2")))
}

impl Limits {
    pub fn new(options: LimitOptions) -> Self {
        Self {
            options,
            per_key: RateLimiter::keyed(quota(options.per_key_per_s)),
            per_user: RateLimiter::keyed(quota(options.per_user_per_s)),
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            streams: Mutex::default(),
            checks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn options(&self) -> &LimitOptions {
        &self.options
    }

    /// Counts one request of `key` against its rate: 429 with `Retry-After` when it is over.
    pub fn check(&self, key: &ApiKey) -> Result<(), ApiError> {
        // Now and then, forget keys and users not seen lately (the maps would only grow).
        if self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 65_536 == 65_535 {
            self.tidy();
        }
        let result = match &key.user_id {
            Some(user) => self.per_user.check_key(&format!("user:{user}")),
            None => self.per_key.check_key(&key.id),
        };
        result.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests for this key; try again in {} ms", wait.as_millis().max(1)),
            )
            .retry_after(wait.as_secs_f64().ceil() as u64)
        })
    }

    /// A place for one more event stream of `key_id`; released when the permit is dropped.
    pub fn open_stream(self: &Arc<Self>, key_id: &str) -> Result<StreamPermit, ApiError> {
        let mut open = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(key_id).copied().unwrap_or(0);
        let too_many =
            |what: String| ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", what).retry_after(5);
        if total >= self.options.max_streams {
            return Err(too_many(format!("the server has {total} event streams open, its maximum; try again later")));
        }
        if mine >= self.options.max_streams_per_key {
            return Err(too_many(format!(
                "this key has {mine} event streams open, its maximum; close one (gateway.max_streams_per_key)"
            )));
        }
        open.insert(key_id.to_owned(), mine + 1);
        Ok(StreamPermit { limits: self.clone(), key_id: key_id.to_owned() })
    }

    /// Open streams in all (for tests and status).
    pub fn open_streams(&self) -> usize {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// Forgets rate state of keys not seen lately.
    pub fn tidy(&self) {
        self.per_key.retain_recent();
        self.per_user.retain_recent();
    }
}

/// One open event stream; dropping it frees its place.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<Limits>,
    key_id: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key_id);
            }
        }
    }
}

/// Waits for room in a stream's channel while `alive()` holds and until `ends_at`; `None` when the
/// stream must end (its key revoked, its session ended, its lifetime over, its client gone). A
/// client that stops reading cannot keep a stream past those.
pub async fn room<'a, T>(
    tx: &'a tokio::sync::mpsc::Sender<T>,
    ends_at: std::time::Instant,
    alive: impl Fn() -> bool,
) -> Option<tokio::sync::mpsc::Permit<'a, T>> {
    loop {
        let now = std::time::Instant::now();
        if !alive() || now >= ends_at {
            return None;
        }
        match tokio::time::timeout((ends_at - now).min(Duration::from_secs(1)), tx.reserve()).await {
            Ok(Ok(permit)) => return Some(permit),
            Ok(Err(_)) => return None,
            Err(_) => continue,
        }
    }
}

/// The ceiling on requests in flight: 503 with `Retry-After: 1` when the server is full.
pub async fn in_flight(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    match limits.in_flight.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(req).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("the server has {} requests in flight, its maximum; try again", limits.options.max_in_flight),
        )
        .retry_after(1)
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn key(id: &str, user: Option<&str>) -> ApiKey {
        ApiKey {
            id: id.into(),
            sha256: String::new(),
            role: if user.is_some() { Role::User } else { Role::Agent },
            user_id: user.map(str::to_owned),
            expires_at_ms: None,
        }
    }

    #[test]
    fn a_key_over_its_rate_gets_429_with_retry_after_and_others_are_not_affected() {
        let limits = Limits::new(LimitOptions { per_key_per_s: 5, per_user_per_s: 2, ..LimitOptions::default() });
        let busy = key("elk_busy0000", None);
        let ok = (0..30).filter(|_| limits.check(&busy).is_ok()).count();
        assert_eq!(ok, 10, "a burst of twice the rate");
        let e = limits.check(&busy).unwrap_err();
        assert_eq!((e.status, e.retry_after), (StatusCode::TOO_MANY_REQUESTS, Some(1)));
        assert!(limits.check(&key("elk_other000", None)).is_ok());
        // End users are counted per user, whichever key or token they come with.
        let a = key("utk_aaaa", Some("u-1"));
        let b = key("utk_bbbb", Some("u-1"));
        assert_eq!((0..10).filter(|i| limits.check(if i % 2 == 0 { &a } else { &b }).is_ok()).count(), 4);
    }

    #[test]
    fn streams_are_capped_per_key_and_in_all_and_freed_when_dropped() {
        let limits =
            Arc::new(Limits::new(LimitOptions { max_streams_per_key: 2, max_streams: 3, ..LimitOptions::default() }));
        let a1 = limits.open_stream("a").unwrap();
        let _a2 = limits.open_stream("a").unwrap();
        assert_eq!(limits.open_stream("a").unwrap_err().code, "too_many_streams");
        let _b1 = limits.open_stream("b").unwrap();
        assert!(limits.open_stream("c").unwrap_err().message.contains("the server"));
        drop(a1);
        assert_eq!(limits.open_streams(), 2);
        assert!(limits.open_stream("c").is_ok());
    }
}
