//! `audit verify`: reads the trail in chain order and finds the first record that is not intact.
//!
//! - Each record's hash is recomputed from its stored canonical text and the hash before it; a
//!   changed record, a removed one (a gap in `seq`), a swapped or inserted one breaks a link.
//! - The filter columns must agree with the record they repeat (an edit of a column alone).
//! - Every checkpoint (the `audit_checkpoints` table and `<data-dir>/audit-head.json`) must carry
//!   a valid signature of the trail's key and match the record it signed: a trail cut short ends
//!   before its last signed head.
//! - The first retained record links to the last signed `pruned` anchor (retention), or to the
//!   genesis hash.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use rusqlite::Connection;
use serde::Serialize;

use super::chain::{GENESIS, decode_hash, hex, link_hash};
use super::record::Columns;
use super::signing::{Checkpoint, HEAD_FILE};
use super::store::checkpoint_row;

/// The first record that is not intact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FirstBad {
    /// Its place in the chain (for a cut-off tail: the first missing one).
    pub seq: u64,
    /// Where the record came from, when the row is there to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub reason: String,
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Hash of the last record: publish it to anchor the trail elsewhere.
    pub head: Option<String>,
    pub checkpoints: u64,
    pub last_checkpoint: Option<CheckpointSummary>,
    pub public_key: Option<String>,
    pub first_bad: Option<FirstBad>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointSummary {
    pub seq: u64,
    pub signed_at: String,
}

