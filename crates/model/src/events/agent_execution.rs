use serde::{Deserialize, Serialize};

use super::Event;
use crate::{Metadata, Timestamp};

/// The domain agents behind the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentId {
    CardAgent,
    LoanAgent,
    WealthAgent,
}

impl AgentId {
    pub const ALL: [AgentId; 3] = [Self::CardAgent, Self::LoanAgent, Self::WealthAgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardAgent => "card_agent",
            Self::LoanAgent => "loan_agent",
            Self::WealthAgent => "wealth_agent",
        }
    }
}

/// How an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Completed,
    Failed,
    /// Refused by policy (e.g. governance blocked the request).
    Rejected,
}

/// `input` of an execution: the end user's query plus anything else the planner passed on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentInput {
    pub query: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One agent execution (seed: "Agent Execution Event"). Keyed by `execution_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentExecution {
    pub execution_id: String,
    pub agent_id: AgentId,
    pub status: ExecutionStatus,
    pub duration_ms: u64,
    pub input: AgentInput,
    pub output: serde_json::Map<String, serde_json::Value>,
    pub timestamp: Timestamp,
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for AgentExecution {
    fn topic(&self) -> &'static str {
        crate::topics::AGENT_EXECUTIONS
    }

    fn key(&self) -> Option<String> {
        Some(self.execution_id.clone())
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn timestamp(&self) -> &Timestamp {
        &self.timestamp
    }
}
