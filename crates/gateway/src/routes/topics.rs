//! The log over HTTP: `GET /v1/topics`, `GET /v1/topics/{topic}`, `POST /v1/topics`,
//! `GET /v1/topics/{topic}/records`, `GET /v1/topics/{topic}/stream` (Server-Sent Events) and
//! `POST /v1/topics/{topic}/records`. What `eventline topics|consume|produce` use while `up`
//! holds the data directory.
//!
//! Reads return the events as they are in the log: every event passed the governance gate on
//! its way in, so no read returns a raw PII value.
//!
//! - `GET /v1/topics` → `{"topics": [{"spec", "partitions": [{"partition", "start_offset",
//!   "end_offset", "size_bytes"}]}]}`; `GET /v1/topics/{topic}` → one of them.
//! - `POST /v1/topics` with a topic spec (the `spec` object above) → 201 with its description.
//! - `GET /v1/topics/{topic}/records?partition=P&offset=O|since=RFC3339&limit=N` (partition 0,
//!   the oldest offset and 100 by default; at most 1000) → `{"topic", "partition", "records":
//!   [{"partition", "offset", "timestamp_ms", "key", "value"}], "next_offset", "end_offset"}`;
//!   `value` is the event's own JSON.
//! - `GET /v1/topics/{topic}/stream?[partition=P][&offset=O|&since=T|&from=beginning|&offsets=P:O,…]`
//!   → `text/event-stream`, one `record` event per record (`id: P:O`, data as one element of
//!   `records` above), from the end of each partition unless told otherwise; ends when the
//!   server shuts down.
//! - `POST /v1/topics/{topic}/records?[key=K][&partition=P][&acks=A][&stamp=true][&header=N=V…]`
//!   with NDJSON (one event per line) or a JSON array → `{"records": [{"partition", "offset"}]}`
//!   in input order. Each event is validated, stamped and gated exactly as `eventline produce`
//!   does it; the first bad one stops the request: 422 `invalid_record` naming the line (or array
//!   index) and the field, with the events before it appended and their positions in
//!   `error.details.records` (`details` also has `line` or `record`, and `reason`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use eventline_log::{Header, LogError, RecordPosition, TopicDescription};
use eventline_model::Timestamp;
use eventline_model::topics::{Acks, TopicSpec};
use futures_util::Stream;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::json::ApiJson;
use crate::produce::{RecordOptions, prepare_lines};
use crate::state::AppState;
use crate::wire::RecordView;

/// Records per `GET …/records` when `limit` is not given, and the most it may ask for.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// How often a stream looks for new records once it is at the end.
const STREAM_POLL: Duration = Duration::from_millis(100);

pub(crate) type Params = Query<Vec<(String, String)>>;

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let topics = state.executor().log().list_topics().await.map_err(log_error)?;
    Ok(Json(json!({ "topics": topics })))
}

pub async fn describe(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<TopicDescription>, ApiError> {
    Ok(Json(describe_topic(&state, &topic).await?))
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<TopicSpec>,
) -> Result<(StatusCode, Json<TopicDescription>), ApiError> {
    spec.validate().map_err(|e| ApiError::invalid_field("(body)", e))?;
    let log = state.executor().log();
    log.create_topic(&spec).await.map_err(log_error)?;
    Ok((StatusCode::CREATED, Json(log.describe_topic(&spec.name).await.map_err(log_error)?)))
}

pub async fn records(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let q = Fields::new(&params, &["partition", "offset", "since", "limit"])?;
    let d = describe_topic(&state, &topic).await?;
    let partition = q.partition(&d)?.unwrap_or(0);
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_LIMIT => n,
            _ => return Err(ApiError::invalid_field("limit", format!("give a number from 0 to {MAX_LIMIT}"))),
        },
    };
    let log = state.executor().log();
    let (start, end) = log.watermarks(&topic, partition).await.map_err(log_error)?;
    let from = match (q.offset()?, q.since()?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field("since", "give either `offset` or `since`, not both"));
        }
        (Some(o), None) => o.clamp(start, end),
        (None, Some(ts)) => log.offset_for_time(&topic, partition, ts).await.map_err(log_error)?,
        (None, None) => start,
    };
    let got =
        if limit == 0 { Vec::new() } else { log.fetch(&topic, partition, from, limit).await.map_err(log_error)? };
    let next = got.last().map_or(from, |r| r.offset + 1);
    let records: Vec<RecordView> = got.iter().map(RecordView::of).collect();
    Ok(Json(json!({
        "topic": topic,
        "partition": partition,
        "records": records,
        "next_offset": next,
        "end_offset": end.max(next),
    })))
}

