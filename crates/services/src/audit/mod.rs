//! The tamper-evident audit trail.
//!
//! - [`service`]: consumer group `eventline-audit`, log records → trail, idempotent, committed
//!   after the trail is durable.
//! - [`record`]: what a trail record says (PCI DSS 10.2.2: who, what, when, outcome, origin,
//!   resource) and the event itself.
//! - [`chain`]: the hash chain over RFC 8785 canonical JSON.
//! - [`signing`]: the Ed25519 key and signed checkpoints of the head.
//! - [`store`]: the trail in the platform database; query and retention.
//! - [`verify`]: finds the first record that was altered, removed, inserted, reordered or cut off.
//! - [`coverage`]: `audit verify --against-log`, every record still in the log is in the trail.

pub mod chain;
pub mod coverage;
pub mod record;
pub mod service;
pub mod signing;
pub mod store;
pub mod verify;

pub use service::{AUDIT_GROUP, AUDITED_TOPICS, AuditCounters, AuditOptions, AuditService};
pub use signing::AuditSigner;
