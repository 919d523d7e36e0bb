//! Decoder for the row messages of PostgreSQL's `pgoutput` logical decoding plugin (protocol
//! version 1, text format): Relation, Insert, Update, Delete, Truncate, Type and Origin. Begin,
//! Commit and logical Message are split off by the replication client before they get here.
//!
//! Rows come out as JSON objects, column name → value converted by type OID
//! ([`super::values`]). An unchanged TOAST value (`'u'`) in a new tuple is filled from the old
//! tuple, which `REPLICA IDENTITY FULL` makes the server send in full; it is never written as null.

use std::collections::HashMap;

use eventline_model::events::Row;
use serde_json::Value;

use super::values::text_to_json;

/// A table as announced by a Relation message.
#[derive(Clone, Debug)]
pub struct Relation {
    pub id: u32,
    pub namespace: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<Column>,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
}

/// What one pgoutput row message means.
#[derive(Debug, PartialEq)]
pub enum Change {
    Insert {
        relation: u32,
        new: Row,
    },
    Update {
        relation: u32,
        old: Option<Row>,
        new: Row,
    },
    Delete {
        relation: u32,
        old: Row,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Relation, Type, Origin: bookkeeping, no row change.
    None,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("pgoutput message is truncated ({0})")]
    Truncated(&'static str),
    #[error("pgoutput message type {0:?} is not known")]
    UnknownMessage(char),
    #[error("tuple column kind {0:?} is not known")]
    UnknownColumnKind(char),
    #[error("row change for relation {0} before its Relation message")]
    UnknownRelation(u32),
    #[error("tuple has {got} columns, relation {relation} has {want}")]
    ColumnCount { relation: String, got: usize, want: usize },
    #[error(
        "column {column} of {relation} is an unchanged TOAST value and the server sent no old row: set REPLICA IDENTITY FULL on {relation}"
    )]
    ToastWithoutOldRow { relation: String, column: String },
    #[error("binary column values are not requested by eventline; the stream was started with binary mode")]
    Binary,
    #[error("column value is not UTF-8")]
    NotUtf8,
}

/// Relation cache plus the decoding of row messages.
#[derive(Debug, Default)]
pub struct Decoder {
    relations: HashMap<u32, Relation>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn cstr(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let end = self.0.iter().position(|&b| b == 0).ok_or(DecodeError::Truncated(what))?;
        let s = std::str::from_utf8(&self.0[..end]).map_err(|_| DecodeError::NotUtf8)?.to_owned();
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

/// One column of a TupleData.
enum Cell<'a> {
    Null,
    UnchangedToast,
    Text(&'a str),
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The table a row change belongs to.
    pub fn relation(&self, id: u32) -> Option<&Relation> {
        self.relations.get(&id)
    }

    /// Decodes one pgoutput message (the payload of an XLogData).
    pub fn decode(&mut self, data: &[u8]) -> Result<Change, DecodeError> {
        let mut r = Reader(data);
        let tag = r.u8("message type")?;
        match tag {
            b'R' => {
                let id = r.u32("relation id")?;
                let namespace = r.cstr("namespace")?;
                let name = r.cstr("relation name")?;
                let replica_identity = r.u8("replica identity")?;
                let n = r.i16("column count")?.max(0) as usize;
                let mut columns = Vec::with_capacity(n);
                for _ in 0..n {
                    let _flags = r.u8("column flags")?;
                    let name = r.cstr("column name")?;
                    let type_oid = r.u32("column type")?;
                    let _typmod = r.i32("column type modifier")?;
                    columns.push(Column { name, type_oid });
                }
                self.relations.insert(id, Relation { id, namespace, name, replica_identity, columns });
                Ok(Change::None)
            }
            b'Y' | b'O' => Ok(Change::None),
            b'I' => {
                let relation = r.u32("relation id")?;
                let rel = self.relations.get(&relation).ok_or(DecodeError::UnknownRelation(relation))?;
                expect_tag(&mut r, b'N')?;
                let cells = tuple(&mut r, rel)?;
                Ok(Change::Insert { relation, new: row(rel, &cells, None)? })
            }
            b'U' => {
                let relation = r.u32("relation id")?;
                let rel = self.relations.get(&relation).ok_or(DecodeError::UnknownRelation(relation))?;
                let mut kind = r.u8("update tuple kind")?;
                let mut old = None;
                if kind == b'K' || kind == b'O' {
                    let cells = tuple(&mut r, rel)?;
                    old = Some(row(rel, &cells, None)?);
                    kind = r.u8("update new tuple")?;
                }
                if kind != b'N' {
                    return Err(DecodeError::UnknownColumnKind(kind as char));
                }
                let cells = tuple(&mut r, rel)?;
                let new = row(rel, &cells, old.as_ref())?;
                Ok(Change::Update { relation, old, new })
            }
            b'D' => {
                let relation = r.u32("relation id")?;
                let rel = self.relations.get(&relation).ok_or(DecodeError::UnknownRelation(relation))?;
                let kind = r.u8("delete tuple kind")?;
                if kind != b'K' && kind != b'O' {
                    return Err(DecodeError::UnknownColumnKind(kind as char));
                }
                let cells = tuple(&mut r, rel)?;
                // With REPLICA IDENTITY FULL every column is present; with a key identity only
                // the key columns are, and the others come back null: drop those.
                let mut old = row(rel, &cells, None)?;
                if kind == b'K' {
                    old.retain(|_, v| !v.is_null());
                }
                Ok(Change::Delete { relation, old })
            }
            b'T' => {
                let n = r.i32("relation count")?.max(0) as usize;
                let _options = r.u8("truncate options")?;
                let relations = (0..n).map(|_| r.u32("relation id")).collect::<Result<_, _>>()?;
                Ok(Change::Truncate { relations })
            }
            other => Err(DecodeError::UnknownMessage(other as char)),
        }
    }
}

fn expect_tag(r: &mut Reader<'_>, want: u8) -> Result<(), DecodeError> {
    let got = r.u8("tuple kind")?;
    if got == want { Ok(()) } else { Err(DecodeError::UnknownColumnKind(got as char)) }
}

fn tuple<'a>(r: &mut Reader<'a>, rel: &Relation) -> Result<Vec<Cell<'a>>, DecodeError> {
    let n = r.i16("tuple column count")?.max(0) as usize;
    if n != rel.columns.len() {
        return Err(DecodeError::ColumnCount { relation: rel.name.clone(), got: n, want: rel.columns.len() });
    }
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.u8("column kind")?;
        cells.push(match kind {
            b'n' => Cell::Null,
            b'u' => Cell::UnchangedToast,
            b't' => {
                let len = r.i32("value length")?.max(0) as usize;
                let bytes = r.take(len, "value")?;
                Cell::Text(std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?)
            }
            b'b' => return Err(DecodeError::Binary),
            other => return Err(DecodeError::UnknownColumnKind(other as char)),
        });
    }
    Ok(cells)
}

