//! Change data capture: row changes of `Users` and `conversations` become `db.changes.*` events,
//! from SQLite (triggers writing an outbox in the same transaction) and from PostgreSQL logical
//! replication (`pgoutput`), with no loss and no duplicates across restarts.
//!
//! Two sources: SQLite ([`sqlite::SqliteCapture`]) and PostgreSQL ([`postgres::PgCapture`]).
//! PostgreSQL positions are [`Lsn`]s, which lag metrics and the durable resume point are built on:
//!
//! ```
//! use eventline_cdc::Lsn;
//! let flushed: Lsn = "16/B374D848".parse().unwrap();
//! let acked: Lsn = "16/B3740000".parse().unwrap();
//! assert_eq!(flushed.bytes_after(acked), 0xD848);
//! assert_eq!(flushed.to_string(), "16/B374D848");
//! ```

pub mod capture;
mod error;
mod lsn;
pub mod postgres;
pub mod sqlite;

pub use error::{CdcError, Result};
pub use lsn::{Lsn, LsnError};
