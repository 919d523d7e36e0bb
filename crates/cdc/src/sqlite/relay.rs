//! The relay: reads the outbox in commit order, turns rows into `db.changes.*` events, passes them
//! through the governance gate, appends them with acks=all, and only then deletes the rows.
//!
//! No loss: a row leaves the outbox only after its event is durable. No duplicates: every record
//! carries its outbox sequence number and this database's source id in headers; on start the relay
//! reads the tail of each partition to learn the last sequence number it holds, and skips rows at
//! or below it (they were appended before a crash that came before the delete). This works per
//! partition because a key always maps to the same partition and rows are appended in sequence
//! order, so a crash in the middle of a multi-partition append is resolved exactly.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eventline_governance::Location;
use eventline_log::EventLog;
use eventline_log::partitioner::partition_for_key;
use eventline_model::events::{ChangeKind, DbChange, Row, SourceTable};
use eventline_model::topics::{Acks, TopicSpec};
use eventline_model::{Metadata, Timestamp};
use eventline_pipeline::{Draft, Pipeline, Prepared};
use rusqlite::Connection;
use tokio::sync::watch;

use super::triggers::{self, OUTBOX};
use crate::capture::{SOURCE_HEADER, header_text, last_in_partition, message_id};
use crate::error::{CdcError, Result};

/// Header holding the outbox sequence number of a captured change.
pub const SEQ_HEADER: &str = "eventline.cdc.seq";

const TABLES: [SourceTable; 2] = [SourceTable::Users, SourceTable::Conversations];

/// Outbox backlog: what is captured but not yet relayed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    pub rows: u64,
    /// Commit time of the oldest row not yet relayed.
    pub oldest: Option<String>,
}

/// Capture of `Users` and `conversations` from one SQLite database.
pub struct SqliteCapture {
    /// The relay's connection; used on the blocking pool, never on the async runtime.
    conn: Arc<std::sync::Mutex<Connection>>,
    pipeline: Pipeline,
    source_id: String,
    partitions: HashMap<&'static str, u32>,
    relayed: HashMap<(&'static str, u32), i64>,
    batch: usize,
    /// Highest outbox sequence number whose event is durable in the log (this process).
    relayed_upto: i64,
    /// Highest sequence number deleted from the outbox.
    deleted_upto: i64,
    last_delete: std::time::Instant,
    /// Capture lag in microseconds as of the last batch (for status displays).
    lag_us: Arc<std::sync::atomic::AtomicU64>,
}

/// Relayed rows are deleted in bulk, off the latency path: once this many are pending deletion...
const DELETE_EVERY_ROWS: i64 = 5000;
/// ...or this long after the last delete, or as soon as the relay is idle.
const DELETE_EVERY: Duration = Duration::from_millis(200);

impl std::fmt::Debug for SqliteCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCapture").field("source_id", &self.source_id).field("relayed", &self.relayed).finish()
    }
}

struct OutboxRow {
    seq: i64,
    table: SourceTable,
    kind: ChangeKind,
    before: Option<Row>,
    after: Option<Row>,
    changed_at: Timestamp,
    /// Bytes of the stored row images.
    bytes: usize,
    /// The writer's trace context (a valid W3C traceparent, or none).
    traceparent: Option<String>,
}

impl SqliteCapture {
    /// Opens the database at `path`, applies the migrations, installs the capture triggers and
    /// learns from the log what was already relayed. Events go through `pipeline`.
    pub async fn open(path: &Path, pipeline: Pipeline) -> Result<Self> {
        let log: Arc<dyn EventLog> = pipeline.log().clone();
        let mut conn = eventline_platform::store::sqlite::open(path)?;
        check_schema(&conn, path)?;
        let source_id = triggers::install(&mut conn, &TABLES)?;
        // The relay's own writes are outbox deletes: losing one to a power cut only means the row
        // is read again and skipped (its event is in the log), so they need not wait for fsync.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut partitions = HashMap::new();
        let mut relayed = HashMap::new();
        for table in TABLES {
            let topic = table.topic();
            let d = log.describe_topic(topic).await?;
            partitions.insert(topic, d.spec.partitions);
            for p in 0..d.spec.partitions {
                relayed.insert((topic, p), last_relayed(&*log, topic, p, &source_id).await?);
            }
        }
        Ok(Self {
            conn: Arc::new(std::sync::Mutex::new(conn)),
            pipeline,
            source_id,
            partitions,
            relayed,
            batch: 1000,
            relayed_upto: 0,
            deleted_upto: 0,
            last_delete: std::time::Instant::now(),
            lag_us: Arc::default(),
        })
    }

    /// Shares `gauge` as where this capture keeps its lag (microseconds), so a reopened capture
    /// goes on updating what a status display reads.
    pub fn with_lag_gauge(mut self, gauge: Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.lag_us = gauge;
        self
    }

    /// This database's capture source id.
    pub fn source_id(&self) -> &str {
        &self.source_id
    }

