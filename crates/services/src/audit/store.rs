//! The trail at rest in the platform database (`audit_trail`, `audit_checkpoints`; migration
//! 004): appending in chain order, idempotent by (topic, partition, offset); signed checkpoints;
//! retention; and reading back for `audit query` and `GET /v1/audit`.
//!
//! The chain's head is read inside the write transaction, so writers on one database (several
//! audit members, the CLI) serialise on SQLite's write lock and never fork the chain.

use std::path::Path;

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::chain::{Chain, decode_hash, hex};
use super::record::Entry;
use super::signing::{AuditSigner, Checkpoint};

/// What one append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub appended: u64,
    /// Records the trail already held (redelivered after a crash).
    pub duplicates: u64,
    /// Whether a checkpoint was signed.
    pub checkpointed: bool,
}

/// When to sign the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_records: u64,
    pub every: std::time::Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self { every_records: 1000, every: std::time::Duration::from_secs(10) }
    }
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The last record (seq, hash), or the last pruned anchor when retention removed every record.
pub fn head(conn: &Connection) -> rusqlite::Result<Option<(u64, [u8; 32])>> {
    let row: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let row = match row {
        Some(r) => Some(r),
        None => conn
            .query_row(
                "SELECT seq, hash FROM audit_checkpoints WHERE kind = 'pruned' ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
    };
    Ok(row.map(|(seq, hash)| (seq as u64, decode_hash(&hash).unwrap_or([0; 32]))))
}

/// The last checkpoint of kind `head` (its seq and when it was signed).
pub fn last_checkpoint(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    conn.query_row(
        "SELECT kind, seq, hash, signed_at, public_key, signature FROM audit_checkpoints
         WHERE kind = 'head' ORDER BY id DESC LIMIT 1",
        [],
        checkpoint_row,
    )
    .optional()
}

pub(crate) fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        kind: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        hash: r.get(2)?,
        signed_at: r.get(3)?,
        public_key: r.get(4)?,
        signature: r.get(5)?,
    })
}

/// Appends `entries` in one transaction, skipping those the trail already holds, and signs the
/// head when `policy` says it is time. The head file is written after the commit.
pub fn append(
    conn: &mut Connection,
    entries: &[Entry],
    signer: &AuditSigner,
    policy: CheckpointPolicy,
    data_dir: &Path,
) -> rusqlite::Result<Appended> {
    let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
    let mut chain = match head(&tx)? {
        Some((seq, hash)) => Chain::after(seq, hash),
        None => Chain::default(),
    };
    let mut out = Appended::default();
    {
        let mut exists =
            tx.prepare_cached("SELECT 1 FROM audit_trail WHERE topic = ?1 AND partition = ?2 AND \"offset\" = ?3")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_trail (seq, topic, partition, \"offset\", event_time, actor, subject, resource,
                                      action, outcome, record, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for e in entries {
            if exists.exists(params![e.topic, e.partition, e.offset as i64])? {
                out.duplicates += 1;
                continue;
            }
            let link = chain.append(e.canonical.as_bytes());
            insert.execute(params![
                link.seq as i64,
                e.topic,
                e.partition,
                e.offset as i64,
                e.event_time,
                e.actor,
                e.subject,
                e.resource,
                e.action,
                e.outcome,
                e.canonical,
                hex(&link.prev_hash),
                hex(&link.hash),
            ])?;
            out.appended += 1;
        }
    }
    let signed = if out.appended > 0 { checkpoint_if_due(&tx, signer, policy, &chain)? } else { None };
    tx.commit()?;
    if let Some(cp) = signed {
        out.checkpointed = true;
        if let Err(e) = cp.write_head_file(data_dir) {
            tracing::warn!(error = %e, "cannot write the audit head file; the checkpoint is in the database");
        }
    }
    Ok(out)
}

fn checkpoint_if_due(
    conn: &Connection,
    signer: &AuditSigner,
    policy: CheckpointPolicy,
    chain: &Chain,
) -> rusqlite::Result<Option<Checkpoint>> {
    let Some(last_seq) = chain.next_seq().checked_sub(1) else { return Ok(None) };
    let due = match last_checkpoint(conn)? {
        None => true,
        Some(cp) if cp.seq >= last_seq => false,
        Some(cp) => {
            let age = chrono::DateTime::parse_from_rfc3339(&cp.signed_at)
                .map(|t| (Utc::now() - t.with_timezone(&Utc)).to_std().unwrap_or_default())
                .unwrap_or(policy.every);
            last_seq - cp.seq >= policy.every_records || age >= policy.every
        }
    };
    if !due {
        return Ok(None);
    }
    let cp = signer.sign("head", last_seq, &chain.head(), &now_text());
    insert_checkpoint(conn, &cp)?;
    Ok(Some(cp))
}

fn insert_checkpoint(conn: &Connection, cp: &Checkpoint) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_checkpoints (kind, seq, hash, signed_at, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![cp.kind, cp.seq as i64, cp.hash, cp.signed_at, cp.public_key, cp.signature],
    )?;
    Ok(())
}