fn row(rel: &Relation, cells: &[Cell<'_>], old: Option<&Row>) -> Result<Row, DecodeError> {
    let mut out = Row::new();
    for (col, cell) in rel.columns.iter().zip(cells) {
        let value = match cell {
            Cell::Null => Value::Null,
            Cell::Text(t) => text_to_json(col.type_oid, t),
            Cell::UnchangedToast => match old.and_then(|o| o.get(&col.name)) {
                Some(v) => v.clone(),
                None => {
                    return Err(DecodeError::ToastWithoutOldRow {
                        relation: rel.name.clone(),
                        column: col.name.clone(),
                    });
                }
            },
        };
        out.insert(col.name.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn relation_msg() -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(16384u32.to_be_bytes());
        m.extend(b"public\0conversations\0");
        m.push(b'f');
        m.extend(2i16.to_be_bytes());
        for (name, oid) in [("conversation_id", 25u32), ("doc", 3802)] {
            m.push(1);
            m.extend(name.as_bytes());
            m.push(0);
            m.extend(oid.to_be_bytes());
            m.extend((-1i32).to_be_bytes());
        }
        m
    }

    fn text(m: &mut Vec<u8>, v: &str) {
        m.push(b't');
        m.extend((v.len() as i32).to_be_bytes());
        m.extend(v.as_bytes());
    }

    #[test]
    fn unchanged_toast_comes_from_the_old_row() {
        let mut d = Decoder::new();
        assert_eq!(d.decode(&relation_msg()).unwrap(), Change::None);
        let mut m = vec![b'U'];
        m.extend(16384u32.to_be_bytes());
        m.push(b'O');
        m.extend(2i16.to_be_bytes());
        text(&mut m, "c1");
        text(&mut m, r#"{"turns": ["big"]}"#);
        m.push(b'N');
        m.extend(2i16.to_be_bytes());
        text(&mut m, "c1");
        m.push(b'u');
        let Change::Update { new, old, .. } = d.decode(&m).unwrap() else { panic!() };
        assert_eq!(new.get("doc"), Some(&json!({"turns": ["big"]})));
        assert_eq!(old.unwrap().get("conversation_id"), Some(&json!("c1")));
    }

    #[test]
    fn toast_without_old_row_is_an_error_not_a_null() {
        let mut d = Decoder::new();
        d.decode(&relation_msg()).unwrap();
        let mut m = vec![b'U'];
        m.extend(16384u32.to_be_bytes());
        m.push(b'N');
        m.extend(2i16.to_be_bytes());
        text(&mut m, "c1");
        m.push(b'u');
        assert!(matches!(d.decode(&m), Err(DecodeError::ToastWithoutOldRow { .. })));
    }

    #[test]
    fn truncated_messages_are_errors() {
        let mut d = Decoder::new();
        let full = relation_msg();
        for cut in 0..full.len() {
            assert!(d.decode(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(d.decode(&[b'I', 0, 0, 0, 9]), Err(DecodeError::UnknownRelation(9)));
    }
}