pub async fn stream(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<crate::security::Caller>,
    Path(topic): Path<String>,
    Query(params): Params,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = Fields::new(&params, &["partition", "offset", "since", "from", "offsets"])?;
    let permit = state.inner.limits.open_stream(&caller.key.id)?;
    let ends_at = std::time::Instant::now() + state.inner.limits.options().stream_lifetime;
    let d = describe_topic(&state, &topic).await?;
    let log = state.executor().log().clone();
    let partitions: Vec<u32> = match q.partition(&d)? {
        Some(p) => vec![p],
        None => (0..d.spec.partitions).collect(),
    };
    let explicit = match q.get("offsets") {
        None => HashMap::new(),
        Some(text) => parse_offsets(text, &d)?,
    };
    let from_beginning = match q.get("from") {
        None | Some("end") => false,
        Some("beginning") => true,
        Some(_) => return Err(ApiError::invalid_field("from", "use `beginning` or `end`")),
    };
    let (offset, since) = (q.offset()?, q.since()?);
    let mut cursors = Vec::with_capacity(partitions.len());
    for p in partitions {
        let (start, end) = log.watermarks(&topic, p).await.map_err(log_error)?;
        let next = match (explicit.get(&p), offset, since) {
            (Some(&o), _, _) | (None, Some(o), _) => o.clamp(start, end),
            (None, None, Some(ts)) => log.offset_for_time(&topic, p, ts).await.map_err(log_error)?,
            (None, None, None) if from_beginning => start,
            (None, None, None) => end,
        };
        cursors.push((p, next));
    }
    let (tx, mut rx) = mpsc::channel::<Event>(256);
    let readiness = state.readiness().clone();
    tokio::spawn(async move {
        let _permit = permit;
        let alive = || state.key_alive(&caller.key);
        loop {
            // A revoked key's streams end; every stream ends at its maximum lifetime.
            if !alive() || std::time::Instant::now() >= ends_at {
                if let Ok(room) = tx.try_reserve() {
                    room.send(
                        Event::default()
                            .event("end")
                            .data("the stream reached its lifetime or its key was revoked; reconnect"),
                    );
                }
                return;
            }
            let mut progressed = false;
            for (p, next) in cursors.iter_mut() {
                let got = match log.fetch(&topic, *p, *next, 500).await {
                    Ok(got) => got,
                    Err(e) => {
                        let _ = tx.send(Event::default().event("error").data(e.to_string())).await;
                        return;
                    }
                };
                for r in &got {
                    let data = serde_json::to_string(&RecordView::of(r)).expect("records serialise");
                    let event = Event::default().event("record").id(format!("{}:{}", r.partition, r.offset)).data(data);
                    // The client went away, stopped reading past the stream's lifetime, or its key
                    // was revoked meanwhile.
                    let Some(room) = crate::limits::room(&tx, ends_at, alive).await else { return };
                    room.send(event);
                    *next = r.offset + 1;
                    progressed = true;
                }
            }
            // The server is shutting down: end the stream so the connection can close.
            if readiness.draining() {
                return;
            }
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(STREAM_POLL) => {}
                    _ = tx.closed() => return,
                }
            }
        }
    });
    let events = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Whether a key of `role` may append to `topic`: an admin key anywhere; others only to the inbound
