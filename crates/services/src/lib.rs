//! The consumer services. Each is a consumer group on the log, running on the one consumer
//! runtime (`eventline_pipeline::ConsumerRuntime`); they never call each other.
//!
//! - [`prices`]: the price feed (`eventline-prices`), market data → the wealth agent's prices.
//! - [`audit_chain`]: the audit trail's hash chain.
//!
//! The audit trail's hash chain: every audit record is linked to the one before
//! it by a SHA-256 over the previous hash and the record's canonical JSON, so altering, removing
//! or reordering any record breaks every link after it.
//!
//! ```
//! use eventline_services::audit_chain::{Chain, verify};
//! let mut chain = Chain::default();
//! let a = chain.append(serde_json::json!({"topic": "agent.executions", "offset": 0}));
//! let b = chain.append(serde_json::json!({"topic": "agent.executions", "offset": 1}));
//! assert_eq!(verify(&[a, b]).unwrap().records, 2);
//! ```

pub mod audit_chain;
pub mod prices;
