//! [`Outbox`]: the transactional outbox of the platform's own events.
//!
//! The agent executor writes its database change, the `agent.executions` record and the
//! `compliance.alerts` records in **one** SQLite transaction ([`Outbox::enqueue`] inserts the
//! records as rows of `_eventline_event_outbox`). The relay ([`Outbox::run`]) appends the rows in
//! `seq` order with acks=all and only then deletes them; [`Outbox::wait_relayed`] lets the
//! executor answer once its events are durable. So a crash anywhere loses nothing (the rows are
//! still there and are relayed on restart) and duplicates nothing:
//!
//! - every record carries its row's `seq` and this database's outbox source id in headers, and its
//!   partition is fixed when the row is written;
//! - rows are appended in `seq` order, so on start the relay reads the newest record of this
//!   source in each partition's tail and skips the rows at or below its `seq` (appended before a
//!   crash that came before the delete).
//!
//! Message ids are part of the stored value, fixed at write time: a relayed record is byte for byte
//! what was written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventline_log::partitioner::partition_for_key;
use eventline_log::{EventLog, Header, LogError, ProduceRecord};
use eventline_model::topics::Acks;
use eventline_pipeline::tail::{header_text, last_in_partition};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, watch};

use crate::db::Database;

/// Header with the outbox row's sequence number.
pub const SEQ_HEADER: &str = "eventline.outbox.seq";
/// Header with the outbox's source id (one per database).
pub const SOURCE_HEADER: &str = "eventline.outbox.source";

const TABLE: &str = "_eventline_event_outbox";
/// Rows relayed per round.
const BATCH: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox: the log: {0}")]
    Log(#[from] LogError),
    #[error("outbox: the database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("outbox: topic `{0}` is not known to the outbox")]
    UnknownTopic(String),
    #[error("outbox: the relay stopped before the events were appended")]
    Stopped,
}

/// The outbox of one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// The relay's own connection (reads and deletes of relayed rows), so it never waits behind
    /// the executions on the shared one. Deletes need no fsync: a delete lost to a power cut only
    /// means the row is read again and skipped (its record is in the log).
    relay_conn: Arc<std::sync::Mutex<Connection>>,
    log: Arc<dyn EventLog>,
    source: String,
    partitions: HashMap<String, u32>,
    /// Highest `seq` durable in the log.
    relayed: watch::Sender<i64>,
    wake: Notify,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("db", &self.db.path()).field("source", &self.source).finish()
    }
}

struct Row {
    seq: i64,
    topic: String,
    partition: u32,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: String,
}

impl Outbox {
    /// An outbox for `topics` (their partition counts are read from the log now).
    pub async fn open(db: Database, log: Arc<dyn EventLog>, topics: &[&str]) -> Result<Self, OutboxError> {
        let source = db.call(source_id).await?;
        let conn = crate::store::sqlite::open(db.path()).map_err(|e| match e {
            crate::store::sqlite::StoreError::Open { source, .. } | crate::store::sqlite::StoreError::Sql(source) => {
                OutboxError::Database(source)
            }
            crate::store::sqlite::StoreError::Migration { source, .. } => OutboxError::Database(source),
            crate::store::sqlite::StoreError::Pool(reason) => {
                OutboxError::Database(rusqlite::Error::InvalidPath(reason.into()))
            }
        })?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let relay_conn = Arc::new(std::sync::Mutex::new(conn));
        let mut partitions = HashMap::new();
        for topic in topics {
            partitions.insert((*topic).to_owned(), log.describe_topic(topic).await?.spec.partitions);
        }
        let (relayed, _) = watch::channel(0);
        Ok(Self { inner: Arc::new(Inner { db, relay_conn, log, source, partitions, relayed, wake: Notify::new() }) })
    }

