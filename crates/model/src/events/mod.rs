//! The five event kinds of the contract (SPEC §2), each a typed struct with the `_metadata`
//! envelope and a top-level `timestamp`. Unknown fields are kept in `extra` so that events from
//! other producers survive a round trip unchanged.

mod agent_execution;
mod compliance_alert;
mod crm;
mod db_change;
mod market;

pub use agent_execution::{AgentExecution, AgentId, AgentInput, ExecutionStatus};
pub use compliance_alert::{AlertAction, AlertDetails, ComplianceAlert, Severity};
pub use crm::{CrmAction, CrmEntityType, CrmEvent};
pub use db_change::{ChangeKind, DbChange, Row, SourceTable};
pub use market::MarketTick;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Metadata, Timestamp};

/// What every typed event offers: where it goes, how it is keyed, its envelope.
pub trait Event: Serialize + DeserializeOwned {
    /// The topic this event is appended to.
    fn topic(&self) -> &'static str;

    /// The partitioning key (SPEC §1), if the event has one.
    fn key(&self) -> Option<String>;

    fn metadata(&self) -> &Metadata;

    fn timestamp(&self) -> &Timestamp;

    /// The event as a JSON value (what goes on the wire).
    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("typed events always serialise")
    }
}

/// Renders a JSON scalar as a key string: strings as-is, numbers and booleans as text.
pub fn key_of(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}
