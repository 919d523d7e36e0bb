//! The wealth agent's `prices`: how a market-data tick moves them. The consumer that feeds them
//! from `external.market.data` is the price-feed service (`eventline_services::prices`).
//!
//! Applying a tick is idempotent and ordered by time, so replays are harmless:
//!
//! - a tick replaces the price only if its `timestamp` is at least the stored `as_of` — a replayed
//!   or late tick never overwrites a newer price;
//! - a tick in another currency than the instrument's is not applied (no FX conversion here);
//! - a symbol not in `prices` yet is added with the tick's optional `name` and `asset_class`
//!   (`equity`, `fixed_income`, `commodity`; `equity` and the symbol when absent).

use chrono::{DateTime, Utc};
use eventline_log::Record;
use eventline_model::events::MarketTick;
use eventline_model::schema;
use eventline_model::topics::EXTERNAL_MARKET_DATA;
use rusqlite::{Connection, OptionalExtension, params};

const ASSET_CLASSES: [&str; 3] = ["equity", "fixed_income", "commodity"];

/// What happened to one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickOutcome {
    Applied,
    Stale,
    OtherCurrency,
}

/// The tick a record holds, or why it holds none.
pub fn parse_tick(r: &Record) -> Result<MarketTick, String> {
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