    /// Writes `record` for `topic` as an outbox row, inside the caller's transaction; returns its
    /// `seq`. The record is appended once the transaction commits and the relay gets to it.
    pub fn enqueue(&self, conn: &Connection, topic: &str, record: &ProduceRecord) -> Result<i64, OutboxError> {
        let n = *self.inner.partitions.get(topic).ok_or_else(|| OutboxError::UnknownTopic(topic.to_owned()))?;
        let partition = match (record.partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, n),
            (None, None) => 0,
        };
        let headers: Vec<(String, String)> = record
            .headers
            .iter()
            .map(|h| (h.key.clone(), String::from_utf8_lossy(h.value.as_deref().unwrap_or_default()).into_owned()))
            .collect();
        conn.prepare_cached(&format!(
            "INSERT INTO {TABLE} (topic, partition, key, value, headers, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?
        .execute(params![
            topic,
            partition,
            record.key.as_deref(),
            record.value.as_deref().unwrap_or_default(),
            serde_json::to_string(&headers).expect("headers serialise"),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        ])?;
        Ok(conn.last_insert_rowid())
    }

    /// Wakes the relay and waits until every row up to `seq` is durable in the log.
    pub async fn wait_relayed(&self, seq: i64) -> Result<(), OutboxError> {
        let mut rx = self.inner.relayed.subscribe();
        self.inner.wake.notify_one();
        rx.wait_for(|r| *r >= seq).await.map_err(|_| OutboxError::Stopped)?;
        Ok(())
    }

    /// Rows written and not yet relayed (or relayed and not yet deleted).
    pub async fn backlog(&self) -> Result<u64, OutboxError> {
        let n: i64 =
            self.inner.db.call(|c| c.query_row(&format!("SELECT count(*) FROM {TABLE}"), [], |r| r.get(0))).await?;
        Ok(n as u64)
    }

    /// Relays until `stop` turns true, then relays what is left and returns.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), OutboxError> {
        let me = &*self.inner;
        let mut skip = HashMap::new();
        for (topic, n) in &me.partitions {
            for p in 0..*n {
                let seq = last_in_partition(&*me.log, topic, p, |r| {
                    (header_text(r, SOURCE_HEADER)? == me.source)
                        .then(|| header_text(r, SEQ_HEADER)?.parse::<i64>().ok())?
                })
                .await?;
                skip.insert((topic.clone(), p), seq.unwrap_or(0));
            }
        }
        let mut failures = 0u32;
        loop {
            match self.relay_once(&mut skip).await {
                Ok(0) => {
                    failures = 0;
                    if *stop.borrow() {
                        return Ok(());
                    }
                    tokio::select! {
                        _ = me.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = stop.changed() => {}
                    }
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if *stop.borrow() && failures > 3 {
                        return Err(e);
                    }
                    let wait = Duration::from_millis(50 << failures.min(6));
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "outbox relay failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn on_relay_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> rusqlite::Result<T> {
        crate::db::on_blocking_pool(&self.inner.relay_conn, f).await
    }

    /// Appends one batch of rows and deletes them; returns how many rows it took.
    async fn relay_once(&self, skip: &mut HashMap<(String, u32), i64>) -> Result<usize, OutboxError> {
        let me = &*self.inner;
        let rows = self.on_relay_conn(read_batch).await?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        let count = rows.len();
        let mut by_topic: Vec<(String, Vec<(i64, ProduceRecord)>)> = Vec::new();
        for row in rows {
            if row.seq <= skip.get(&(row.topic.clone(), row.partition)).copied().unwrap_or(0) {
                continue; // appended before a crash that came before the delete
            }
            let headers: Vec<(String, String)> = serde_json::from_str(&row.headers).unwrap_or_default();
            let mut record = ProduceRecord {
                key: row.key.map(Bytes::from),
                value: Some(Bytes::from(row.value)),
                headers: headers.into_iter().map(|(k, v)| Header::new(k, v)).collect(),
                timestamp: None,
                partition: Some(row.partition),
            };
            record.headers.push(Header::new(SEQ_HEADER, row.seq.to_string()));
            record.headers.push(Header::new(SOURCE_HEADER, me.source.clone()));
            match by_topic.iter_mut().find(|(t, _)| *t == row.topic) {
                Some((_, v)) => v.push((row.seq, record)),
                None => by_topic.push((row.topic, vec![(row.seq, record)])),
            }
        }
        let appends = by_topic.into_iter().map(|(topic, items)| async move {
            let (seqs, records): (Vec<i64>, Vec<ProduceRecord>) = items.into_iter().unzip();
            let positions = me.log.produce(&topic, records, Acks::All).await?;
            Ok::<_, LogError>((topic, seqs, positions))
        });
        for (topic, seqs, positions) in futures_util::future::try_join_all(appends).await? {
            for (seq, pos) in seqs.into_iter().zip(positions) {
                skip.insert((topic.clone(), pos.partition), seq);
            }
        }
        self.on_relay_conn(move |c| c.execute(&format!("DELETE FROM {TABLE} WHERE seq <= ?1"), [last])).await?;
        me.relayed.send_if_modified(|r| {
            let raise = last > *r;
            if raise {
                *r = last;
            }
            raise
        });
        Ok(count)
    }
}

fn read_batch(conn: &mut Connection) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, topic, partition, key, value, headers FROM {TABLE} ORDER BY seq LIMIT {BATCH}"
    ))?;
    stmt.query_map([], |r| {
        Ok(Row {
            seq: r.get(0)?,
            topic: r.get(1)?,
            partition: r.get(2)?,
            key: r.get(3)?,
            value: r.get(4)?,
            headers: r.get(5)?,
        })
    })?
    .collect()
}

/// This database's outbox source id, made at first use.
fn source_id(conn: &mut Connection) -> rusqlite::Result<String> {
    let found: Option<String> =
        conn.query_row("SELECT value FROM _eventline_meta WHERE key = 'outbox_source'", [], |r| r.get(0)).optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    let id = uuid::Uuid::now_v7().to_string();
    conn.execute("INSERT OR IGNORE INTO _eventline_meta (key, value) VALUES ('outbox_source', ?1)", [&id])?;
    conn.query_row("SELECT value FROM _eventline_meta WHERE key = 'outbox_source'", [], |r| r.get(0))
}
