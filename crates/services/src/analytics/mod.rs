//! Real-time analytics of the agents: consumer group `eventline-analytics`.
//!
//! - [`window`]: the aggregation (10-second buckets of event time, HDR latency histograms).
//! - [`service`]: the consumer, the rebuild from the log on start, per-topic rates, reports.

pub mod service;
pub mod window;

pub use service::{ANALYTICS_GROUP, AnalyticsService, Report, report_from_log};
pub use window::{Aggregator, Window};
