//! [`AgentExecutor`]: one end-user query from start to finish.
//!
//! 1. The planner picks the agent from the query; the agent answers from the database.
//! 2. The `agent.executions` event (query and output) goes through the produce pipeline: the
//!    governance gate reports PII in the query as the gateway's (`/input/query`, `agent_input`)
//!    and in the output as the agent's (`/output/...`, `agent_output`), masks both, and builds one
//!    `compliance.alerts` event per PII type and field (never the raw value, ids derived from the
//!    execution).
//! 3. The agent's database change, the execution record, its alert records (as rows of the
//!    [`Outbox`]) and the (redacted) conversation turn commit in **one** database transaction:
//!    a crash anywhere leaves all of them or none. Capture turns the turn into a
//!    `db.changes.conversations` event. Executions that arrive together share a transaction
//!    (group commit: one fsync for the batch), each in a savepoint of its own, so one that fails
//!    or panics rolls back alone.
//! 4. The caller gets the (redacted) answer once the outbox relay has appended the events with
//!    acks=all.

use std::sync::Arc;
use std::time::Instant;

use eventline_governance::{Location, Scope};
use eventline_log::{EventLog, LogError};
use eventline_model::events::{AgentExecution, AgentId, AgentInput, AlertAction, ComplianceAlert, ExecutionStatus};
use eventline_model::topics::{AGENT_EXECUTIONS, COMPLIANCE_ALERTS, TopicSpec};
use eventline_model::{Metadata, Timestamp};
use eventline_pipeline::{Draft, EventError, Pipeline, alert_records};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::agents::{self, AgentRequest};
use crate::conversations::{self, ConversationError};
use crate::db::Database;
use crate::outbox::{Outbox, OutboxError};
use crate::planner::{Planner, Route};
use crate::store::sqlite::Unit;
use crate::users;

/// Executions committed together at most.
const MAX_GROUP: usize = 64;

/// One execution waiting for the group-commit worker.
struct Job {
    request: QueryRequest,
    route: Route,
    started: Instant,
    /// The execution's span: the agent and the database commit are its children.
    span: tracing::Span,
    reply: tokio::sync::oneshot::Sender<Result<Committed, ExecuteError>>,
}

/// A query as the gateway hands it over (already checked for shape and size).
#[derive(Clone, Debug)]
pub struct QueryRequest {
    pub user_id: String,
    /// Continue this conversation; a new one is started when `None`.
    pub conversation_id: Option<String>,
    pub query: String,
    /// The W3C trace context of the request, carried into the events' headers.
    pub traceparent: Option<String>,
    /// The API key that asked (its id, never the secret): `input.key_id` of the execution, so the
    /// audit trail names who acted.
    pub key_id: Option<String>,
}

/// What governance did to one field of this execution. Never holds the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// JSON pointer in the `agent.executions` event, e.g. `/output/message`.
    pub field: String,
    pub pii_type: String,
    pub action: AlertAction,
    pub count: u64,
}

/// A finished execution, redacted.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionResult {
    pub execution_id: String,
    pub agent_id: AgentId,
    pub status: ExecutionStatus,
    pub output: Map<String, Value>,
    pub duration_ms: u64,
    pub redactions: Vec<Redaction>,
    pub conversation_id: String,
}

/// Why a query was not executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("no user `{0}`")]
    UnknownUser(String),
    #[error(
        "no agent handles this query; ask about your cards (balance, transactions, block, dispute), loans (balance, schedule, eligibility) or investments (portfolio, prices)"
    )]
    Unroutable,
    #[error("conversation `{0}` belongs to another user")]
    ConversationOfAnotherUser(String),
    #[error("the log refused the events: {0}")]
    Log(#[from] LogError),
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("conversation: {0}")]
    Conversation(#[source] ConversationError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("event fails its schema: {0}")]
    Schema(#[from] EventError),
    #[error("the database could not commit the execution: {0}")]
    Commit(String),
    #[error("the agent failed unexpectedly; nothing of this execution was kept")]
    Panicked,
    #[error("the executor is shutting down")]
    Stopped,
}

impl From<ConversationError> for ExecuteError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::OtherUser(id) => ExecuteError::ConversationOfAnotherUser(id),
            other => ExecuteError::Conversation(other),
        }
    }
}

