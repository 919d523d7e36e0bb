//! `GET /openapi.json`: the API as OpenAPI 3.1, built with `utoipa` from [`OPERATIONS`] — one
//! entry per route of the router, naming its permission (and so the roles that may call it), its
//! request body schema, what it answers and its errors — and the request types' own `ToSchema`
//! derives. [`crate::server::routes`] is derived from the same table, and a test checks that every
//! route the router serves is in the document.

use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required, Schema,
};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::{Permission, Role};

/// A request body.
#[derive(Clone, Copy, Debug)]
pub enum Body {
    None,
    Query,
    Profile,
    NewKey,
    Login,
    Token,
    /// A JSON object or an array of them (integrations, produce, topic creation).
    Events,
}

/// One operation of the API.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    /// `None`: no key needed.
    pub permission: Option<Permission>,
    pub summary: &'static str,
    pub body: Body,
    /// The success status and what it carries.
    pub ok: (u16, &'static str),
    /// Error statuses beyond 401/403 (which every keyed route has).
    pub errors: &'static [u16],
}

const fn op(
    method: &'static str,
    path: &'static str,
    permission: Option<Permission>,
    summary: &'static str,
    body: Body,
    ok: (u16, &'static str),
    errors: &'static [u16],
) -> Operation {
    Operation { method, path, permission, summary, body, ok, errors }
}

use Permission as P;

/// Every route of the router.
pub const OPERATIONS: [Operation; 31] = [
    op("GET", "/healthz", None, "Liveness", Body::None, (200, "`{\"status\": \"ok\"}`"), &[]),
    op(
        "GET",
        "/readyz",
        None,
        "Readiness: log, database and capture up",
        Body::None,
        (200, "`{status, checks}`; 503 when not ready"),
        &[503],
    ),
    op(
        "GET",
        "/metrics",
        None,
        "Prometheus metrics (text format)",
        Body::None,
        (200, "Prometheus text exposition"),
        &[],
    ),
    op("GET", "/openapi.json", None, "This document", Body::None, (200, "OpenAPI 3.1"), &[]),
    op(
        "POST",
        "/v1/query",
        Some(P::Query),
        "Ask the agents: planner → agent → governance",
        Body::Query,
        (200, "`{execution_id, agent_id, status, output, duration_ms, redactions, conversation_id}`"),
        &[400, 404, 409, 413, 415, 422, 503],
    ),
    op(
        "GET",
        "/v1/users/{user_id}",
        Some(P::ReadProfiles),
        "A customer profile (the Users row); a user-bound caller only its own (403 otherwise)",
        Body::None,
        (200, "`{UserId, Email, Name, Phone, CreatedAt, UpdatedAt}`"),
        &[404, 422],
    ),
    op(
        "PUT",
        "/v1/users/{user_id}",
        Some(P::WriteProfiles),
        "Create (201) or replace (200) a profile; reaches db.changes.users through CDC; a user-bound caller only its own",
        Body::Profile,
        (200, "the stored profile"),
        &[400, 413, 415, 422],
    ),
    op(
        "DELETE",
        "/v1/users/{user_id}",
        Some(P::DeleteProfiles),
        "Delete a customer (admin only; 409 while it holds products)",
        Body::None,
        (204, "deleted"),
        &[404, 409, 422],
    ),
    op(
        "GET",
        "/v1/conversations/{conversation_id}",
        Some(P::ReadConversations),
        "A conversation's turns, as stored (redacted)",
        Body::None,
        (200, "`{conversation_id, user_id, turns}`"),
        &[404, 422],
    ),
    op(
        "POST",
        "/v1/integrations/crm/events",
        Some(P::Ingest),
        "CRM events, one or up to 1,000, all or nothing (`Idempotency-Key` honoured)",
        Body::Events,
        (200, "`{accepted, records, redactions, alerts}`"),
        &[400, 409, 413, 415, 422],
    ),
    op(
        "POST",
        "/v1/integrations/market-data",
        Some(P::Ingest),
        "Market-data ticks, one or up to 1,000, all or nothing (`Idempotency-Key` honoured)",
        Body::Events,
        (200, "`{accepted, records, redactions, alerts}`"),
        &[400, 409, 413, 415, 422],
    ),
    op(
        "POST",
        "/v1/keys",
        Some(P::Admin),
        "A new API key; the secret is in this answer only",
        Body::NewKey,
        (201, "`{key_id, role, key}`"),
        &[400, 422],
    ),
    op(
        "GET",
        "/v1/keys",
        Some(P::Admin),
        "Every key: id, role, user, created, expiry (never a secret)",
        Body::None,
        (200, "`{keys: [{key_id, role, user_id, created_at, expires_at, expired, bootstrap}]}`"),
        &[],
    ),
    op(
        "POST",
        "/v1/users/{user_id}/tokens",
        Some(P::IssueUserTokens),
        "A short-lived signed token (JWT HS256) acting as role user for this user only; body `{ttl?}`",
        Body::Token,
        (201, "`{token, token_type, user_id, expires_at}`"),
        &[404, 422],
    ),
    op(
        "DELETE",
        "/v1/keys/{key_id}",
        Some(P::Admin),
        "Revoke a key at once",
        Body::None,
        (204, "revoked"),
        &[404, 409, 422],
    ),
    op(
        "GET",
        "/v1/audit",
        Some(P::ReadAudit),
        "Audit records: ?entity=&topic=&since=&until=&limit=&order=newest|oldest&cursor=",
        Body::None,
        (
            200,
            "`{records: [{seq, topic, partition, offset, when, actor, subject, resource, action, outcome, hash, record}], next_cursor}`",
        ),
        &[422],
    ),
    op(
        "GET",
        "/v1/audit/verify",
        Some(P::ReadAudit),
        "The audit trail's integrity check",
        Body::None,
        (200, "`{ok, records, first_seq, last_seq, head, checkpoints, last_checkpoint, public_key, first_bad}`"),
        &[],
    ),
    op(
        "GET",
        "/v1/alerts",
        Some(P::ReadAlerts),
        "Recent compliance alerts with their delivery state per channel: ?limit=&alert_type=",
        Body::None,
        (200, "`{alerts: [{alert_id, alert_type, severity, component, field, timestamp, alert, deliveries}]}`"),
        &[422],
    ),
    op(
        "GET",
        "/v1/analytics/agents",
        Some(P::ReadAnalytics),
        "Per-agent counts, success rate, latency p50/p95/p99/max; events/s per topic; alerts: ?window=1m|5m|1h|all",
        Body::None,
        (200, "`{generated_at, windows: [{window, from, to, agents, alerts, topics}]}`"),
        &[422],
    ),
    op(
        "GET",
        "/v1/topics",
        Some(P::ReadTopics),
        "Topics with their spec and per-partition offsets",
        Body::None,
        (200, "`{topics: [{spec, partitions}]}`"),
        &[],
    ),
    op(
        "POST",
        "/v1/topics",
        Some(P::Admin),
        "Create a topic (a topic spec)",
        Body::Events,
        (201, "the topic's description"),
        &[400, 409, 422],
    ),
    op(
        "GET",
        "/v1/topics/{topic}",
        Some(P::ReadTopics),
        "One topic",
        Body::None,
        (200, "`{spec, partitions}`"),
        &[404],
    ),
    op(
        "GET",
        "/v1/topics/{topic}/records",
        Some(P::ReadTopics),
        "Records of a partition: ?partition=&offset=|since=&limit=",
        Body::None,
        (
            200,
            "`{topic, partition, records: [{partition, offset, timestamp_ms, key, value}], next_offset, end_offset}`",
        ),
        &[404, 422],
    ),
    op(
        "POST",
        "/v1/topics/{topic}/records",
        Some(P::Ingest),
        "Append NDJSON or a JSON array: ?key=&partition=&acks=&stamp=&header=N=V",
        Body::Events,
        (200, "`{records: [{partition, offset}]}`"),
        &[400, 403, 404, 413, 422],
    ),
    op(
        "GET",
        "/v1/topics/{topic}/stream",
        Some(P::ReadTopics),
        "Server-Sent Events, one `record` event per record: ?from=beginning|offset=|since=|offsets=|partition=",
        Body::None,
        (200, "text/event-stream"),
        &[404, 422],
    ),
    op("GET", "/", None, "The live dashboard (HTML; log in with a `read` key)", Body::None, (200, "text/html"), &[]),
    op(
        "GET",
        "/assets/{file}",
        None,
        "The dashboard's script and style sheet (embedded)",
        Body::None,
        (200, "app.js or app.css"),
        &[404],
    ),
    op(
        "POST",
        "/v1/session",
        None,
        "Dashboard login: a `read` or `admin` key for a short-lived HttpOnly, SameSite=Strict session cookie (honoured on GET only)",
        Body::Login,
        (200, "`{key_id, role, expires_at}` and `Set-Cookie`"),
        &[400, 401, 403, 415, 422],
    ),
    op(
        "GET",
        "/v1/session",
        Some(P::ReadTopics),
        "Who the session cookie (or bearer key) is",
        Body::None,
        (200, "`{key_id, role, expires_at}`"),
        &[],
    ),
    op(
        "DELETE",
        "/v1/session",
        None,
        "Dashboard logout: ends the session, clears the cookie",
        Body::None,
        (204, "logged out"),
        &[],
    ),
    op(
        "GET",
        "/v1/dashboard/stream",
        Some(P::ReadTopics),
        "Server-Sent Events: a `snapshot` every 2 s (topic rates, consumer lag, agents, alerts, audit, CDC lag, notifications)",
        Body::None,
        (200, "text/event-stream"),
        &[],
    ),
];

/// The error every failure answers with.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `error` of an [`ErrorBody`].
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, e.g. `unauthorized`, `forbidden`, `invalid_field`, `no_route`.
    pub code: String,
    /// What went wrong and what to do; never echoes the offending value or a secret.
    pub message: String,
    /// The request field (JSON pointer or name) the error is about, for 400/422.
    pub field: Option<String>,
    /// More, e.g. every schema violation of a refused event.
    pub details: Option<Value>,
}

