//! The audit trail's hash chain.
//!
//! `hash(n) = SHA-256(hash(n-1) || seq(n) as 8 big-endian bytes || canonical(record(n)))` with
//! `hash(-1)` = 32 zero bytes (or, after retention removed the oldest records, the hash of the
//! last removed one, kept in a signed `pruned` checkpoint). `canonical` is RFC 8785 (JSON
//! Canonicalization Scheme): the hash does not depend on how a record was serialised, and the
//! stored text is exactly the hashed bytes, so verification hashes what it reads.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The RFC 8785 canonical form of `record`.
pub fn canonical(record: &Value) -> String {
    // A `Value` always serialises: its keys are strings and its numbers finite.
    serde_jcs::to_string(record).expect("a JSON value has a canonical form")
}

/// The hash of the record at `seq` whose canonical text is `canonical`, after `prev`.
pub fn link_hash(prev: &[u8; 32], seq: u64, canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(canonical);
    h.finalize().into()
}

/// Appends records, remembering the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    head: [u8; 32],
}

impl Default for Chain {
    fn default() -> Self {
        Self { next_seq: 0, head: GENESIS }
    }
}

/// One appended record's place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl Chain {
    /// Continues after the record `seq` whose hash is `hash`.
    pub fn after(seq: u64, hash: [u8; 32]) -> Self {
        Self { next_seq: seq + 1, head: hash }
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    pub fn append(&mut self, canonical: &[u8]) -> Link {
        let prev = self.head;
        let hash = link_hash(&prev, self.next_seq, canonical);
        let link = Link { seq: self.next_seq, prev_hash: prev, hash };
        self.head = hash;
        self.next_seq += 1;
        link
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// 64 hex digits as 32 bytes.
pub fn decode_hash(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_is_rfc_8785() {
        // Keys sorted by UTF-16 code units, no whitespace, numbers in their shortest form.
        let v: Value =
            serde_json::from_str(r#"{"b": 1.0e2, "a": {"y": 2, "x": [1, {"k": "v", "j": null}]}, "é": 1, "z": 1}"#)
                .unwrap();
        assert_eq!(canonical(&v), r#"{"a":{"x":[1,{"j":null,"k":"v"}],"y":2},"b":100,"z":1,"é":1}"#);
    }

    #[test]
    fn each_link_depends_on_everything_before_it() {
        let mut c = Chain::default();
        let a = c.append(canonical(&json!({"n": 0})).as_bytes());
        let b = c.append(canonical(&json!({"n": 1})).as_bytes());
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.hash, link_hash(&a.hash, 1, br#"{"n":1}"#));
        assert_ne!(link_hash(&a.hash, 2, br#"{"n":1}"#), b.hash, "the sequence number is hashed");
        let resumed = Chain::after(1, b.hash);
        assert_eq!(resumed.next_seq(), 2);
        assert_eq!(decode_hash(&hex(&b.hash)), Some(b.hash));
        assert_eq!(decode_hash("zz"), None);
    }
}
