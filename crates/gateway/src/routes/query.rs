//! `POST /v1/query` `{user_id, conversation_id?, query}`: planner → agent → governance; answers
//! `{execution_id, agent_id, status, output, duration_ms, redactions, conversation_id}` with the
//! output already redacted.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use eventline_platform::executor::{ExecuteError, ExecutionResult, QueryRequest};
use serde::Deserialize;

use super::check_id;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// The customer (1–64 of A–Z a–z 0–9 . _ - :).
    user_id: String,
    /// Continue this conversation; a new one when absent.
    #[serde(default)]
    conversation_id: Option<String>,
    /// What the customer asks (1–4000 characters).
    query: String,
}

pub async fn post(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<crate::security::Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<Json<ExecutionResult>, ApiError> {
    check_id("user_id", &body.user_id, 64)?;
    if let Some(c) = &body.conversation_id {
        check_id("conversation_id", c, 128)?;
    }
    super::require_own(&state, &caller, &body.user_id, format!("users/{}", body.user_id))?;
    if body.query.trim().is_empty() {
        return Err(ApiError::invalid_field("query", "must not be empty"));
    }
    if body.query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid_field("query", format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    // An incoming W3C trace context is continued in the events' headers; an invalid one is
    // ignored, as the W3C recommendation asks.
    let traceparent = crate::wire::incoming_traceparent(&headers);
    let request = QueryRequest {
        user_id: body.user_id,
        conversation_id: body.conversation_id,
        query: body.query,
        traceparent,
        key_id: Some(caller.key.id.clone()),
    };
    // On its own task: if the client goes away the execution still finishes (a blocked card
    // always gets its event); shutdown waits for these tasks.
    let executor = state.executor().clone();
    let run = state.inner.tracker.spawn(tracing::Instrument::instrument(
        async move { executor.execute(request).await },
        tracing::Span::current(),
    ));
    let result = run.await.map_err(ApiError::internal)?;
    let bound = caller.key.user_id.is_some();
    result.map(Json).map_err(|e| match e {
        ExecuteError::UnknownUser(id) => ApiError::not_found("user_not_found", format!("no user `{id}`")),
        ExecuteError::Unroutable => ApiError::invalid_field("query", e),
        // A caller bound to one user learns nothing of others' conversations: as if unknown.
        ExecuteError::ConversationOfAnotherUser(cid) if bound => {
            ApiError::not_found("conversation_not_found", format!("no conversation `{cid}`"))
        }
        ExecuteError::ConversationOfAnotherUser(_) => ApiError::conflict("conversation_of_another_user", e.to_string()),
        ExecuteError::Log(err) => {
            tracing::error!(error = %err, "query: the log refused the events");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", "the event log is unavailable; try again")
        }
        ExecuteError::Outbox(err) => {
            // The execution committed; its events are safe in the outbox and will be appended.
            tracing::error!(error = %err, "query: the events are not appended yet");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "events_pending",
                "the request was carried out but its events are not in the log yet; they will be appended",
            )
        }
        other => ApiError::internal(other),
    })
}
