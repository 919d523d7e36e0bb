//! What both capture sources share: deterministic message ids, record keys, and reading back from
//! the log how far a source already got.

use eventline_log::{EventLog, Record};
use eventline_model::MessageId;
use sha2::{Digest, Sha256};

use crate::error::Result;

/// Header holding the capture source id (one per database) on every captured record.
pub const SOURCE_HEADER: &str = "eventline.cdc.source";

/// A UUID v7 for a captured change: the commit time in its time field, `order` (the change's place
/// in its commit, low 12 bits) in `rand_a` so ids of one millisecond still sort in commit order,
/// and a hash of `identity` (source and position) in the rest — so a change captured twice carries
/// the same id.
pub fn message_id(identity: &[&[u8]], order: u64, unix_ms: i64) -> MessageId {
    let mut hash = Sha256::new();
    for part in identity {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&digest[..10]);
    rand[0] = ((order >> 8) & 0x0f) as u8;
    rand[1] = (order & 0xff) as u8;
    let id = uuid::Builder::from_unix_timestamp_millis(unix_ms.max(0) as u64, &rand).into_uuid();
    MessageId::parse(id.to_string()).expect("a UUID is not empty")
}

/// A key column's value as the record key.
pub fn key_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The newest record of `source_id` in the tail of one partition that `position` can read a
/// position from. Appends of one source are in position order per partition, so this is how far
/// the source got there.
pub async fn last_in_partition<T>(
    log: &dyn EventLog,
    topic: &str,
    partition: u32,
    source_id: &str,
    position: impl Fn(&Record) -> Option<T>,
) -> Result<Option<T>> {
    let found = eventline_pipeline::tail::last_in_partition(log, topic, partition, |r| {
        if r.header(SOURCE_HEADER) == Some(source_id.as_bytes()) { position(r) } else { None }
    })
    .await?;
    Ok(found)
}

pub use eventline_pipeline::tail::header_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_v7_and_ordered_within_a_millisecond() {
        let a = message_id(&[b"src", &1u64.to_be_bytes()], 1, 1_700_000_000_000);
        assert_eq!(a, message_id(&[b"src", &1u64.to_be_bytes()], 1, 1_700_000_000_000));
        let b = message_id(&[b"src", &2u64.to_be_bytes()], 2, 1_700_000_000_000);
        assert_ne!(a, b);
        assert!(a < b, "same millisecond: commit order");
        assert_ne!(a, message_id(&[b"other", &1u64.to_be_bytes()], 1, 1_700_000_000_000));
        assert_eq!(uuid::Uuid::parse_str(a.as_str()).unwrap().get_version_num(), 7);
    }
}
