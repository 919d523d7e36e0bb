//! Capture from SQLite: triggers write row images to an outbox in the writer's transaction; a
//! relay appends them to the log in commit order and deletes them once durable.

mod relay;
mod triggers;

pub use relay::{Backlog, SEQ_HEADER, SqliteCapture, backlog};

pub use crate::capture::SOURCE_HEADER;
pub use triggers::{OUTBOX, install};
