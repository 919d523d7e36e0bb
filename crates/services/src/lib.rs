//! The consumer services. Each is a consumer group on the log, running on the one consumer
//! runtime (`eventline_pipeline::ConsumerRuntime`); they never call each other.
//!
//! - [`analytics`]: per-agent counts, success rates and latency quantiles over sliding windows
//!   (`eventline-analytics`).
//! - [`prices`]: the price feed (`eventline-prices`), market data → the wealth agent's prices.
//! - [`audit`]: the tamper-evident audit trail (`eventline-audit`): a hash chain over RFC 8785
//!   canonical records with signed checkpoints, in the platform database.
//! - [`lake`]: the Parquet data lake and the PostgreSQL warehouse (`eventline-lake`).
//! - [`notify`]: notifications (`eventline-notify`): compliance alerts → webhook, e-mail, the SIEM
//!   (syslog + CEF) and the log, with per-channel delivery state, retries and dead letters.
//!
//! ```
//! use eventline_services::audit::chain::{Chain, canonical};
//! let mut chain = Chain::default();
//! let a = chain.append(canonical(&serde_json::json!({"offset": 0})).as_bytes());
//! let b = chain.append(canonical(&serde_json::json!({"offset": 1})).as_bytes());
//! assert_eq!(b.prev_hash, a.hash);
//! ```

pub mod analytics;
pub mod audit;
pub mod lake;
pub mod notify;
pub mod prices;
