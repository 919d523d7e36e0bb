//! The price feed: consumer group `eventline-prices` on `external.market.data`, keeping the wealth
//! agent's `prices` table at the last tick of each symbol (`eventline_platform::prices`).
//!
//! It runs on the consumer runtime: the ticks of one poll are applied in one database transaction,
//! and only after it committed are their offsets committed. A crash in between re-reads those
//! ticks on restart, which is harmless because applying a tick is idempotent and ordered by time.
//! A record that is not a valid tick goes to `external.market.data.dlq` (with the runtime's
//! `eventline.dlq.*` headers naming the error, topic, partition and offset) and is skipped. A new
//! group starts at the earliest tick still in the log (`OffsetReset::Earliest`): the prices are
//! rebuilt from what the log holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use eventline_log::{EventLog, OffsetReset, Record};
use eventline_model::topics::EXTERNAL_MARKET_DATA;
use eventline_pipeline::{
    ConsumerConfig, ConsumerRuntime, ConsumerStats, Handler, HandlerError, Outcome, RuntimeError,
};
use eventline_platform::db::Database;
use eventline_platform::prices::{TickOutcome, apply_tick, parse_tick};
use tokio::sync::watch;

/// The consumer group of the price feed.
pub const PRICE_FEED_GROUP: &str = "eventline-prices";

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

#[derive(Debug, Default)]
struct Counters {
    applied: AtomicU64,
    stale: AtomicU64,
    other_currency: AtomicU64,
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

struct TickHandler {
    db: Database,
    counters: Arc<Counters>,
}

#[async_trait]
impl Handler for TickHandler {
    async fn handle(&mut self, records: &[Record]) -> Result<Vec<Outcome>, HandlerError> {
        let records = records.to_vec();
        let (outcomes, counts) = self
            .db
            .call(move |conn| -> rusqlite::Result<(Vec<Outcome>, [u64; 3])> {
                let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
                let mut outcomes = Vec::with_capacity(records.len());
                let mut counts = [0u64; 3];
                for r in &records {
                    let tick = match parse_tick(r) {
                        Ok(t) => t,
                        Err(reason) => {
                            outcomes.push(Outcome::Reject(reason));
                            continue;
                        }
                    };
                    match apply_tick(&tx, &tick)? {
                        TickOutcome::Applied => counts[0] += 1,
                        TickOutcome::Stale => counts[1] += 1,
                        TickOutcome::OtherCurrency => {
                            tracing::warn!(symbol = %tick.symbol, currency = %tick.currency,
                                "tick not applied: the instrument is priced in another currency");
                            counts[2] += 1;
                        }
                    }
                    outcomes.push(Outcome::Done);
                }
                tx.commit()?;
                Ok((outcomes, counts))
            })
            .await
            .map_err(HandlerError::new)?;
        self.counters.applied.fetch_add(counts[0], Ordering::Relaxed);
        self.counters.stale.fetch_add(counts[1], Ordering::Relaxed);
        self.counters.other_currency.fetch_add(counts[2], Ordering::Relaxed);
        Ok(outcomes)
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

    /// The runtime this feed runs on (its counters are `stats()`).
    pub fn runtime(&self) -> ConsumerRuntime {
        ConsumerRuntime::new(
            self.log.clone(),
            ConsumerConfig::new(self.group.clone(), &[EXTERNAL_MARKET_DATA], OffsetReset::Earliest),
        )
    }

    /// Consumes until `stop` turns true: the batch in hand is applied and committed, then the
    /// member leaves the group. Returns what it did.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<FeedStats, RuntimeError> {
        self.run_on(self.runtime(), stop).await
    }

    /// Like [`PriceFeed::run`], on `runtime` (whose counters someone else holds).
    pub async fn run_on(
        &self,
        runtime: ConsumerRuntime,
        stop: watch::Receiver<bool>,
    ) -> Result<FeedStats, RuntimeError> {
        let counters = Arc::new(Counters::default());
        let stats: Arc<ConsumerStats> = runtime.stats();
        tracing::info!(group = %self.group, "price feed consuming {EXTERNAL_MARKET_DATA}");
        runtime.run(TickHandler { db: self.db.clone(), counters: counters.clone() }, stop).await?;
        let total = FeedStats {
            applied: counters.applied.load(Ordering::Relaxed),
            stale: counters.stale.load(Ordering::Relaxed),
            other_currency: counters.other_currency.load(Ordering::Relaxed),
            dead_lettered: stats.snapshot().dead_lettered,
        };
        tracing::info!(?total, "price feed stopped");
        Ok(total)
    }
}