    /// Relays up to one batch; returns how many outbox rows it consumed.
    pub async fn relay_once(&mut self) -> Result<usize> {
        let (upto, batch) = (self.relayed_upto, self.batch);
        let rows = self.on_conn(move |c| read_batch(c, upto, batch)).await?;
        let Some(last_seq) = rows.last().map(|r| r.seq) else {
            metrics::gauge!("eventline_cdc_lag_seconds", "source" => "sqlite").set(0.0);
            self.lag_us.store(0, std::sync::atomic::Ordering::Relaxed);
            metrics::gauge!("eventline_cdc_lag_bytes", "source" => "sqlite").set(0.0);
            self.delete_relayed().await?;
            return Ok(0);
        };
        let oldest_ms = rows.iter().map(|r| r.changed_at.unix_millis()).min().unwrap_or_default();
        let batch_bytes: usize = rows.iter().map(|r| r.bytes).sum();
        let mut by_topic: HashMap<&'static str, Vec<(i64, Prepared)>> = HashMap::new();
        let mut alerts = Vec::new();
        let count = rows.len();
        for row in rows {
            let topic = row.table.topic();
            let event = DbChange::from_images(
                row.kind,
                row.table,
                row.before,
                row.after,
                row.changed_at.clone(),
                Metadata {
                    timestamp: Timestamp::now(),
                    message_id: message_id(
                        &[self.source_id.as_bytes(), &row.seq.to_be_bytes()],
                        row.seq as u64,
                        row.changed_at.unix_millis(),
                    ),
                    producer: self.pipeline.producer().to_owned(),
                    extra: Default::default(),
                },
            );
            // The change's writer traced it: the capture joins that trace, and the event carries it on.
            let traceparent = row.traceparent.map(|tp| {
                let span = tracing::info_span!("cdc capture", table = row.table.sql_name(), seq = row.seq);
                eventline_telemetry::set_parent(&span, &tp);
                eventline_telemetry::traceparent(&span).unwrap_or(tp)
            });
            let draft = Draft::typed(&event, "cdc", Location::Event)
                .traceparent(traceparent)
                .system_header(SEQ_HEADER, row.seq.to_string())
                .system_header(SOURCE_HEADER, self.source_id.clone());
            let mut prepared = self
                .pipeline
                .prepare(&TopicSpec::new(topic), draft)
                .map_err(|e| CdcError::BadRow { seq: row.seq, reason: e.to_string() })?;
            // The key is read after the policy ran, so a hashed key column never leaks raw.
            let Some(key) = prepared.record.key.clone() else {
                return Err(CdcError::BadRow {
                    seq: row.seq,
                    reason: format!("no {} in the row", row.table.key_column()),
                });
            };
            let partition = partition_for_key(&key, self.partitions[topic]);
            prepared.record.partition = Some(partition);
            // Alerts are raised again for a row the log already holds (a crash may have come
            // between its append and its alerts'): they carry the same ids, so consumers see them
            // as the same alerts.
            alerts.append(&mut prepared.alerts);
            if row.seq <= self.relayed[&(topic, partition)] {
                continue; // appended before a crash that came before the delete
            }
            by_topic.entry(topic).or_default().push((row.seq, prepared));
        }
        for (topic, items) in by_topic {
            let (seqs, prepared): (Vec<i64>, Vec<Prepared>) = items.into_iter().unzip();
            let appended = self.pipeline.append(topic, prepared, Acks::All).await?;
            for (seq, pos) in seqs.into_iter().zip(appended.positions) {
                self.relayed.insert((topic, pos.partition), seq);
            }
        }
        self.pipeline.append_alerts(&alerts).await?;
        // How far behind the database capture is: the oldest change of this batch, now durable.
        let lag_s = (chrono::Utc::now().timestamp_millis() - oldest_ms).max(0) as f64 / 1000.0;
        metrics::gauge!("eventline_cdc_lag_seconds", "source" => "sqlite").set(lag_s);
        self.lag_us.store((lag_s * 1e6) as u64, std::sync::atomic::Ordering::Relaxed);
        // The captured changes that were waiting when this batch was read.
        metrics::gauge!("eventline_cdc_lag_bytes", "source" => "sqlite").set(batch_bytes as f64);
        // Only now, with every event durable, may the rows go.
        self.relayed_upto = last_seq;
        if self.relayed_upto - self.deleted_upto >= DELETE_EVERY_ROWS || self.last_delete.elapsed() >= DELETE_EVERY {
            self.delete_relayed().await?;
        }
        Ok(count)
    }

