//! Delivery state in the platform database (`notification_alerts`, `notification_deliveries`;
//! migration 004): per alert and channel, `pending` → `delivered` | `dead`, or `coalesced` into
//! an identical alert that went out on the same channel within the route's window. It survives
//! restarts: nothing delivered is sent again, nothing pending is dropped.

use chrono::{SecondsFormat, Utc};
use eventline_model::events::ComplianceAlert;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::config::Routing;

/// An alert taken in: the event and its JSON exactly as the log held it.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub alert: ComplianceAlert,
    pub body: String,
    /// The trace the alert's record belongs to (its `traceparent` header).
    pub traceparent: Option<String>,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn severity_text(alert: &ComplianceAlert) -> String {
    serde_json::to_value(alert.severity).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Records `alerts` and a delivery per channel their routes select, in one transaction. With a
/// coalescing window, an alert identical (type, component, field) to one that goes out on the
/// same channel within the window either side of its event time is `coalesced` into it.
/// Returns the deliveries created (an alert taken in before creates none).
pub fn take_in(conn: &mut Connection, alerts: &[Incoming], routing: &Routing, now_ms: i64) -> rusqlite::Result<u64> {
    let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
    let received = now_text();
    let mut created = 0;
    {
        let mut insert_alert = tx.prepare_cached(
            "INSERT INTO notification_alerts (alert_id, alert_type, severity, component, field, event_time, body, received_at, traceparent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (alert_id) DO NOTHING",
        )?;
        let mut leader = tx.prepare_cached(
            "SELECT d.alert_id FROM notification_deliveries d JOIN notification_alerts a ON a.alert_id = d.alert_id
             WHERE d.channel = ?1 AND d.state IN ('pending', 'delivered') AND a.alert_type = ?2 AND a.component = ?3
               AND a.field = ?4 AND a.event_time >= ?5 AND a.event_time <= ?6 AND a.alert_id <> ?7
             ORDER BY a.event_time LIMIT 1",
        )?;
        let mut insert_delivery = tx.prepare_cached(
            "INSERT INTO notification_deliveries (alert_id, channel, state, attempts, next_attempt_at, coalesced_into, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6) ON CONFLICT (alert_id, channel) DO NOTHING",
        )?;
        for Incoming { alert, body, traceparent } in alerts {
            let time = alert.timestamp.instant();
            let event_time = time.to_rfc3339_opts(SecondsFormat::Millis, true);
            let fresh = insert_alert.execute(params![
                alert.alert_id,
                alert.alert_type,
                severity_text(alert),
                alert.details.component,
                alert.details.field,
                event_time,
                body,
                received,
                traceparent
            ])? == 1;
            if !fresh {
                continue;
            }
            for sel in routing.select(&alert.alert_type, alert.severity) {
                let channel = &routing.channels[sel.channel].name;
                let into: Option<String> = match sel.coalesce {
                    Some(window) => {
                        // Within the window either side: alerts of several partitions arrive in
                        // any order.
                        let w = chrono::Duration::from_std(window).unwrap_or_default();
                        let from = (time - w).to_rfc3339_opts(SecondsFormat::Millis, true);
                        let to = (time + w).to_rfc3339_opts(SecondsFormat::Millis, true);
                        leader
                            .query_row(
                                params![
                                    channel,
                                    alert.alert_type,
                                    alert.details.component,
                                    alert.details.field,
                                    from,
                                    to,
                                    alert.alert_id
                                ],
                                |r| r.get(0),
                            )
                            .optional()?
                    }
                    None => None,
                };
                let state = if into.is_some() { "coalesced" } else { "pending" };
                created +=
                    insert_delivery.execute(params![alert.alert_id, channel, state, now_ms, into, received])? as u64;
            }
        }
    }
    tx.commit()?;
    Ok(created)
}

/// A delivery whose time has come.
#[derive(Clone, Debug)]
pub struct Due {
    pub alert_id: String,
    pub attempts: u32,
    pub body: String,
    pub traceparent: Option<String>,
}

/// Up to `limit` pending deliveries of `channel` due at `now_ms`, oldest first.
pub fn due(conn: &Connection, channel: &str, now_ms: i64, limit: usize) -> rusqlite::Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.alert_id, d.attempts, a.body, a.traceparent FROM notification_deliveries d
         JOIN notification_alerts a ON a.alert_id = d.alert_id
         WHERE d.channel = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
         ORDER BY d.next_attempt_at, a.event_time LIMIT ?3",
    )?;
    stmt.query_map(params![channel, now_ms, limit as i64], |r| {
        Ok(Due { alert_id: r.get(0)?, attempts: r.get(1)?, body: r.get(2)?, traceparent: r.get(3)? })
    })?
    .collect()
}