/// integration topics and to topics users created. The built-in topics that carry captured
/// changes, executions and alerts (and their dead-letter topics) are written only by eventline's
/// own producers, so a caller cannot forge a change, an execution or an alert.
fn may_append(role: crate::auth::Role, topic: &str) -> bool {
    use eventline_model::topics::{DLQ_SUFFIX, EXTERNAL_CRM_EVENTS, EXTERNAL_MARKET_DATA, is_builtin};
    let base = topic.strip_suffix(DLQ_SUFFIX).unwrap_or(topic);
    role == crate::auth::Role::Admin
        || topic == EXTERNAL_CRM_EVENTS
        || topic == EXTERNAL_MARKET_DATA
        || !is_builtin(base)
}

pub async fn produce(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    axum::Extension(caller): axum::Extension<crate::security::Caller>,
    Query(params): Params,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = &caller.key;
    if !may_append(key.role, &topic) {
        tracing::info!(key_id = %key.id, role = key.role.as_str(), topic, "forbidden: append to a built-in topic");
        state.inner.security.record(
            crate::security::SecurityEvent::by(&caller, "authz.denied", 403, "append to a topic only eventline writes")
                .resource(format!("topics/{topic}")),
        );
        return Err(ApiError::forbidden(format!(
            "a key with role `{}` cannot append to `{topic}`: it is written only by eventline's own producers \
             (an admin key may); ingest keys append to external.crm.events, external.market.data and topics users created",
            key.role.as_str()
        )));
    }
    let q = Fields::new(&params, &["key", "partition", "acks", "stamp", "header"])?;
    let d = describe_topic(&state, &topic).await?;
    let executor = state.executor();
    let stamp = match q.get("stamp") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_field("stamp", "use true or false")),
    };
    let mut opts = RecordOptions {
        key: q.get("key").map(str::to_owned),
        partition: q.partition(&d)?,
        headers: Vec::new(),
        stamp,
        from_caller: caller.key.role != crate::auth::Role::Admin,
    };
    for h in q.all("header") {
        match h.split_once('=') {
            Some((k, v)) if !k.is_empty() => opts.headers.push(Header::new(k, Bytes::copy_from_slice(v.as_bytes()))),
            _ => return Err(ApiError::invalid_field("header", "write NAME=VALUE")),
        }
    }
    let acks = match q.get("acks") {
        None => d.spec.acks,
        Some(a) => a.parse::<Acks>().map_err(|e| ApiError::invalid_field("acks", e))?,
    };
    let events = Events::parse(&body)?;
    let array = events.array;
    let limit = state.inner.options.max_batch_events;
    if events.lines.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!("the body has {} records; at most {limit} are accepted per request — split it", events.lines.len()),
        ));
    }
    let pipeline = executor.pipeline().clone();
    // On its own task: once the append started, a client that goes away does not cut it between
    // the records and their alerts; shutdown waits for it.
    let run = state.inner.tracker.spawn(async move {
        let (ats, lines): (Vec<usize>, Vec<String>) = events.lines.into_iter().unzip();
        let (ready, refused) = prepare_lines(&pipeline, &d.spec, &opts, &lines);
        let appended = pipeline.append(&topic, ready, acks).await?;
        Ok::<_, LogError>((appended.positions, refused.map(|(i, e)| (ats[i], e))))
    });
    let (positions, failure) = run.await.map_err(ApiError::internal)?.map_err(log_error)?;
    let records: Vec<Value> = positions.iter().map(position).collect();
    let Some((at, e)) = failure else {
        return Ok(Json(json!({ "records": records })));
    };
    let (unit, field_prefix) = if array { ("record", format!("/{at}")) } else { ("line", String::new()) };
    let field = format!("{field_prefix}{}", e.field().as_deref().unwrap_or(""));
    let mut err = ApiError::invalid_field(if field.is_empty() { "(body)".to_owned() } else { field }, "");
    err.code = "invalid_record";
    err.message = format!(
        "{unit} {at}: {e}; {} record(s) before it were appended, nothing from this {unit} on was",
        records.len()
    );
    let mut details = json!({ "records": records, "reason": e.to_string() });
    details[unit] = json!(at);
    Err(err.with_details(details))
}

