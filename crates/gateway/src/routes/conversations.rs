//! `GET /v1/conversations/{conversation_id}`: the turns, as stored (redacted).

use axum::Json;
use axum::extract::{Path, State};
use eventline_platform::conversations::{self, Conversation};

use super::check_id;
use crate::error::ApiError;
use crate::security::Caller;
use crate::state::AppState;

/// A caller bound to one user sees only that user's conversations; another's is 404, exactly as
/// one that does not exist (its existence is not revealed).
pub async fn get(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    check_id("conversation_id", &id, 128)?;
    let lookup = id.clone();
    state
        .db()
        .read(move |conn| conversations::get(conn, &lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .filter(|c| caller.key.may_act_for(&c.user_id))
        .map(Json)
        .ok_or_else(|| ApiError::not_found("conversation_not_found", format!("no conversation `{id}`")))
}
