//! `GET /v1/audit` (role `read`): audit records, filtered and paginated —
//! `?entity=&topic=&since=&until=&limit=&order=newest|oldest&cursor=`; the answer is
//! `{"records": [...], "next_cursor": "…" | null}`.
//! `GET /v1/audit/verify` (role `read`): the integrity check, `{"ok": true, …}` or
//! `{"ok": false, "first_bad": {"seq", "topic", "partition", "offset", "reason"}, …}`.

use axum::Json;
use axum::extract::{Query, State};
use eventline_services::audit::record::parse_bound;
use eventline_services::audit::signing::public_key_of;
use eventline_services::audit::store::{self, Page};
use eventline_services::audit::verify::{Report, verify as check};

use super::topics::{Fields, Params};
use crate::error::ApiError;
use crate::state::AppState;

/// Records per page when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub async fn query(State(state): State<AppState>, Query(params): Params) -> Result<Json<Page>, ApiError> {
    let f = Fields::new(&params, &["entity", "topic", "since", "until", "limit", "order", "cursor"])?;
    let bound = |name: &str| {
        f.get(name).map(|t| parse_bound(t).map_err(|reason| ApiError::invalid_field(name, reason))).transpose()
    };
    let limit = match f.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", format!("must be a number from 1 to {MAX_LIMIT}")))?,
    };
    let oldest_first = match f.get("order") {
        None | Some("newest") => false,
        Some("oldest") => true,
        Some(_) => return Err(ApiError::invalid_field("order", "use newest or oldest")),
    };
    let cursor = f
        .get("cursor")
        .map(|c| {
            c.parse::<u64>().map_err(|_| ApiError::invalid_field("cursor", "use the next_cursor of the previous page"))
        })
        .transpose()?;
    let q = store::Query {
        entity: f.get("entity").map(str::to_owned),
        topic: f.get("topic").map(str::to_owned),
        since: bound("since")?,
        until: bound("until")?,
        limit,
        oldest_first,
        cursor,
    };
    let page =
        state.db().read(move |c| store::query(c, &q)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    Ok(Json(page))
}

pub async fn verify(State(state): State<AppState>) -> Result<Json<Report>, ApiError> {
    let Some(dir) = state.inner.data_dir.clone() else {
        return Err(ApiError::internal("the gateway was started without a data directory"));
    };
    let key = public_key_of(&dir).map_err(ApiError::internal)?;
    let report = state
        .db()
        .read(move |c| check(c, key.as_ref(), &dir))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(report))
}
