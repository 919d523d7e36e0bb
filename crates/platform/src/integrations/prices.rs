//! [`PriceFeed`]: the consumer group (`eventline-prices`) on `external.market.data` that keeps the
//! wealth agent's `prices` table at the last tick of each symbol.
//!
//! Ack, then commit: the ticks of one poll are applied in one database transaction, and only after
//! it committed are the group's offsets committed. A crash in between re-reads those ticks on
//! restart, which is harmless because applying a tick is idempotent and ordered by time:
//!
//! - a tick replaces the price only if its `timestamp` is at least the stored `as_of` — a replayed
//!   or late tick never overwrites a newer price;
//! - a tick in another currency than the instrument's is not applied (no FX conversion here);
//! - a symbol not in `prices` yet is added with the tick's optional `name` and `asset_class`
//!   (`equity`, `fixed_income`, `commodity`; `equity` and the symbol when absent);
//! - a record that is not a valid tick goes to `external.market.data.dlq` with its key and an
//!   `error` header, and is skipped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use eventline_log::{EventLog, LogError, OffsetReset, ProduceRecord, Record};
use eventline_model::events::MarketTick;
use eventline_model::schema;
use eventline_model::topics::{Acks, EXTERNAL_MARKET_DATA, dead_letter_topic};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

use crate::db::Database;

/// The consumer group of the price feed.
pub const PRICE_FEED_GROUP: &str = "eventline-prices";

/// Records taken per poll (and per database transaction).
const MAX_POLL: usize = 500;

/// How long a poll waits for the first record; also how soon a stop request is seen.
const POLL_WAIT: Duration = Duration::from_millis(200);

const ASSET_CLASSES: [&str; 3] = ["equity", "fixed_income", "commodity"];

/// What the feed did with the ticks it read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Ticks that set a price (or added an instrument).
    pub applied: u64,
    /// Ticks older than the stored price (replays, late arrivals): not applied.
    pub stale: u64,
    /// Ticks in another currency than the instrument's: not applied.
    pub other_currency: u64,
    /// Records that are not valid ticks, sent to the dead-letter topic.
    pub dead_lettered: u64,
}

impl std::ops::AddAssign for FeedStats {
    fn add_assign(&mut self, o: Self) {
        self.applied += o.applied;
        self.stale += o.stale;
        self.other_currency += o.other_currency;
        self.dead_lettered += o.dead_lettered;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PriceFeedError {
    #[error("the log: {0}")]
    Log(#[from] LogError),
    #[error("the database: {0}")]
    Database(#[from] rusqlite::Error),
}

/// What happened to one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickOutcome {
    Applied,
    Stale,
    OtherCurrency,
}

/// Market data → `prices`. See the module documentation.
#[derive(Clone)]
pub struct PriceFeed {
    log: Arc<dyn EventLog>,
    db: Database,
    group: String,
}

impl std::fmt::Debug for PriceFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceFeed").field("log", &self.log.backend()).field("group", &self.group).finish()
    }
}

impl PriceFeed {
    pub fn new(log: Arc<dyn EventLog>, db: Database) -> Self {
        Self { log, db, group: PRICE_FEED_GROUP.to_owned() }
    }

    /// Uses consumer group `group` instead of [`PRICE_FEED_GROUP`].
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Consumes until `stop` turns true: the batch in hand is applied and committed, then the
    /// member leaves the group. Returns what it did.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<FeedStats, PriceFeedError> {
        let dlq = dead_letter_topic(EXTERNAL_MARKET_DATA);
        if let Ok(d) = self.log.describe_topic(EXTERNAL_MARKET_DATA).await {
            self.log.ensure_topic(&d.spec.dead_letter()).await?;
        }
        let mut consumer =
            self.log.subscribe(&self.group, &[EXTERNAL_MARKET_DATA.to_owned()], OffsetReset::Earliest).await?;
        tracing::info!(group = %self.group, "price feed consuming {EXTERNAL_MARKET_DATA}");
        let mut total = FeedStats::default();
        while !*stop.borrow() {
            let records = consumer.poll(MAX_POLL, POLL_WAIT).await?;
            if records.is_empty() {
                continue;
            }
            let (stats, rejects) = self.db.call(move |conn| apply_records(conn, &records)).await?;
            if !rejects.is_empty() {
                for (_, reason) in &rejects {
                    tracing::warn!(reason = %reason, "market-data record is not a valid tick; sent to {dlq}");
                }
                let dead = rejects.into_iter().map(|(r, reason)| dead_letter(r, &reason)).collect();
                self.log.produce(&dlq, dead, Acks::All).await?;
            }
            // Only now: the prices are committed in the database (and the rejects in the DLQ).
            consumer.commit().await?;
            tracing::debug!(?stats, "price feed applied a batch");
            total += stats;
        }
        consumer.commit().await?;
        consumer.close().await?;
        tracing::info!(?total, "price feed stopped");
        Ok(total)
    }
}

fn dead_letter(r: Record, reason: &str) -> ProduceRecord {
    let mut out = ProduceRecord { key: r.key, value: r.value, headers: r.headers, ..Default::default() };
    out = out.with_header("error", Bytes::copy_from_slice(reason.as_bytes()));
    out.with_header("source", Bytes::from(format!("{}/{}/{}", r.topic, r.partition, r.offset)))
}