/// The events of a produce body: NDJSON lines (1-based line numbers, blank lines skipped) or the
/// elements of a JSON array (0-based indexes), each as its exact text.
struct Events {
    lines: Vec<(usize, String)>,
    array: bool,
}

impl Events {
    fn parse(body: &[u8]) -> Result<Events, ApiError> {
        let text = std::str::from_utf8(body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", format!("the body is not UTF-8: {e}"))
        })?;
        if text.trim_start().starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("the body is not a valid JSON array: {e}"),
                )
            })?;
            let lines = items.iter().enumerate().map(|(i, v)| (i, v.get().to_owned())).collect();
            return Ok(Events { lines, array: true });
        }
        let lines: Vec<(usize, String)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l.to_owned()))
            .collect();
        if lines.is_empty() {
            return Err(ApiError::invalid_field(
                "(body)",
                "no records: send NDJSON (one event per line) or a JSON array",
            ));
        }
        Ok(Events { lines, array: false })
    }
}

fn position(p: &RecordPosition) -> Value {
    json!({ "partition": p.partition, "offset": p.offset })
}

async fn describe_topic(state: &AppState, topic: &str) -> Result<TopicDescription, ApiError> {
    state.executor().log().describe_topic(topic).await.map_err(log_error)
}

/// `P:O,P:O` → offsets per partition.
fn parse_offsets(text: &str, d: &TopicDescription) -> Result<HashMap<u32, u64>, ApiError> {
    let mut out = HashMap::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let parsed = item.split_once(':').and_then(|(p, o)| Some((p.parse::<u32>().ok()?, o.parse::<u64>().ok()?)));
        match parsed {
            Some((p, o)) if p < d.spec.partitions => {
                out.insert(p, o);
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "offsets",
                    format!("write PARTITION:OFFSET, partitions 0..{}", d.spec.partitions),
                ));
            }
        }
    }
    Ok(out)
}

/// Query parameters, with unknown ones refused.
pub(crate) struct Fields<'a> {
    params: &'a [(String, String)],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(params: &'a [(String, String)], known: &[&str]) -> Result<Self, ApiError> {
        if let Some((k, _)) = params.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(ApiError::invalid_field(
                crate::json::field_name(k),
                format!("unknown parameter; this endpoint takes {}", known.join(", ")),
            ));
        }
        Ok(Self { params })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.params.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn partition(&self, d: &TopicDescription) -> Result<Option<u32>, ApiError> {
        let Some(v) = self.get("partition") else { return Ok(None) };
        match v.parse::<u32>() {
            Ok(p) if p < d.spec.partitions => Ok(Some(p)),
            _ => Err(ApiError::invalid_field(
                "partition",
                format!("`{}` has partitions 0..{}", d.spec.name, d.spec.partitions),
            )),
        }
    }

    fn offset(&self) -> Result<Option<u64>, ApiError> {
        self.get("offset")
            .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid_field("offset", "not an offset")))
            .transpose()
    }

    fn since(&self) -> Result<Option<i64>, ApiError> {
        self.get("since")
            .map(|v| {
                v.parse::<Timestamp>()
                    .map(|t| t.unix_millis())
                    .map_err(|_| ApiError::invalid_field("since", "give an RFC 3339 time, e.g. 2026-11-27T10:00:00Z"))
            })
            .transpose()
    }
}

/// The log's errors as the API shows them.
fn log_error(e: LogError) -> ApiError {
    match e {
        LogError::UnknownTopic(t) => {
            ApiError::not_found("unknown_topic", format!("topic `{t}` does not exist; GET /v1/topics lists them"))
        }
        LogError::TopicExists(t) => ApiError::conflict("topic_exists", format!("topic `{t}` already exists")),
        LogError::InvalidTopic(m) => ApiError::invalid_field("(body)", m),
        e @ LogError::UnknownPartition { .. } => ApiError::invalid_field("partition", e),
        e @ LogError::OffsetOutOfRange { .. } => ApiError::invalid_field("offset", e),
        e @ LogError::RecordTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "record_too_large", e.to_string())
        }
        other => {
            tracing::error!(error = %other, "the log refused a request");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", "the event log is unavailable; try again")
        }
    }
}
