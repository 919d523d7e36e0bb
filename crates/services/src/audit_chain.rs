//! The audit trail's hash chain.
//!
//! `hash(n) = SHA-256(hash(n-1) || seq(n) as 8 big-endian bytes || canonical_json(record(n)))`
//! with `hash(-1)` = 32 zero bytes. Canonical JSON sorts object keys and has no whitespace, so the
//! hash does not depend on how a record was serialised or stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One record of the trail with its place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub seq: u64,
    /// Hex SHA-256 of the previous link (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this link.
    pub hash: String,
    pub record: Value,
}

/// Appends records, remembering the head.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    next_seq: u64,
    head: [u8; 32],
}

impl Chain {
    /// Continues a chain whose last link is `last`.
    pub fn resume(last: &Link) -> Result<Self, ChainBreak> {
        Ok(Self {
            next_seq: last.seq + 1,
            head: decode_hex(&last.hash)
                .ok_or(ChainBreak { seq: last.seq, reason: "hash is not 64 hex digits".into() })?,
        })
    }

    pub fn append(&mut self, record: Value) -> Link {
        let prev = self.head;
        let hash = link_hash(&prev, self.next_seq, &record);
        let link = Link { seq: self.next_seq, prev_hash: hex(&prev), hash: hex(&hash), record };
        self.head = hash;
        self.next_seq += 1;
        link
    }
}

/// The first link that does not verify, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("audit record {seq} is not intact: {reason}")]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// What an intact chain holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// Hash of the last link: publish it to anchor the trail elsewhere.
    pub head: String,
}

/// Checks every link in order: sequence numbers without gaps, each `prev_hash` equal to the hash
/// before it, each hash recomputed from the record.
pub fn verify(links: &[Link]) -> Result<Verified, ChainBreak> {
    let mut prev = [0u8; 32];
    for (i, link) in links.iter().enumerate() {
        let want_seq = i as u64;
        let brk = |reason: String| ChainBreak { seq: link.seq, reason };
        if link.seq != want_seq {
            return Err(brk(format!("expected sequence number {want_seq}: a record was removed or reordered")));
        }
        if link.prev_hash != hex(&prev) {
            return Err(brk("prev_hash does not match the record before it: a record was removed or reordered".into()));
        }
        let computed = link_hash(&prev, link.seq, &link.record);
        if link.hash != hex(&computed) {
            return Err(brk("hash does not match the record's content: the record was altered".into()));
        }
        prev = computed;
    }
    Ok(Verified { records: links.len() as u64, head: hex(&prev) })
}

fn link_hash(prev: &[u8; 32], seq: u64, record: &Value) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(canonical_json(record).as_bytes());
    h.finalize().into()
}

/// JSON with object keys sorted and no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trail(n: u64) -> Vec<Link> {
        let mut c = Chain::default();
        (0..n)
            .map(|i| c.append(json!({"topic": "compliance.alerts", "offset": i, "alert": {"severity": "HIGH"}})))
            .collect()
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let t = trail(10);
        let v = verify(&t).unwrap();
        assert_eq!(v.records, 10);
        assert_eq!(v.head, t[9].hash);
    }

    #[test]
    fn altering_a_record_is_found_at_that_record() {
        let mut t = trail(10);
        t[4].record["alert"]["severity"] = json!("LOW");
        let e = verify(&t).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(e.reason.contains("altered"));
    }

    #[test]
    fn removing_or_reordering_is_found() {
        let mut t = trail(10);
        t.remove(3);
        assert_eq!(verify(&t).unwrap_err().seq, 4);
        let mut t = trail(10);
        t.swap(2, 3);
        assert_eq!(verify(&t).unwrap_err().seq, 3);
        // Renumbering after a removal does not help: the hashes no longer link.
        let mut t = trail(10);
        t.remove(3);
        for (i, l) in t.iter_mut().enumerate() {
            l.seq = i as u64;
        }
        assert_eq!(verify(&t).unwrap_err().seq, 3);
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,{"k":"v","j":null}]}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":[1,{"j":null,"k":"v"}],"y":2},"b":1}"#);
    }

    #[test]
    fn a_resumed_chain_continues_the_links() {
        let t = trail(3);
        let mut c = Chain::resume(&t[2]).unwrap();
        let mut all = t.clone();
        all.push(c.append(json!({"n": 3})));
        assert_eq!(verify(&all).unwrap().records, 4);
    }
}
