//! The two paths every event takes: in through the [`produce::Pipeline`] (stamp, schema,
//! governance, key, headers, append, alerts), out through the [`consume::ConsumerRuntime`]
//! (poll, handle, retry, dead-letter, commit what is done).

pub mod consume;
pub mod metered;
pub mod produce;
pub mod tail;

pub use consume::{
    ConsumerConfig, ConsumerRuntime, ConsumerStats, Handler, HandlerError, Outcome, RuntimeError, StatsSnapshot,
};
pub use produce::{
    Admitted, Appended, BatchError, Draft, EventError, Pipeline, Prepared, RESERVED_HEADER_PREFIX, TRACEPARENT_HEADER,
    alert_records, check_traceparent, key_pointer,
};
