//! The router and the server: routes, auth per route, body limit, timeout, tracing with the
//! Authorization header marked sensitive, panics turned into 500, graceful shutdown.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Permission, bearer};
use crate::error::ApiError;
use crate::routes;
use crate::security::{Caller, SecurityEvent};
use crate::state::AppState;

/// Every route this build serves, as `METHOD /path` (the 404 message lists them), from the
/// table the OpenAPI document is built from.
pub fn routes() -> Vec<String> {
    crate::openapi::OPERATIONS.iter().map(|o| format!("{} {}", o.method, o.path)).collect()
}

/// The API's router.
pub fn router(state: AppState) -> Router {
    let guarded = |perm: Permission, r: Router<AppState>| {
        r.route_layer(middleware::from_fn_with_state((state.clone(), perm), authorize))
    };
    // Per method, for paths whose methods need different roles.
    let auth = |perm: Permission| middleware::from_fn_with_state((state.clone(), perm), authorize);
    let api = Router::new()
        .merge(guarded(Permission::Query, Router::new().route("/v1/query", post(routes::query::post))))
        .route(
            "/v1/users/{user_id}",
            get(routes::users::get)
                .route_layer(auth(Permission::ReadProfiles))
                .merge(put(routes::users::put).route_layer(auth(Permission::WriteProfiles)))
                .merge(delete(routes::users::delete).route_layer(auth(Permission::DeleteProfiles))),
        )
        .merge(guarded(
            Permission::IssueUserTokens,
            Router::new().route("/v1/users/{user_id}/tokens", post(routes::tokens::post)),
        ))
        .merge(guarded(
            Permission::ReadConversations,
            Router::new().route("/v1/conversations/{conversation_id}", get(routes::conversations::get)),
        ))
        .merge(guarded(
            Permission::Ingest,
            Router::new()
                .route("/v1/integrations/crm/events", post(routes::integrations::crm_events))
                .route("/v1/integrations/market-data", post(routes::integrations::market_data)),
        ))
        .merge(guarded(
            Permission::Admin,
            Router::new()
                .route("/v1/keys", post(routes::keys::post).get(routes::keys::list))
                .route("/v1/keys/{key_id}", delete(routes::keys::delete)),
        ))
        .merge(guarded(
            Permission::ReadAudit,
            Router::new()
                .route("/v1/audit", get(routes::audit::query))
                .route("/v1/audit/verify", get(routes::audit::verify)),
        ))
        .merge(guarded(Permission::ReadAlerts, Router::new().route("/v1/alerts", get(routes::alerts::list))))
        .merge(guarded(
            Permission::ReadAnalytics,
            Router::new().route("/v1/analytics/agents", get(routes::analytics::agents)),
        ))
        .route(
            "/v1/topics",
            get(routes::topics::list)
                .route_layer(auth(Permission::ReadTopics))
                .merge(post(routes::topics::create).route_layer(auth(Permission::Admin))),
        )
        .route("/v1/topics/{topic}", get(routes::topics::describe).route_layer(auth(Permission::ReadTopics)))
        .route(
            "/v1/topics/{topic}/records",
            get(routes::topics::records)
                .route_layer(auth(Permission::ReadTopics))
                .merge(post(routes::topics::produce).route_layer(auth(Permission::Ingest))),
        )
        .route("/v1/topics/{topic}/stream", get(routes::topics::stream).route_layer(auth(Permission::ReadTopics)))
        .route(
            "/v1/session",
            get(crate::session::whoami)
                .route_layer(auth(Permission::ReadTopics))
                .merge(post(crate::session::login).delete(crate::session::logout)),
        )
        .route("/v1/dashboard/stream", get(crate::dashboard::stream).route_layer(auth(Permission::ReadTopics)));
    let timeout = state.inner.options.request_timeout;
    let open = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/", get(crate::dashboard::index))
        .route("/assets/{file}", get(crate::dashboard::asset));
    let open =
        if state.inner.options.metrics_here { open.route("/metrics", get(crate::metrics::render)) } else { open };
    open.merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.inner.options.max_body_bytes))
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(middleware::from_fn(crate::metrics::track))
        .layer(middleware::from_fn_with_state(state.inner.limits.clone(), crate::limits::in_flight))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a handler panicked").into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(http_span).on_response(on_response))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            HeaderName::from_static("x-api-key"),
        ]))
        .with_state(state)
}

/// A router with `/metrics` alone (for `[metrics] listen`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(crate::metrics::render)).with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish, and waits for executions that outlived their request.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let readiness = state.readiness().clone();
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            readiness.set_draining();
        })
        .await?;
    state.wait_for_executions().await;
    Ok(())
}

/// Like [`serve`], over TLS (rustls) with the PEM certificate chain and key in `tls`.
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    tls: axum_server::tls_rustls::RustlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let readiness = state.readiness().clone();
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        readiness.set_draining();
        // Requests in flight finish (the request timeout bounds them).
        stopper.graceful_shutdown(None);
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?.handle(handle).serve(app).await?;
    state.wait_for_executions().await;
    Ok(())
}

