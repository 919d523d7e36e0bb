//! `audit verify --against-log`: every record the log still holds on the audited topics, up to
//! the audit group's committed offset, must be in the trail. Records after the committed offset
//! are not audited yet and are counted as pending, not missing. When the group's offsets cannot
//! be read (the CLI talking to a running `up`), every record is checked and one younger than
//! [`GRACE_MS`] that the trail does not hold yet counts as pending.

use std::collections::BTreeSet;

use eventline_log::{EventLog, LogError};
use eventline_platform::db::Database;
use serde::Serialize;

use super::AUDITED_TOPICS;

/// How young a record may be and still be on its way to the trail, when offsets are unknown.
pub const GRACE_MS: i64 = 30_000;

/// The first log record the trail does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// What the comparison found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Log records checked (within retention, up to the committed offset).
    pub checked: u64,
    pub missing: u64,
    pub first_missing: Option<Missing>,
    /// Records after the audit group's committed offset (not audited yet).
    pub pending: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the audit trail: {0}")]
    Store(String),
}

/// Compares the log with the trail for `group`'s committed offsets.
pub async fn check(log: &dyn EventLog, db: &Database, group: &str) -> Result<Coverage, CoverageError> {
    let mut out = Coverage::default();
    for topic in AUDITED_TOPICS {
        let description = match log.describe_topic(topic).await {
            Ok(d) => d,
            Err(LogError::UnknownTopic(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for partition in 0..description.spec.partitions {
            let (start, end) = log.watermarks(topic, partition).await?;
            let (upto, known) = match log.committed(group, topic, partition).await {
                Ok(c) => (c.unwrap_or(start).clamp(start, end), true),
                Err(LogError::Unsupported(_)) => (end, false),
                Err(e) => return Err(e.into()),
            };
            let young = chrono::Utc::now().timestamp_millis() - GRACE_MS;
            out.pending += end - upto;
            if upto <= start {
                continue;
            }
            let (t, lo, hi) = (topic.to_owned(), start as i64, upto as i64);
            let held: BTreeSet<u64> = db
                .read(move |c| -> rusqlite::Result<BTreeSet<u64>> {
                    let mut stmt = c.prepare(
                        "SELECT \"offset\" FROM audit_trail WHERE topic = ?1 AND partition = ?2
                         AND \"offset\" >= ?3 AND \"offset\" < ?4",
                    )?;
                    stmt.query_map(rusqlite::params![t, partition, lo, hi], |r| r.get::<_, i64>(0).map(|o| o as u64))?
                        .collect()
                })
                .await
                .map_err(|e| CoverageError::Store(e.to_string()))?
                .map_err(|e| CoverageError::Store(e.to_string()))?;
            let mut at = start;
            while at < upto {
                let batch = log.fetch(topic, partition, at, 1000).await?;
                let Some(last) = batch.last() else { break };
                at = last.offset + 1;
                for r in batch.iter().filter(|r| r.offset < upto) {
                    out.checked += 1;
                    if !held.contains(&r.offset) && !known && r.timestamp > young {
                        out.pending += 1;
                    } else if !held.contains(&r.offset) {
                        out.missing += 1;
                        out.first_missing.get_or_insert(Missing {
                            topic: topic.to_owned(),
                            partition,
                            offset: r.offset,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}