/// The component named in alerts about the query itself.
const GATEWAY_COMPONENT: &str = "gateway";

/// Runs queries: planner → agent → governance → outbox and conversation. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentExecutor {
    inner: Arc<Inner>,
    jobs: tokio::sync::mpsc::Sender<Job>,
}

struct Inner {
    db: Database,
    pipeline: Pipeline,
    outbox: Outbox,
    planner: Planner,
    spec: TopicSpec,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentExecutor").field("db", &self.db.path()).field("pipeline", &self.pipeline).finish()
    }
}

/// What the database transaction of one execution produced.
struct Committed {
    result: Result<ExecutionResult, ExecuteError>,
    /// The outbox row to wait for (none when nothing was written).
    last_seq: Option<i64>,
}

impl AgentExecutor {
    /// An executor writing its events through `outbox` (opened for `agent.executions` and
    /// `compliance.alerts`; run its relay with [`Outbox::run`]). Starts its group-commit worker
    /// on the current tokio runtime; the worker ends when the last clone is dropped.
    pub fn new(db: Database, pipeline: Pipeline, outbox: Outbox) -> Self {
        let spec = TopicSpec::new(AGENT_EXECUTIONS);
        let inner = Arc::new(Inner { db, pipeline, outbox, planner: Planner::default(), spec });
        let (jobs, rx) = tokio::sync::mpsc::channel(MAX_GROUP * 4);
        tokio::spawn(group_commit(inner.clone(), rx));
        Self { inner, jobs }
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        self.inner.pipeline.log()
    }

    /// The produce pipeline every event of this process goes through.
    pub fn pipeline(&self) -> &Pipeline {
        &self.inner.pipeline
    }

    /// The `_metadata.producer` of the events it writes.
    pub fn producer(&self) -> &str {
        self.inner.pipeline.producer()
    }

