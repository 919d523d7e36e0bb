//! `POST /v1/integrations/crm/events` and `POST /v1/integrations/market-data`: one event object
//! or a JSON array of them, taken all-or-nothing (see `eventline_platform::integrations`).
//!
//! 200 `{"accepted", "records": [{"index", "topic", "partition", "offset", "message_id"}],
//! "redactions": [{"index", "field", "pii_type", "action", "count"}], "alerts"}`.
//! 422 `invalid_event` when any event fails its schema: `field` is the JSON pointer into the
//! request body (`/2/price` for the third event of a batch, `/price` for a single event) and
//! `details` holds `index`, `violations` (`pointer`, `reason`) and `invalid_events`; nothing was
//! appended. 413 `too_many_events` over the batch limit, 422 for an empty batch or a body that
//! is neither an object nor an array.
//!
//! An `Idempotency-Key` header (1–255 visible ASCII characters) makes a retry safe: the same key
//! with the same body within 24 hours gets the first answer again (with `"replayed": true`) and
//! appends nothing; the same key with another body is 409 `idempotency_key_reused`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use eventline_platform::integrations::{IngestError, IngestReceipt, Integration};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;

pub async fn crm_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<IngestReceipt>, ApiError> {
    ingest(state, Integration::Crm, &headers, body).await
}

pub async fn market_data(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<IngestReceipt>, ApiError> {
    ingest(state, Integration::MarketData, &headers, body).await
}

/// The request's `Idempotency-Key`, if it sent one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_owned()))
            .map_err(|_| ApiError::invalid_field("Idempotency-Key", "use 1 to 255 visible ASCII characters")),
    }
}

async fn ingest(
    state: AppState,
    integration: Integration,
    headers: &HeaderMap,
    body: Value,
) -> Result<Json<IngestReceipt>, ApiError> {
    let key = idempotency_key(headers)?;
    let (events, batch) = match body {
        Value::Array(events) => (events, true),
        event @ Value::Object(_) => (vec![event], false),
        _ => {
            return Err(ApiError::invalid_field("(body)", "send one event object or a JSON array of event objects"));
        }
    };
    let limit = state.inner.options.max_batch_events;
    if events.len() > limit {
        return Err(too_many(events.len(), limit));
    }
    // On its own task: once the append started, a client that goes away does not cut it between
    // the events and their alerts; shutdown waits for it.
    let ingest = state.integrations().clone();
    let run = state.inner.tracker.spawn(async move { ingest.ingest_once(integration, events, key).await });
    let result = run.await.map_err(ApiError::internal)?;
    result.map(Json).map_err(|e| match e {
        IngestError::Empty => ApiError::invalid_field("(body)", "the batch is empty; send at least one event"),
        IngestError::TooMany(n) => too_many(n, eventline_platform::integrations::MAX_BATCH_EVENTS),
        IngestError::Invalid { index, violations, invalid_events } => {
            let prefix = if batch { format!("/{index}") } else { String::new() };
            let first = &violations[0];
            let field = format!("{prefix}{}", first.pointer);
            let field = if field.is_empty() { "/".to_owned() } else { field };
            let which = if batch { format!("event {index} of the batch") } else { "the event".to_owned() };
            let mut message = format!(
                "{which} does not match the schema of `{}`: {}",
                integration.topic(),
                violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
            );
            if invalid_events > 1 {
                message.push_str(&format!(" ({} more invalid event(s) in the batch)", invalid_events - 1));
            }
            message.push_str("; nothing was appended");
            let mut e = ApiError::invalid_field(field, "");
            e.code = "invalid_event";
            e.message = message;
            e.with_details(json!({"index": index, "violations": violations, "invalid_events": invalid_events}))
        }
        IngestError::BadIdempotencyKey(why) => ApiError::invalid_field("Idempotency-Key", why),
        IngestError::IdempotencyConflict => ApiError::conflict("idempotency_key_reused", e.to_string()),
        IngestError::Log(err) => {
            tracing::error!(error = %err, topic = integration.topic(), "integration: the log refused the events");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", "the event log is unavailable; try again")
        }
        other => ApiError::internal(other),
    })
}

fn too_many(n: usize, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_many_events",
        format!("the batch has {n} events; at most {limit} are accepted per request — split it"),
    )
}
