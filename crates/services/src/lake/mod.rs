//! The data lake: consumer group `eventline-lake`, Parquet under
//! `<lake>/<topic>/date=YYYY-MM-DD/`, exactly once, and an optional PostgreSQL warehouse.
//!
//! - [`layout`]: each topic's typed columns.
//! - [`files`]: naming, writing (temporary, fsync, rename), resume points, compaction.
//! - [`service`]: the consumer (`run`, and `sync` for `eventline lake sync`).
//! - [`warehouse`]: the same rows in one PostgreSQL table per topic.

pub mod files;
pub mod layout;
pub mod service;
pub mod warehouse;

pub use service::{LAKE_GROUP, LakeCounters, LakeService, Roll};