    /// Runs `request` to the end. Not cancel-safe: callers that may be dropped (an HTTP handler
    /// whose client went away) run it on a task of its own, so the caller's wait for the events
    /// is not cut short (the events themselves are safe in the outbox either way).
    pub async fn execute(&self, request: QueryRequest) -> Result<ExecutionResult, ExecuteError> {
        use tracing::Instrument as _;
        let started = Instant::now();
        let span = tracing::info_span!("execute query", agent_id = tracing::field::Empty);
        let route = span.in_scope(|| {
            let _planner = tracing::info_span!("planner").entered();
            self.inner.planner.route(&request.query)
        });
        if let Route::Agent(agent, _) = &route {
            span.record("agent_id", agent.as_str());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job { request, route, started, span: span.clone(), reply };
        self.jobs.send(job).await.map_err(|_| ExecuteError::Stopped)?;
        let committed = answer.await.map_err(|_| ExecuteError::Stopped)??;
        if let Some(seq) = committed.last_seq {
            self.inner
                .outbox
                .wait_relayed(seq)
                .instrument(tracing::info_span!(parent: &span, "events appended"))
                .await?;
        }
        committed.result
    }
}

/// Takes the executions waiting now (up to [`MAX_GROUP`]) and commits them in one transaction.
async fn group_commit(inner: Arc<Inner>, mut rx: tokio::sync::mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (replies, work): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|j| (j.reply, (j.request, j.route, j.started, j.span))).unzip();
        let me = inner.clone();
        let results = inner.db.call(move |conn| me.run_group(conn, work)).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

impl Inner {
    /// One transaction for `work`: each execution in a savepoint of its own.
    fn run_group(
        &self,
        conn: &mut rusqlite::Connection,
        work: Vec<(QueryRequest, Route, Instant, tracing::Span)>,
    ) -> Vec<Result<Committed, ExecuteError>> {
        let n = work.len();
        let mut unit = match Unit::begin(conn) {
            Ok(u) => u,
            Err(e) => return (0..n).map(|_| Err(ExecuteError::Commit(e.to_string()))).collect(),
        };
        let mut results = Vec::with_capacity(n);
        let mut spans = Vec::with_capacity(n);
        for (request, route, started, span) in work {
            let _entered = span.clone().entered();
            spans.push(span);
            let result = match unit.prepare_cached("SAVEPOINT execution").and_then(|mut s| s.execute([])) {
                Err(e) => Err(ExecuteError::Database(e)),
                Ok(_) => {
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.run_in_savepoint(&mut unit, request, route, started)
                    }));
                    let result = run.unwrap_or_else(|_| {
                        tracing::error!("an execution panicked; its savepoint is rolled back");
                        Err(ExecuteError::Panicked)
                    });
                    let end =
                        if result.is_ok() { "RELEASE execution" } else { "ROLLBACK TO execution; RELEASE execution" };
                    match unit.execute_batch(end) {
                        Ok(()) => result,
                        Err(e) => Err(ExecuteError::Commit(e.to_string())),
                    }
                }
            };
            results.push(result);
        }
        // One commit for the group, a span for it in each execution's trace.
        let commits: Vec<_> = spans.iter().map(|s| tracing::info_span!(parent: s, "database commit")).collect();
        let committed = unit.commit();
        drop(commits);
        match committed {
            Ok(()) => results,
            Err(e) => {
                tracing::error!(error = %e, executions = n, "committing a group of executions failed");
                (0..n).map(|_| Err(ExecuteError::Commit(e.to_string()))).collect()
            }
        }
    }

    fn run_in_savepoint(
        &self,
        unit: &mut rusqlite::Connection,
        request: QueryRequest,
        route: Route,
        started: Instant,
    ) -> Result<Committed, ExecuteError> {
        let QueryRequest { user_id, conversation_id, query, traceparent, key_id } = request;
        let execution_id = uuid::Uuid::now_v7().to_string();
        if !users::exists(unit, &user_id)? {
            return Err(ExecuteError::UnknownUser(user_id));
        }
        if let Some(cid) = &conversation_id
            && let Some(c) = conversations::get(unit, cid)?
            && c.user_id != user_id
        {
            return Err(ExecuteError::ConversationOfAnotherUser(cid.clone()));
        }

        let agent = match route {
            Route::Agent(agent, _) => agent,
            Route::Unclear => {
                // No execution, but PII in the query is still reported.
                let event = json!({
                    "input": {"query": query},
                    "_metadata": {"message_id": execution_id},
                    "timestamp": Timestamp::now(),
                });
                let scopes = [Scope::whole(GATEWAY_COMPONENT, Location::AgentInput)];
                let (_, alerts) = self.pipeline.findings(AGENT_EXECUTIONS, event, &scopes);
                let traceparent = eventline_telemetry::traceparent_or(&tracing::Span::current(), traceparent);
                let last_seq = self.enqueue_alerts(unit, &alerts, traceparent.as_deref())?;
                return Ok(Committed { result: Err(ExecuteError::Unroutable), last_seq });
            }
        };

        // The agent works on the raw query; it never leaves this function.
        let agent_span = tracing::info_span!("agent", agent_id = agent.as_str()).entered();
        let answer = agents::run(agent, unit, &AgentRequest::new(&user_id, &query));
        // What this execution writes carries its trace: the events, and the conversation's change
        // through capture.
        let traceparent = eventline_telemetry::traceparent_or(&agent_span, traceparent);
        drop(agent_span);
        let (status, output) = match answer {
            Ok(a) => (a.status, a.output),
            Err(e) => {
                tracing::error!(agent = agent.as_str(), execution_id, error = %e, "agent failed");
                let mut m = Map::new();
                m.insert(
                    "error".into(),
                    Value::String(format!("the {} could not complete the request", agent.as_str())),
                );
                (ExecutionStatus::Failed, m)
            }
        };

        let conversation_id = conversation_id.unwrap_or_else(|| format!("conv_{}", uuid::Uuid::now_v7().simple()));
        let mut input_extra = Map::new();
        input_extra.insert("user_id".into(), Value::String(user_id.clone()));
        input_extra.insert("conversation_id".into(), Value::String(conversation_id.clone()));
        if let Some(k) = key_id {
            input_extra.insert("key_id".into(), Value::String(k));
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        let mut metadata = Metadata::new(self.pipeline.producer().to_owned());
        metadata.message_id = eventline_model::MessageId::parse(execution_id.clone()).expect("a UUID is not empty");
        let event = AgentExecution {
            execution_id: execution_id.clone(),
            agent_id: agent,
            status,
            duration_ms,
            input: AgentInput { query, extra: input_extra },
            output,
            timestamp: Timestamp::now(),
            metadata,
            extra: Map::new(),
        };
        let draft = Draft::json(
            serde_json::to_value(&event).expect("JSON serialises"),
            GATEWAY_COMPONENT,
            Location::AgentInput,
        )
        .scope(Scope::under("/output", agent.as_str(), Location::AgentOutput))
        .traceparent(traceparent.clone());
        let prepared = self.pipeline.prepare(&self.spec, draft)?;
        let redacted_query =
            prepared.event.pointer("/input/query").and_then(Value::as_str).unwrap_or("[REDACTED]").to_owned();
        let output = match prepared.event.get("output") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let alerts = prepared.alerts.clone();

        let mut last_seq = Some(self.outbox.enqueue(unit, AGENT_EXECUTIONS, &prepared.record)?);
        last_seq = self.enqueue_alerts(unit, &alerts, traceparent.as_deref())?.or(last_seq);
        let turn = json!({
            "execution_id": execution_id,
            "timestamp": event.timestamp,
            "agent_id": agent,
            "status": status,
            "query": redacted_query,
            "output": output,
        });
        crate::trace_context::traced(unit, traceparent.as_deref(), |c| {
            conversations::append_turn(c, &conversation_id, &user_id, turn)
        })?;

        let redactions = alerts
            .iter()
            .filter(|a| a.details.action != AlertAction::Allowed)
            .map(|a| Redaction {
                field: a.details.field.clone(),
                pii_type: a.details.extra.get("pii_type").and_then(Value::as_str).unwrap_or("UNKNOWN").to_owned(),
                action: a.details.action,
                count: a.details.extra.get("count").and_then(Value::as_u64).unwrap_or(1),
            })
            .collect();
        let status_label = match status {
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Rejected => "rejected",
        };
        metrics::histogram!("eventline_agent_execution_duration_seconds", "agent_id" => agent.as_str(), "status" => status_label)
            .record(started.elapsed().as_secs_f64());
        let result =
            ExecutionResult { execution_id, agent_id: agent, status, output, duration_ms, redactions, conversation_id };
        Ok(Committed { result: Ok(result), last_seq })
    }

    fn enqueue_alerts(
        &self,
        conn: &rusqlite::Connection,
        alerts: &[ComplianceAlert],
        traceparent: Option<&str>,
    ) -> Result<Option<i64>, ExecuteError> {
        let mut last = None;
        for mut record in alert_records(alerts) {
            if let Some(tp) = traceparent {
                record = record.with_header(eventline_pipeline::TRACEPARENT_HEADER, tp.to_owned());
            }
            last = Some(self.outbox.enqueue(conn, COMPLIANCE_ALERTS, &record)?);
        }
        Ok(last)
    }
}