fn method(m: &str) -> HttpMethod {
    match m {
        "GET" => HttpMethod::Get,
        "PUT" => HttpMethod::Put,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Post,
    }
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn events_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "A JSON object, or an array of them (NDJSON for topic records); see `eventline schema TOPIC`",
        ))
        .into()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Malformed JSON",
        401 => "No valid `Authorization: Bearer <key>`",
        403 => "The key's role does not allow this",
        404 => "Not found",
        409 => "Conflict with the current state",
        413 => "Body over the size limit (or too many events)",
        415 => "Content-Type is not JSON",
        422 => "A field is invalid (the error names it)",
        503 => "Not ready, timed out or the log is unavailable",
        _ => "Error",
    }
}

/// The document.
pub fn document() -> OpenApi {
    let mut items: std::collections::BTreeMap<&str, PathItem> = std::collections::BTreeMap::new();
    for o in OPERATIONS {
        let roles: Vec<&str> = o
            .permission
            .map_or_else(Vec::new, |p| Role::ALL.into_iter().filter(|r| r.allows(p)).map(Role::as_str).collect());
        let who = match o.permission {
            None => "No key needed.".to_owned(),
            Some(p) => format!("Roles: {} ({}).", roles.join(", "), p.describe()),
        };
        let mut b = OperationBuilder::new()
            .summary(Some(o.summary))
            .description(Some(who))
            .operation_id(Some(format!("{} {}", o.method, o.path)))
            .tag(o.path.split('/').nth(2).unwrap_or("platform"));
        for segment in o.path.split('/').filter(|s| s.starts_with('{')) {
            b = b.parameter(
                ParameterBuilder::new()
                    .name(segment.trim_matches(['{', '}']))
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(String::schema())),
            );
        }
        let body = match o.body {
            Body::None => None,
            Body::Query => Some(schema_ref("QueryBody")),
            Body::Profile => Some(schema_ref("ProfileBody")),
            Body::NewKey => Some(schema_ref("NewKey")),
            Body::Login => Some(schema_ref("LoginBody")),
            Body::Token => Some(schema_ref("TokenRequest")),
            Body::Events => Some(RefOr::T(events_schema())),
        };
        if let Some(schema) = body {
            b = b.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                    .required(Some(if matches!(o.body, Body::Token) { Required::False } else { Required::True }))
                    .build(),
            ));
        }
        b = b.response(o.ok.0.to_string(), ResponseBuilder::new().description(o.ok.1).build());
        let mut errors: Vec<u16> = o.errors.to_vec();
        if o.permission.is_some() {
            errors.extend([401, 403]);
            b = b.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            b = b.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(reason(status))
                    .content("application/json", ContentBuilder::new().schema(Some(schema_ref("ErrorBody"))).build())
                    .build(),
            );
        }
        let item = PathItem::new(method(o.method), b.build());
        match items.get_mut(o.path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                items.insert(o.path, item);
            }
        }
    }
    let mut paths = PathsBuilder::new();
    for (path, item) in items {
        paths = paths.path(path, item);
    }
    let components = ComponentsBuilder::new()
        .schema_from::<crate::routes::query::QueryBody>()
        .schema_from::<crate::routes::users::ProfileBody>()
        .schema_from::<crate::routes::keys::NewKey>()
        .schema_from::<crate::session::LoginBody>()
        .schema_from::<crate::routes::tokens::TokenRequest>()
        .schema_from::<Role>()
        .schema_from::<ErrorBody>()
        .schema_from::<ErrorDetail>()
        .security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("eventline")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The event-streaming backbone's HTTP API. Errors are `{\"error\": {\"code\", \"message\", \"field\"?, \"details\"?}}`."))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(|| serde_json::to_value(document()).expect("the document serialises")).clone())
}
