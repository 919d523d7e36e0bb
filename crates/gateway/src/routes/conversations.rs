//! `GET /v1/conversations/{conversation_id}`: the turns, as stored (redacted).

use axum::Json;
use axum::extract::{Path, State};
use eventline_platform::conversations::{self, Conversation};

use super::check_id;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Conversation>, ApiError> {
    check_id("conversation_id", &id, 128)?;
    let lookup = id.clone();
    state
        .db()
        .read(move |conn| conversations::get(conn, &lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("conversation_not_found", format!("no conversation `{id}`")))
}