/// Loads a PEM certificate chain and private key for [`serve_tls`]; the error names the file.
pub async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, String> {
    let _ = rustls_ring_provider();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| format!("TLS certificate {} / key {}: {e}", cert.display(), key.display()))
}

/// rustls needs one process-wide crypto provider; ring is the one the HTTP clients already use.
fn rustls_ring_provider() -> bool {
    rustls::crypto::ring::default_provider().install_default().is_ok()
}

/// Checks the bearer key and its role for `perm`: 401 without a valid key, 403 when the role
/// does not allow it; both are security events for the audit trail. A key that passes is put in
/// the request's extensions as a [`Caller`] for handlers that decide per resource or record what
/// the caller did.
async fn authorize(
    State((state, perm)): State<(AppState, Permission)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let address = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let refuse = |reason: &'static str| {
        state.inner.security.record(SecurityEvent::auth_failed(
            method.clone(),
            route.clone(),
            reason.to_owned(),
            address,
        ));
        ApiError::unauthorized(reason)
    };
    let key = match req.headers().get(header::AUTHORIZATION) {
        Some(header) => {
            let Ok(text) = header.to_str() else { return Err(refuse("the Authorization header is not text")) };
            let secret = bearer(text).map_err(refuse)?;
            if crate::tokens::is_token(secret) {
                let verified = state.inner.tokens.verify(secret).map_err(refuse)?;
                // Revoking the key that issued a token ends the token too.
                let issuer_live =
                    state.inner.keys.read().unwrap_or_else(|p| p.into_inner()).by_id(&verified.issued_by).is_some();
                if !issuer_live {
                    return Err(refuse("the key that issued this user token was revoked or expired"));
                }
                // Its user must still be the one it was issued for (not deleted, not made again).
                let user = verified.key.user_id.clone().unwrap_or_default();
                let profile = state.db().read(move |c| eventline_platform::users::get(c, &user)).await;
                let current = matches!(&profile, Ok(Ok(Some(p))) if p.created_at == verified.user_created_at);
                if !current {
                    return Err(refuse("the user of this token no longer exists"));
                }
                verified.key
            } else {
                let keys = state.inner.keys.read().unwrap_or_else(|p| p.into_inner());
                keys.authenticate_key(secret).cloned().ok_or_else(|| refuse("unknown or expired API key"))?
            }
        }
        // The dashboard's session cookie, on reads only: a cookie the browser adds by itself
        // must never be able to change anything.
        None => match crate::session::token(req.headers()).filter(|_| req.method() == Method::GET) {
            Some(token) => {
                let key_id = state.inner.sessions.get(token).map(|(id, _)| id);
                let keys = state.inner.keys.read().unwrap_or_else(|p| p.into_inner());
                // A revoked key's sessions end with it.
                key_id
                    .and_then(|id| keys.by_id(&id).cloned())
                    .ok_or_else(|| refuse("the session expired or was ended; log in again"))?
            }
            None => return Err(refuse("missing `Authorization: Bearer <key>` header")),
        },
    };
    state.inner.limits.check(&key)?;
    let caller = Caller { key, address, method, route };
    if !caller.key.role.allows(perm) {
        let roles: Vec<&str> = perm.roles().iter().map(|r| r.as_str()).collect();
        tracing::info!(key_id = %caller.key.id, role = caller.key.role.as_str(), "forbidden: role cannot {}", perm.describe());
        state.inner.security.record(SecurityEvent::by(
            &caller,
            "authz.denied",
            403,
            format!("role `{}` cannot {}", caller.key.role.as_str(), perm.describe()),
        ));
        return Err(ApiError::forbidden(format!(
            "a key with role `{}` cannot {}; it needs role {}",
            caller.key.role.as_str(),
            perm.describe(),
            roles.join(" or ")
        )));
    }
    // The handlers that decide per resource (which topic a key may append to) read the key.
    req.extensions_mut().insert(caller.key.clone());
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The span of one request, named by its route template; an incoming W3C `traceparent` is its
/// parent (the caller's trace continues).
fn http_span(req: &Request) -> tracing::Span {
    let route = req.extensions().get::<MatchedPath>().map_or("(unmatched)", |m| m.as_str());
    let span = tracing::info_span!(
        "http request",
        otel.name = %format!("{} {route}", req.method()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(tp) = req.headers().get(eventline_pipeline::TRACEPARENT_HEADER).and_then(|v| v.to_str().ok()) {
        eventline_telemetry::set_parent(&span, tp);
    }
    span
}

fn on_response(response: &Response, _latency: Duration, span: &tracing::Span) {
    span.record("http.response.status_code", response.status().as_u16());
}

async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", limit.as_secs_f64()),
        )
        .into_response(),
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        "no_route",
        format!("no endpoint {method} {}; this build serves {}", uri.path(), routes().join(", ")),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}
