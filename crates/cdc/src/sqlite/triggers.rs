//! The SQLite side of capture: an outbox table and, per captured table, AFTER INSERT / UPDATE /
//! DELETE triggers that write the row images (`json_object` of every column) into the outbox in
//! the writer's own transaction. A rolled-back transaction therefore leaves no change behind, and
//! the outbox's AUTOINCREMENT sequence is the commit order (SQLite has one writer at a time).
//!
//! Each outbox row also takes the writer's trace context (`_eventline_trace_context`, see
//! `eventline_platform::trace_context`), which the relay moves into the event's `traceparent`.
//!
//! Triggers are regenerated from the table's current columns every time capture starts, so a
//! migration that adds a column is captured from then on.

use eventline_model::events::SourceTable;
use eventline_platform::store::JSON_COLUMNS;
use rusqlite::Connection;

use crate::error::Result;

pub const OUTBOX: &str = "_eventline_cdc_outbox";
pub const META: &str = "_eventline_cdc_meta";

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `json_object('col', <value>, ...)` over the row `alias` (NEW or OLD). JSON documents are
/// embedded as JSON when valid; BLOBs, which JSON cannot hold, as hex text.
fn row_image(table: &str, columns: &[String], alias: &str) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let v = format!("{alias}.{}", quote(c));
            let is_json = JSON_COLUMNS.iter().any(|(t, col)| *t == table && col == c);
            let expr = if is_json {
                format!("CASE WHEN json_valid({v}) THEN json({v}) ELSE {v} END")
            } else {
                format!("CASE typeof({v}) WHEN 'blob' THEN hex({v}) ELSE {v} END")
            };
            format!("{}, {expr}", literal(c))
        })
        .collect();
    format!("json_object({})", parts.join(", "))
}

/// Creates the outbox and (re)creates the triggers of `tables`; returns this database's capture
/// source id (a UUID made once and kept in the database).
pub fn install(conn: &mut Connection, tables: &[SourceTable]) -> Result<String> {
    let tx = conn.transaction()?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {OUTBOX} (
             seq        INTEGER PRIMARY KEY AUTOINCREMENT,
             tbl        TEXT NOT NULL,
             op         TEXT NOT NULL,
             before     TEXT,
             after      TEXT,
             changed_at TEXT NOT NULL,
             traceparent TEXT
         );
         CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         {};",
        eventline_platform::trace_context::DDL
    ))?;
    // Outboxes made before changes carried their writer's trace.
    let has_trace: bool = tx.query_row(
        &format!("SELECT count(*) FROM pragma_table_info('{OUTBOX}') WHERE name = 'traceparent'"),
        [],
        |r| r.get(0),
    )?;
    if !has_trace {
        tx.execute_batch(&format!("ALTER TABLE {OUTBOX} ADD COLUMN traceparent TEXT"))?;
    }
    tx.execute(
        &format!("INSERT OR IGNORE INTO {META} (key, value) VALUES ('source_id', ?1)"),
        [uuid::Uuid::now_v7().to_string()],
    )?;
    for table in tables {
        let name = table.sql_name();
        let columns: Vec<String> = tx
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
        let trace = format!("(SELECT traceparent FROM {} WHERE id = 1)", eventline_platform::trace_context::TABLE);
        let new = row_image(name, &columns, "NEW");
        let old = row_image(name, &columns, "OLD");
        let t = quote(name);
        let lit = literal(name);
        for (op, body) in [
            ("insert", format!("VALUES ({lit}, 'INSERT', NULL, {new}, {now}, {trace})")),
            ("update", format!("VALUES ({lit}, 'UPDATE', {old}, {new}, {now}, {trace})")),
            ("delete", format!("VALUES ({lit}, 'DELETE', {old}, NULL, {now}, {trace})")),
        ] {
            let trigger = quote(&format!("_eventline_cdc_{name}_{op}"));
            tx.execute_batch(&format!(
                "DROP TRIGGER IF EXISTS {trigger};
                 CREATE TRIGGER {trigger} AFTER {} ON {t} BEGIN
                     INSERT INTO {OUTBOX} (tbl, op, before, after, changed_at, traceparent) {body};
                 END;",
                op.to_uppercase()
            ))?;
        }
    }
    let id: String = tx.query_row(&format!("SELECT value FROM {META} WHERE key = 'source_id'"), [], |r| r.get(0))?;
    tx.commit()?;
    Ok(id)
}