/// Signs the head now if records came after the last checkpoint (the timer, and a clean stop).
pub fn checkpoint_now(conn: &mut Connection, signer: &AuditSigner, data_dir: &Path) -> rusqlite::Result<bool> {
    let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
    let Some((seq, hash)) = head(&tx)? else { return Ok(false) };
    if last_checkpoint(&tx)?.is_some_and(|cp| cp.seq >= seq) {
        return Ok(false);
    }
    let cp = signer.sign("head", seq, &hash, &now_text());
    insert_checkpoint(&tx, &cp)?;
    tx.commit()?;
    let _ = cp.write_head_file(data_dir);
    Ok(true)
}

/// Removes the records whose event time is before `cutoff` (RFC 3339), in chain order, leaving a
/// signed `pruned` anchor the next record links to. Returns how many went.
pub fn prune_before(conn: &mut Connection, signer: &AuditSigner, cutoff: &str) -> rusqlite::Result<u64> {
    let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
    // The chain is pruned from its start: stop at the first record that is still kept, so a late
    // record with an old time never leaves a hole.
    let first_kept: Option<i64> =
        tx.query_row("SELECT min(seq) FROM audit_trail WHERE event_time >= ?1", [cutoff], |r| r.get(0))?;
    let last: Option<(i64, String)> = match first_kept {
        Some(k) => tx
            .query_row("SELECT seq, hash FROM audit_trail WHERE seq < ?1 ORDER BY seq DESC LIMIT 1", [k], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?,
        // Every record is older than the cutoff; keep the newest so the head stays in the table.
        None => tx
            .query_row("SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1 OFFSET 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?,
    };
    let Some((seq, hash)) = last else { return Ok(0) };
    let removed = tx.execute("DELETE FROM audit_trail WHERE seq <= ?1", [seq])? as u64;
    let cp = signer.sign("pruned", seq as u64, &decode_hash(&hash).unwrap_or([0; 32]), &now_text());
    insert_checkpoint(&tx, &cp)?;
    tx.execute("DELETE FROM audit_checkpoints WHERE kind = 'pruned' AND seq < ?1", [seq])?;
    tx.commit()?;
    Ok(removed)
}

/// Which records `audit query` and `GET /v1/audit` return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Matches the actor (key, user or component), the customer concerned or the resource id.
    pub entity: Option<String>,
    pub topic: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    pub limit: usize,
    pub oldest_first: bool,
    /// Continue after this record (the `next_cursor` of the previous page).
    pub cursor: Option<u64>,
}

/// One record as `audit query` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub seq: u64,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub when: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub action: String,
    pub outcome: String,
    pub hash: String,
    pub record: Value,
}

/// One page of records and where the next one starts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page {
    pub records: Vec<Row>,
    pub next_cursor: Option<String>,
}

/// The records `q` selects.
pub fn query(conn: &Connection, q: &Query) -> rusqlite::Result<Page> {
    let mut sql = String::from(
        "SELECT seq, topic, partition, \"offset\", event_time, actor, subject, resource, action, outcome, hash, record
         FROM audit_trail WHERE 1 = 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        // Every `?` of one clause is the same argument.
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(e) = &q.entity {
        arg(&mut sql, " AND (actor = ? OR subject = ? OR resource = ?)", e.clone().into());
    }
    if let Some(t) = &q.topic {
        arg(&mut sql, " AND topic = ?", t.clone().into());
    }
    if let Some(s) = &q.since {
        arg(&mut sql, " AND event_time >= ?", s.clone().into());
    }
    if let Some(u) = &q.until {
        arg(&mut sql, " AND event_time < ?", u.clone().into());
    }
    if let Some(c) = q.cursor {
        let op = if q.oldest_first { " AND seq > ?" } else { " AND seq < ?" };
        arg(&mut sql, op, (c as i64).into());
    }
    sql.push_str(if q.oldest_first { " ORDER BY seq ASC" } else { " ORDER BY seq DESC" });
    let limit = q.limit.max(1);
    sql.push_str(&format!(" LIMIT {}", limit + 1));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows: Vec<Row> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            let record: String = r.get(11)?;
            Ok(Row {
                seq: r.get::<_, i64>(0)? as u64,
                topic: r.get(1)?,
                partition: r.get(2)?,
                offset: r.get::<_, i64>(3)? as u64,
                when: r.get(4)?,
                actor: r.get(5)?,
                subject: r.get(6)?,
                resource: r.get(7)?,
                action: r.get(8)?,
                outcome: r.get(9)?,
                hash: r.get(10)?,
                record: serde_json::from_str(&record).unwrap_or(Value::String(record)),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more { rows.last().map(|r| r.seq.to_string()) } else { None };
    Ok(Page { records: rows, next_cursor })
}

/// Records in the trail and the head's sequence number, for status displays.
pub fn stats(conn: &Connection) -> rusqlite::Result<(u64, Option<u64>)> {
    conn.query_row("SELECT count(*), max(seq) FROM audit_trail", [], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<i64>>(1)?.map(|s| s as u64)))
    })
}
