//! [`AgentExecutor`]: one end-user query from start to finish.
//!
//! 1. The query is an inbound payload: the governance gate scans it (`/input/query`,
//!    `agent_input`) and only its redacted form is kept.
//! 2. The planner picks the agent from the query; the agent answers from the database.
//! 3. The gate masks the agent's output (`/output/...`, `agent_output`) before anything else
//!    sees it.
//! 4. The `agent.executions` event (redacted query and output) and one `compliance.alerts` event
//!    per PII type and field of this execution (never the raw value) are appended with acks=all.
//! 5. The turn (redacted) is appended to the conversation; capture turns that write into a
//!    `db.changes.conversations` event.
//!
//! Only then does the caller get the (redacted) answer.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use eventline_governance::{Gate, Location};
use eventline_log::{EventLog, LogError, ProduceRecord};
use eventline_model::events::{
    AgentExecution, AgentId, AgentInput, AlertAction, ComplianceAlert, Event, ExecutionStatus,
};
use eventline_model::topics::{AGENT_EXECUTIONS, Acks, COMPLIANCE_ALERTS};
use eventline_model::{Metadata, Timestamp, schema};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::agents::{self, AgentRequest};
use crate::conversations::{self, ConversationError};
use crate::db::Database;
use crate::planner::{Planner, Route};
use crate::users;

/// A query as the gateway hands it over (already checked for shape and size).
#[derive(Clone, Debug)]
pub struct QueryRequest {
    pub user_id: String,
    /// Continue this conversation; a new one is started when `None`.
    pub conversation_id: Option<String>,
    pub query: String,
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
    Database(String),
    #[error("event fails its schema: {0}")]
    Schema(String),
}

impl From<rusqlite::Error> for ExecuteError {
    fn from(e: rusqlite::Error) -> Self {
        ExecuteError::Database(e.to_string())
    }
}

impl From<ConversationError> for ExecuteError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::OtherUser(id) => ExecuteError::ConversationOfAnotherUser(id),
            other => ExecuteError::Database(other.to_string()),
        }
    }
}

/// The component named in alerts about the query itself.
const GATEWAY_COMPONENT: &str = "gateway";

/// Runs queries: planner → agent → governance → log and conversation. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    log: Arc<dyn EventLog>,
    gate: Arc<Gate>,
    planner: Planner,
    producer: String,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentExecutor").field("db", &self.db.path()).field("log", &self.log.backend()).finish()
    }
}

impl AgentExecutor {
    pub fn new(db: Database, log: Arc<dyn EventLog>, gate: Arc<Gate>, producer: impl Into<String>) -> Self {
        Self { inner: Arc::new(Inner { db, log, gate, planner: Planner::default(), producer: producer.into() }) }
    }

    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.inner.log
    }

    /// The governance gate every event of this process passes.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.inner.gate
    }

    /// The `_metadata.producer` of the events it writes.
    pub fn producer(&self) -> &str {
        &self.inner.producer
    }

    /// Runs `request` to the end. Not cancel-safe: callers that may be dropped (an HTTP handler
    /// whose client went away) run it on a task of its own, so a card blocked in the database
    /// always gets its `agent.executions` event.
    pub async fn execute(&self, request: QueryRequest) -> Result<ExecutionResult, ExecuteError> {
        let me = &*self.inner;
        let started = Instant::now();
        let execution_id = uuid::Uuid::now_v7().to_string();
        let QueryRequest { user_id, conversation_id, query } = request;

        let (uid, cid) = (user_id.clone(), conversation_id.clone());
        me.db
            .call(move |conn| -> Result<(), ExecuteError> {
                if !users::exists(conn, &uid)? {
                    return Err(ExecuteError::UnknownUser(uid));
                }
                if let Some(cid) = cid
                    && let Some(c) = conversations::get(conn, &cid)?
                    && c.user_id != uid
                {
                    return Err(ExecuteError::ConversationOfAnotherUser(cid));
                }
                Ok(())
            })
            .await?;

        // 1. The query, as an inbound payload.
        let mut input = json!({"input": {"query": query}, "_metadata": {"message_id": execution_id}});
        let mut alerts = me.gate.apply(AGENT_EXECUTIONS, &mut input, GATEWAY_COMPONENT, Location::AgentInput).alerts;
        let redacted_query = input.pointer("/input/query").and_then(Value::as_str).unwrap_or("[REDACTED]").to_owned();

        // 2. Planner and agent (on the raw query: it never leaves this function).
        let agent = match me.planner.route(&query) {
            Route::Agent(agent, _) => agent,
            Route::Unclear => {
                self.append_alerts(&alerts).await?;
                return Err(ExecuteError::Unroutable);
            }
        };
        let (uid, q) = (user_id.clone(), query);
        let answer = me.db.call(move |conn| agents::run(agent, conn, &AgentRequest::new(&uid, &q))).await;
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

        // 3. The answer, before anyone sees it.
        let mut answer = json!({"output": output, "_metadata": {"message_id": execution_id}});
        alerts.extend(me.gate.apply(AGENT_EXECUTIONS, &mut answer, agent.as_str(), Location::AgentOutput).alerts);
        let output = match answer.get_mut("output").map(Value::take) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };

        // 4. The events.
        let conversation_id = conversation_id.unwrap_or_else(|| format!("conv_{}", uuid::Uuid::now_v7().simple()));
        let mut input_extra = Map::new();
        input_extra.insert("user_id".into(), Value::String(user_id.clone()));
        input_extra.insert("conversation_id".into(), Value::String(conversation_id.clone()));
        let duration_ms = started.elapsed().as_millis() as u64;
        let event = AgentExecution {
            execution_id: execution_id.clone(),
            agent_id: agent,
            status,
            duration_ms,
            input: AgentInput { query: redacted_query.clone(), extra: input_extra },
            output: output.clone(),
            timestamp: Timestamp::now(),
            metadata: Metadata::new(me.producer.clone()),
            extra: Map::new(),
        };
        let value = event.to_value();
        schema::validate(AGENT_EXECUTIONS, &value).map_err(|e| ExecuteError::Schema(e.to_string()))?;
        let record = ProduceRecord::new(event.key(), Bytes::from(serde_json::to_vec(&value).expect("JSON serialises")));
        me.log.produce(AGENT_EXECUTIONS, vec![record], Acks::All).await?;
        self.append_alerts(&alerts).await?;

        // 5. The conversation.
        let turn = json!({
            "execution_id": execution_id,
            "timestamp": event.timestamp,
            "agent_id": agent,
            "status": status,
            "query": redacted_query,
            "output": output,
        });
        let (cid, uid) = (conversation_id.clone(), user_id);
        me.db.call(move |conn| conversations::append_turn(conn, &cid, &uid, turn)).await?;

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
        Ok(ExecutionResult { execution_id, agent_id: agent, status, output, duration_ms, redactions, conversation_id })
    }

    async fn append_alerts(&self, alerts: &[ComplianceAlert]) -> Result<(), ExecuteError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(alerts.len());
        for a in alerts {
            let value = a.to_value();
            schema::validate(COMPLIANCE_ALERTS, &value).map_err(|e| ExecuteError::Schema(e.to_string()))?;
            records
                .push(ProduceRecord::new(a.key(), Bytes::from(serde_json::to_vec(&value).expect("JSON serialises"))));
        }
        self.inner.log.produce(COMPLIANCE_ALERTS, records, Acks::All).await?;
        Ok(())
    }
}
