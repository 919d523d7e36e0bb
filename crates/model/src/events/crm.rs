use serde::{Deserialize, Serialize};

use super::Event;
use crate::{Metadata, Timestamp};

/// The CRM object a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmEntityType {
    Contact,
    Account,
    Case,
    Opportunity,
    Lead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmAction {
    Created,
    Updated,
    Deleted,
}

/// A change in an external CRM (CRM/ServiceNow integration). Keyed by `entity_id`.
///
/// ```json
/// {"event_id": "crm-1", "source": "servicenow", "entity_type": "case", "entity_id": "CS0012",
///  "action": "updated", "attributes": {"state": "resolved"}, "timestamp": "...", "_metadata": {...}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrmEvent {
    pub event_id: String,
    /// The system of record, e.g. `salesforce`, `servicenow`.
    pub source: String,
    pub entity_type: CrmEntityType,
    pub entity_id: String,
    pub action: CrmAction,
    /// The entity's fields after the change (or the changed fields), as the CRM sent them.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub timestamp: Timestamp,
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for CrmEvent {
    fn topic(&self) -> &'static str {
        crate::topics::EXTERNAL_CRM_EVENTS
    }

    fn key(&self) -> Option<String> {
        Some(self.entity_id.clone())
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn timestamp(&self) -> &Timestamp {
        &self.timestamp
    }
}