    /// Runs `f` with the relay's connection on the blocking pool.
    async fn on_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        eventline_platform::db::on_blocking_pool(&self.conn, f).await
    }

    /// Deletes the outbox rows whose events are durable.
    async fn delete_relayed(&mut self) -> Result<()> {
        if self.relayed_upto > self.deleted_upto {
            let upto = self.relayed_upto;
            self.on_conn(move |c| Ok(c.execute(&format!("DELETE FROM {OUTBOX} WHERE seq <= ?1"), [upto])?)).await?;
            self.deleted_upto = upto;
        }
        self.last_delete = std::time::Instant::now();
        Ok(())
    }

    /// Relays until `stop` turns true: batches back to back while there is a backlog, then waits
    /// for the next commit of any connection (`PRAGMA data_version`, checked every millisecond).
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        loop {
            if *stop.borrow() {
                break;
            }
            // Read the version before looking at the outbox: a commit that lands between the look
            // and the wait then still counts as new.
            let seen = self.data_version().await?;
            if self.relay_once().await? > 0 {
                continue;
            }
            if !self.wait_for_commit(seen, &mut stop).await? {
                break;
            }
        }
        self.delete_relayed().await
    }

    /// The database's commit counter as this connection sees it (other connections' commits).
    pub async fn data_version(&self) -> Result<i64> {
        self.on_conn(|c| Ok(data_version(c)?)).await
    }

    /// Waits until another connection has committed since `seen` was read (true) or `stop` turns
    /// true (false). The wait runs on one blocking thread, checking every millisecond.
    pub async fn wait_for_commit(&self, seen: i64, stop: &mut watch::Receiver<bool>) -> Result<bool> {
        let stop = stop.clone();
        self.on_conn(move |c| {
            loop {
                if data_version(c)? != seen {
                    return Ok(true);
                }
                if *stop.borrow() {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .await
    }

    /// Rows captured but not yet relayed.
    pub fn backlog(&self) -> Result<Backlog> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let (rows, oldest): (i64, Option<String>) = conn.query_row(
            &format!("SELECT count(*), min(changed_at) FROM {OUTBOX} WHERE seq > ?1"),
            [self.relayed_upto],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Backlog { rows: rows as u64, oldest })
    }
}

/// Capture reads the application's tables; it does not create them (that is the application's
/// migrations' job). Each captured table must exist with its key column.
fn check_schema(conn: &Connection, path: &Path) -> Result<()> {
    for table in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{}')", table.sql_name()))?;
        let columns: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        if !columns.iter().any(|c| c == table.key_column()) {
            let what = if columns.is_empty() {
                "does not exist".to_owned()
            } else {
                format!("has no key column `{}`", table.key_column())
            };
            return Err(CdcError::Config(format!(
                "{}: table `{}` {what}; capture reads the application's tables and does not create them. \
                 Run `eventline up` once on this data directory (it creates the platform's schema), or create the table",
                path.display(),
                table.sql_name()
            )));
        }
    }
    Ok(())
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// Up to `batch` outbox rows after `relayed_upto`, in sequence order.
fn read_batch(conn: &Connection, relayed_upto: i64, batch: usize) -> Result<Vec<OutboxRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, tbl, op, before, after, changed_at, traceparent FROM {OUTBOX} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let raw = stmt
        .query_map([relayed_upto, batch as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    raw.into_iter()
        .map(|(seq, tbl, op, before, after, changed_at, traceparent)| {
            let bad = |reason: String| CdcError::BadRow { seq, reason };
            let table =
                TABLES.into_iter().find(|t| t.sql_name() == tbl).ok_or_else(|| bad(format!("unknown table {tbl}")))?;
            let kind = match op.as_str() {
                "INSERT" => ChangeKind::Insert,
                "UPDATE" => ChangeKind::Update,
                "DELETE" => ChangeKind::Delete,
                other => return Err(bad(format!("unknown operation {other}"))),
            };
            let image = |text: Option<String>| -> Result<Option<Row>> {
                text.map(|t| {
                    serde_json::from_str::<Row>(&t).map_err(|e| bad(format!("row image is not a JSON object: {e}")))
                })
                .transpose()
            };
            let changed_at = changed_at.parse::<Timestamp>().map_err(|e| bad(e.to_string()))?;
            let bytes = before.as_ref().map_or(0, String::len) + after.as_ref().map_or(0, String::len);
            // A trace context someone else wrote into the table is not ours to fail on.
            let traceparent = traceparent.filter(|t| eventline_pipeline::check_traceparent(t).is_ok());
            Ok(OutboxRow {
                seq,
                table,
                kind,
                before: image(before)?,
                after: image(after)?,
                changed_at,
                bytes,
                traceparent,
            })
        })
        .collect()
}

/// Backlog of the outbox in the database at `conn`, seen from another process: it also counts rows
/// a running relay has appended but not yet deleted (it deletes them within 200 ms).
pub fn backlog(conn: &Connection) -> Result<Backlog> {
    let (rows, oldest): (i64, Option<String>) =
        conn.query_row(&format!("SELECT count(*), min(changed_at) FROM {OUTBOX}"), [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Backlog { rows: rows as u64, oldest })
}

/// The highest outbox sequence number from `source_id` in the tail of one partition (0 if none).
async fn last_relayed(log: &dyn EventLog, topic: &str, partition: u32, source_id: &str) -> Result<i64> {
    let seq = last_in_partition(log, topic, partition, source_id, |r| header_text(r, SEQ_HEADER)?.parse().ok()).await?;
    Ok(seq.unwrap_or(0))
}