/// Checks the whole trail. `key` is the trusted public key (`None`: no key file yet, so no
/// checkpoint can be trusted — any checkpoint present is reported as unverifiable).
pub fn verify(conn: &Connection, key: Option<&VerifyingKey>, data_dir: &Path) -> rusqlite::Result<Report> {
    let mut report = Report {
        ok: true,
        records: 0,
        first_seq: None,
        last_seq: None,
        head: None,
        checkpoints: 0,
        last_checkpoint: None,
        public_key: key.map(|k| hex(k.as_bytes())),
        first_bad: None,
    };
    // (where it was found, the checkpoint)
    let mut checkpoints: Vec<(&str, Checkpoint)> = {
        let mut stmt = conn
            .prepare("SELECT kind, seq, hash, signed_at, public_key, signature FROM audit_checkpoints ORDER BY id")?;
        let rows: Vec<Checkpoint> = stmt.query_map([], checkpoint_row)?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|c| ("database", c)).collect()
    };
    let head_file = Checkpoint::read_head_file(data_dir);
    let bad = |seq: u64, reason: String| FirstBad { seq, topic: None, partition: None, offset: None, reason };
    let mut problems: Vec<FirstBad> = Vec::new();
    match head_file {
        Ok(Some(cp)) => checkpoints.push((HEAD_FILE, cp)),
        Ok(None) => {}
        Err(e) => problems.push(bad(0, format!("the head file cannot be read: {e}"))),
    }
    // Signatures first: a checkpoint that does not verify cannot vouch for anything.
    let mut trusted: Vec<(Checkpoint, [u8; 32])> = Vec::new();
    let mut in_database = 0;
    for (found_in, cp) in checkpoints {
        let verified = match key {
            Some(k) => cp.verify(k),
            None => Err("there is no audit-signing.key to check it with".into()),
        };
        match verified {
            Ok(hash) => {
                in_database += u64::from(found_in == "database" && cp.kind == "head");
                // The head file's copy is checked like the others; it is named for the messages.
                let kind = if found_in == HEAD_FILE { HEAD_FILE.to_owned() } else { cp.kind.clone() };
                trusted.push((Checkpoint { kind, ..cp }, hash));
            }
            Err(reason) => problems.push(bad(
                cp.seq,
                format!("the {} checkpoint of record {} (in the {found_in}): {reason}", cp.kind, cp.seq),
            )),
        }
    }
    report.checkpoints = in_database;
    report.last_checkpoint = trusted
        .iter()
        .filter(|(c, _)| c.kind != "pruned")
        .max_by_key(|(c, _)| c.seq)
        .map(|(c, _)| CheckpointSummary { seq: c.seq, signed_at: c.signed_at.clone() });
    let anchor =
        trusted.iter().filter(|(c, _)| c.kind == "pruned").max_by_key(|(c, _)| c.seq).map(|(c, h)| (c.seq, *h));
    let (mut want_seq, mut prev) = match anchor {
        Some((seq, hash)) => (seq + 1, hash),
        None => (0, GENESIS),
    };
    // Signed heads by sequence number, to check as the walk passes them.
    let mut heads: Vec<(u64, [u8; 32], String)> =
        trusted.iter().filter(|(c, _)| c.kind != "pruned").map(|(c, h)| (c.seq, *h, c.kind.clone())).collect();
    heads.sort_by_key(|(s, _, _)| *s);
    let first_wanted = want_seq;
    let mut next_head = heads.iter().filter(|(s, _, _)| *s >= first_wanted).peekable();

    let mut stmt = conn.prepare(
        "SELECT seq, topic, partition, \"offset\", event_time, actor, subject, resource, action, outcome,
                record, prev_hash, hash FROM audit_trail ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut chain_bad: Option<FirstBad> = None;
    while let Some(r) = rows.next()? {
        let seq = r.get::<_, i64>(0)? as u64;
        let topic: String = r.get(1)?;
        let partition: u32 = r.get(2)?;
        let offset = r.get::<_, i64>(3)? as u64;
        let at = |reason: String| FirstBad {
            seq,
            topic: Some(topic.clone()),
            partition: Some(partition),
            offset: Some(offset),
            reason,
        };
        report.records += 1;
        report.first_seq.get_or_insert(seq);
        report.last_seq = Some(seq);
        if seq != want_seq {
            let reason = if seq > want_seq {
                if want_seq == 0 || report.records == 1 && anchor.is_none() {
                    format!("the trail starts at record {seq}, not {want_seq}: records before it were removed")
                } else {
                    format!("records {want_seq}..{} are missing: removed", seq - 1)
                }
            } else {
                format!("sequence number {seq} where {want_seq} was expected: records were reordered or inserted")
            };
            chain_bad = Some(at(reason));
            break;
        }
        let record: String = r.get(10)?;
        let prev_text: String = r.get(11)?;
        let hash_text: String = r.get(12)?;
        if decode_hash(&prev_text) != Some(prev) {
            chain_bad = Some(at(
                "prev_hash does not match the record before it: a record was removed, inserted or reordered".into(),
            ));
            break;
        }
        let computed = link_hash(&prev, seq, record.as_bytes());
        if decode_hash(&hash_text) != Some(computed) {
            chain_bad = Some(at("hash does not match the record's content: the record was altered".into()));
            break;
        }
        let columns_agree = match serde_json::from_str::<Columns>(&record) {
            Ok(c) => {
                c.source.topic == topic
                    && c.source.partition == partition
                    && c.source.offset == offset
                    && r.get_ref(4)?.as_str().ok() == Some(&*c.when)
                    && r.get_ref(5)?.as_str_or_null().ok().flatten() == c.actor()
                    && r.get_ref(6)?.as_str_or_null().ok().flatten() == c.subject.as_deref()
                    && r.get_ref(7)?.as_str_or_null().ok().flatten() == c.resource.id.as_deref()
                    && r.get_ref(8)?.as_str().ok() == Some(&*c.what.action)
                    && r.get_ref(9)?.as_str().ok() == Some(&*c.outcome)
            }
            Err(_) => false,
        };
        if !columns_agree {
            chain_bad = Some(at("a column no longer agrees with the hashed record: the row was altered".into()));
            break;
        }
        while let Some((s, h, kind)) = next_head.peek() {
            if *s > seq {
                break;
            }
            if *s == seq && *h != computed {
                chain_bad = Some(at(format!("does not match the signed {kind} checkpoint of this record")));
            }
            next_head.next();
        }
        if chain_bad.is_some() {
            break;
        }
        prev = computed;
        want_seq = seq + 1;
    }
    if chain_bad.is_none() {
        // A signed head beyond the last record: the tail was cut off.
        if let Some((s, _, kind)) = heads.iter().filter(|(s, _, _)| *s >= want_seq).max_by_key(|(s, _, _)| *s) {
            chain_bad = Some(bad(
                want_seq,
                format!(
                    "the trail ends at record {} but the {kind} checkpoint signed record {s}: records {want_seq}..{s} were cut off",
                    want_seq.wrapping_sub(1) as i64
                ),
            ));
        }
    }
    report.head = (report.records > 0).then(|| hex(&prev));
    if let Some(b) = chain_bad {
        problems.push(b);
    }
    problems.sort_by_key(|p| p.seq);
    report.first_bad = problems.into_iter().next();
    report.ok = report.first_bad.is_none();
    Ok(report)
}