/// When the next pending delivery of `channel` is due (ms since the epoch).
pub fn next_due(conn: &Connection, channel: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT min(next_attempt_at) FROM notification_deliveries WHERE channel = ?1 AND state = 'pending'",
        [channel],
        |r| r.get(0),
    )
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub enum Attempt {
    Delivered,
    /// Failed; try again at this time (ms since the epoch).
    Retry {
        error: String,
        at_ms: i64,
    },
    /// Failed for the last time; it is in the dead-letter topic.
    Dead {
        error: String,
    },
}

/// Records the outcome of attempts on `channel`, in one transaction. The alerts coalesced into
/// one that went dead are pending again: each will be delivered or dead-lettered on its own.
pub fn record(conn: &mut Connection, channel: &str, results: &[(String, Attempt)]) -> rusqlite::Result<()> {
    let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
    let now = now_text();
    {
        let mut revive = tx.prepare_cached(
            "UPDATE notification_deliveries SET state = 'pending', coalesced_into = NULL, next_attempt_at = 0, updated_at = ?3
             WHERE channel = ?1 AND coalesced_into = ?2 AND state = 'coalesced'",
        )?;
        for (alert_id, attempt) in results {
            if matches!(attempt, Attempt::Dead { .. }) {
                revive.execute(params![channel, alert_id, now])?;
            }
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE notification_deliveries SET state = ?3, attempts = attempts + 1, next_attempt_at = ?4,
                    last_error = ?5, updated_at = ?6
             WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'",
        )?;
        for (alert_id, attempt) in results {
            let (state, at, error) = match attempt {
                Attempt::Delivered => ("delivered", 0, None),
                Attempt::Retry { error, at_ms } => ("pending", *at_ms, Some(error.as_str())),
                Attempt::Dead { error } => ("dead", 0, Some(error.as_str())),
            };
            stmt.execute(params![alert_id, channel, state, at, error, now])?;
        }
    }
    tx.commit()
}

/// One channel's delivery of an alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryView {
    pub channel: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub coalesced_into: Option<String>,
    pub updated_at: String,
}

/// A recent alert with its deliveries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    pub alert_id: String,
    pub alert_type: String,
    pub severity: String,
    pub component: String,
    pub field: String,
    pub timestamp: String,
    pub alert: Value,
    pub deliveries: Vec<DeliveryView>,
}

/// The `limit` most recent alerts (by event time), newest first, optionally of one type.
pub fn recent(conn: &Connection, limit: usize, alert_type: Option<&str>) -> rusqlite::Result<Vec<AlertView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT alert_id, alert_type, severity, component, field, event_time, body FROM notification_alerts
         WHERE ?1 IS NULL OR alert_type = ?1 ORDER BY event_time DESC, alert_id LIMIT ?2",
    )?;
    let mut alerts: Vec<AlertView> = stmt
        .query_map(params![alert_type, limit as i64], |r| {
            let body: String = r.get(6)?;
            Ok(AlertView {
                alert_id: r.get(0)?,
                alert_type: r.get(1)?,
                severity: r.get(2)?,
                component: r.get(3)?,
                field: r.get(4)?,
                timestamp: r.get(5)?,
                alert: serde_json::from_str(&body).unwrap_or(Value::String(body)),
                deliveries: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut deliveries = conn.prepare_cached(
        "SELECT channel, state, attempts, last_error, coalesced_into, updated_at FROM notification_deliveries
         WHERE alert_id = ?1 ORDER BY channel",
    )?;
    for a in &mut alerts {
        a.deliveries = deliveries
            .query_map([&a.alert_id], |r| {
                Ok(DeliveryView {
                    channel: r.get(0)?,
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    last_error: r.get(3)?,
                    coalesced_into: r.get(4)?,
                    updated_at: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(alerts)
}

/// Deliveries per channel and state, for status displays.
pub fn counts(conn: &Connection) -> rusqlite::Result<Vec<(String, String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT channel, state, count(*) FROM notification_deliveries GROUP BY channel, state ORDER BY channel, state",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?.collect()
}
