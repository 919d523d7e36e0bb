//! eventline's event model: the typed events of the contract, the `_metadata` envelope, the topic
//! catalog and one JSON Schema per topic. No I/O: every other crate builds on this one.
//!
//! ```
//! use eventline_model::{schema, events::AgentExecution};
//!
//! let seed = r#"{"execution_id":"exec-456","agent_id":"card_agent","status":"completed",
//!   "duration_ms":250,"input":{"query":"check my card balance"},"output":{"balance":5432.10},
//!   "timestamp":"2024-11-27T00:00:00Z","_metadata":{"timestamp":"2024-11-27T00:00:00.123Z",
//!   "message_id":"msg-uuid-456","producer":"enterprise-agent-platform"}}"#;
//! let value: serde_json::Value = serde_json::from_str(seed).unwrap();
//! schema::validate("agent.executions", &value).unwrap();
//! let typed: AgentExecution = serde_json::from_value(value).unwrap();
//! assert_eq!(typed.duration_ms, 250);
//! ```

pub mod events;
mod metadata;
pub mod schema;
pub mod secrets;
mod timestamp;
pub mod topics;

pub use metadata::{DEFAULT_PRODUCER, MessageId, Metadata};
pub use timestamp::{Timestamp, TimestampError};
