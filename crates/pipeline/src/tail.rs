//! Reading back from the log how far a producer got: a producer that appends in its own order
//! (capture in commit order, the outbox relay in sequence order) marks each record with headers;
//! after a crash between its append and its bookkeeping, the newest such record in each partition
//! says what the log already holds, so nothing is appended twice.

use eventline_log::{EventLog, LogError, Record};

/// How far back in a partition a producer looks for its own last record.
pub const TAIL_SCAN_LIMIT: u64 = 100_000;

/// The newest record in the tail of one partition that `position` reads a position from (it
/// returns `None` for other producers' records).
pub async fn last_in_partition<T>(
    log: &dyn EventLog,
    topic: &str,
    partition: u32,
    position: impl Fn(&Record) -> Option<T>,
) -> Result<Option<T>, LogError> {
    let (start, end) = log.watermarks(topic, partition).await?;
    let mut hi = end;
    while hi > start && end - hi < TAIL_SCAN_LIMIT {
        let lo = hi.saturating_sub(1000).max(start);
        let records = log.fetch(topic, partition, lo, (hi - lo) as usize).await?;
        for r in records.iter().rev() {
            if let Some(p) = position(r) {
                return Ok(Some(p));
            }
        }
        hi = lo;
    }
    Ok(None)
}

/// A header's value as text.
pub fn header_text<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.header(name).and_then(|b| std::str::from_utf8(b).ok())
}
