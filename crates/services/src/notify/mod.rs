//! Notifications: compliance alerts to webhooks, e-mail, the SIEM (RFC 5424 syslog carrying CEF)
//! and the log, per the operator's routes.
//!
//! - [`config`]: `[[notifications.channels]]`, `[[notifications.routes]]`, checked.
//! - [`service`]: consumer group `eventline-notify`; per-channel workers, retries, dead letters.
//! - [`store`]: per-alert, per-channel delivery state in the platform database.
//! - [`channel`]: sending on each kind of channel (HMAC-signed webhook, SMTP, syslog, log).
//! - [`siem`]: the syslog + CEF format.

pub mod channel;
pub mod config;
pub mod service;
pub mod siem;
pub mod store;

pub use config::{NotificationsConfig, Routing};
pub use service::{NOTIFY_GROUP, NotifyCounters, NotifyService};