/// Applies `records` in one transaction; returns the counts and the records that are no ticks.
fn apply_records(
    conn: &mut Connection,
    records: &[Record],
) -> Result<(FeedStats, Vec<(Record, String)>), rusqlite::Error> {
    let tx = crate::store::sqlite::write_transaction(conn)?;
    let mut stats = FeedStats::default();
    let mut rejects = Vec::new();
    for r in records {
        let tick = match parse_tick(r) {
            Ok(t) => t,
            Err(reason) => {
                stats.dead_lettered += 1;
                rejects.push((r.clone(), reason));
                continue;
            }
        };
        match apply_tick(&tx, &tick)? {
            TickOutcome::Applied => stats.applied += 1,
            TickOutcome::Stale => stats.stale += 1,
            TickOutcome::OtherCurrency => {
                tracing::warn!(symbol = %tick.symbol, currency = %tick.currency, "tick not applied: the instrument is priced in another currency");
                stats.other_currency += 1;
            }
        }
    }
    tx.commit()?;
    Ok((stats, rejects))
}

fn parse_tick(r: &Record) -> Result<MarketTick, String> {
    let value: serde_json::Value =
        serde_json::from_slice(r.value.as_deref().unwrap_or_default()).map_err(|e| format!("not JSON: {e}"))?;
    schema::validate(EXTERNAL_MARKET_DATA, &value).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| format!("not a tick: {e}"))
}

/// Applies one tick to `prices` (see the module documentation for the rules).
pub fn apply_tick(conn: &Connection, tick: &MarketTick) -> rusqlite::Result<TickOutcome> {
    let at = tick.timestamp.instant();
    let as_of = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let current: Option<(String, String)> = conn
        .query_row("SELECT currency, as_of FROM prices WHERE symbol = ?1", [&tick.symbol], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match current {
        None => {
            let name = tick.extra.get("name").and_then(|v| v.as_str()).filter(|s| !s.trim().is_empty());
            let class = tick
                .extra
                .get("asset_class")
                .and_then(|v| v.as_str())
                .filter(|c| ASSET_CLASSES.contains(c))
                .unwrap_or("equity");
            conn.execute(
                "INSERT INTO prices (symbol, name, asset_class, price, currency, as_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tick.symbol, name.unwrap_or(&tick.symbol), class, tick.price, tick.currency, as_of],
            )?;
            Ok(TickOutcome::Applied)
        }
        Some((currency, _)) if currency != tick.currency => Ok(TickOutcome::OtherCurrency),
        Some((_, stored)) => {
            // An as_of that is not RFC 3339 (written by hand) counts as older than any tick.
            let newer_stored =
                DateTime::parse_from_rfc3339(&stored).map(|s| s.with_timezone(&Utc) > at).unwrap_or(false);
            if newer_stored {
                return Ok(TickOutcome::Stale);
            }
            conn.execute(
                "UPDATE prices SET price = ?2, as_of = ?3 WHERE symbol = ?1",
                params![tick.symbol, tick.price, as_of],
            )?;
            Ok(TickOutcome::Applied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::tests_support::bank;
    use serde_json::json;

    fn tick(symbol: &str, price: f64, currency: &str, at: &str) -> MarketTick {
        serde_json::from_value(json!({
            "symbol": symbol, "price": price, "currency": currency, "timestamp": at,
            "_metadata": {"timestamp": at, "message_id": "m", "producer": "t"}
        }))
        .unwrap()
    }

    fn price(conn: &Connection, symbol: &str) -> f64 {
        conn.query_row("SELECT price FROM prices WHERE symbol = ?1", [symbol], |r| r.get(0)).unwrap()
    }

    #[test]
    fn newer_ticks_apply_older_ones_do_not() {
        let (_dir, conn) = bank();
        let t1 = tick("AAPL", 250.0, "USD", "2999-01-01T10:00:00Z");
        assert_eq!(apply_tick(&conn, &t1).unwrap(), TickOutcome::Applied);
        assert_eq!(price(&conn, "AAPL"), 250.0);
        // a replay of the same tick is harmless
        assert_eq!(apply_tick(&conn, &t1).unwrap(), TickOutcome::Applied);
        // an older tick (other offset in the timestamp, earlier instant) is not applied
        let old = tick("AAPL", 100.0, "USD", "2999-01-01T11:59:00+02:00");
        assert_eq!(apply_tick(&conn, &old).unwrap(), TickOutcome::Stale);
        assert_eq!(price(&conn, "AAPL"), 250.0);
        // the seeded price is from now: a tick from the past does not replace it
        assert_eq!(apply_tick(&conn, &tick("VTI", 1.0, "USD", "2001-01-01T00:00:00Z")).unwrap(), TickOutcome::Stale);
        assert_eq!(
            apply_tick(&conn, &tick("VTI", 1.0, "EUR", "2999-01-01T00:00:00Z")).unwrap(),
            TickOutcome::OtherCurrency
        );
        // a new instrument is added
        assert_eq!(
            apply_tick(&conn, &tick("MSFT", 410.5, "USD", "2999-01-01T00:00:00Z")).unwrap(),
            TickOutcome::Applied
        );
        assert_eq!(price(&conn, "MSFT"), 410.5);
    }
}
