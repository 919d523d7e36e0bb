use serde::{Deserialize, Serialize};

use super::Event;
use crate::{Metadata, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// What the governance engine did about a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertAction {
    /// Replaced by a typed mask such as `[SSN]`.
    Redacted,
    /// The request or event was refused.
    Blocked,
    /// Partly shown (e.g. a card's BIN and last four).
    Masked,
    /// Replaced by a keyed hash.
    Hashed,
    /// The field was removed.
    Dropped,
    /// Allowed by policy, reported only.
    Allowed,
}

/// `details` of an alert. Never carries the raw value it reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertDetails {
    /// The component where the finding was made, e.g. `card_agent` or `crm_integration`.
    pub component: String,
    /// The field or entity type, e.g. `ssn`, `output.message`.
    pub field: String,
    pub action: AlertAction,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A compliance finding (seed: "Compliance Alert Event"). Keyed by `alert_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComplianceAlert {
    pub alert_id: String,
    /// e.g. `PII_EXPOSURE`.
    pub alert_type: String,
    pub severity: Severity,
    pub details: AlertDetails,
    pub timestamp: Timestamp,
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for ComplianceAlert {
    fn topic(&self) -> &'static str {
        crate::topics::COMPLIANCE_ALERTS
    }

    fn key(&self) -> Option<String> {
        Some(self.alert_id.clone())
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn timestamp(&self) -> &Timestamp {
        &self.timestamp
    }
}
