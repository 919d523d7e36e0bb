//! The seed's "warehouse": with `[lake] warehouse_url = "postgres://…"`, the rows the lake writes
//! also go to one PostgreSQL table per topic — `lake_<topic>` with `.` and `-` as `_` (e.g.
//! `lake_agent_executions`) — with the lake's typed columns, the whole event as `jsonb`, and
//! primary key (`_partition`, `_offset`), so a retried write inserts nothing twice. BI tools query
//! it with SQL. Rows are written before the files, so a crash in between writes them again
//! (ignored as duplicates) rather than losing them.

use std::collections::BTreeSet;

use tokio::sync::Mutex;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::layout::{Kind, Row, columns};

/// Rows per INSERT statement.
const CHUNK: usize = 500;

pub struct Warehouse {
    url: String,
    client: Mutex<Client>,
    ready: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse").finish_non_exhaustive()
    }
}

/// The table of `topic`.
pub fn table_name(topic: &str) -> String {
    format!("lake_{}", topic.replace(['.', '-'], "_"))
}

/// Text PostgreSQL's `jsonb` accepts: JSON without `\u0000` (which `jsonb` refuses), or, when
/// the text is not JSON (a non-JSON record of a topic without a schema), a JSON string of it.
fn jsonb_text(text: &str) -> String {
    let cleaned = text.replace("\\u0000", "");
    if serde_json::from_str::<&serde_json::value::RawValue>(&cleaned).is_ok() {
        cleaned
    } else {
        serde_json::Value::String(text.replace('\0', "")).to_string()
    }
}

impl Warehouse {
    pub async fn connect(url: &str) -> Result<Warehouse, String> {
        let client = Self::open(url).await?;
        Ok(Warehouse { url: url.to_owned(), client: Mutex::new(client), ready: Mutex::new(BTreeSet::new()) })
    }

    async fn open(url: &str) -> Result<Client, String> {
        use eventline_platform::store::pg_tls;
        let bad = |e: String| format!("lake.warehouse_url {}: {e}", eventline_model::secrets::redact_url(url));
        let (rest, tls) = pg_tls::split(url).map_err(bad)?;
        let config: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
        pg_tls::connect(&config, &tls, "the warehouse").await.map_err(|e| bad(e.to_string()))
    }

    /// The connection, opened again if the server closed it (a restart).
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, String> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = Self::open(&self.url).await?;
        }
        Ok(client)
    }

    async fn ensure(&self, topic: &str) -> Result<(), String> {
        let mut ready = self.ready.lock().await;
        if ready.contains(topic) {
            return Ok(());
        }
        let cols: Vec<String> = columns(topic).iter().map(|c| format!("\"{}\" {}", c.name, c.kind.sql())).collect();
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, \"_partition\" INTEGER NOT NULL, \"_offset\" BIGINT NOT NULL, \
             \"_key\" TEXT, \"event\" JSONB, PRIMARY KEY (\"_partition\", \"_offset\"))",
            table_name(topic),
            cols.join(", ")
        );
        self.client().await?.batch_execute(&sql).await.map_err(|e| format!("warehouse {}: {e}", table_name(topic)))?;
        ready.insert(topic.to_owned());
        Ok(())
    }

    /// Inserts `rows` of `topic`; rows already there are left alone.
    pub async fn insert(&self, topic: &str, rows: &[Row]) -> Result<(), String> {
        self.ensure(topic).await?;
        let cols = columns(topic);
        let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
        for chunk in rows.chunks(CHUNK) {
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
            let mut tuples = Vec::with_capacity(chunk.len());
            for r in chunk {
                let mut slots = Vec::with_capacity(cols.len() + 4);
                for (i, c) in cols.iter().enumerate() {
                    let v = &r.cells[i];
                    params.push(match c.kind {
                        Kind::Json => Box::new(v.text().map(jsonb_text)),
                        Kind::Text => Box::new(v.text().map(|t| t.replace('\0', ""))),
                        Kind::Int64 | Kind::Int32 | Kind::Time => Box::new(v.int()),
                        Kind::Float64 => Box::new(v.float()),
                    });
                    let n = params.len();
                    slots.push(match c.kind {
                        Kind::Json => format!("(${n}::text)::jsonb"),
                        Kind::Int32 => format!("(${n}::bigint)::integer"),
                        Kind::Time => format!("to_timestamp((${n}::bigint)::double precision / 1000.0)"),
                        Kind::Text => format!("${n}::text"),
                        Kind::Int64 => format!("${n}::bigint"),
                        Kind::Float64 => format!("${n}::double precision"),
                    });
                }
                params.push(Box::new(r.partition as i32));
                slots.push(format!("${}::integer", params.len()));
                params.push(Box::new(r.offset as i64));
                slots.push(format!("${}::bigint", params.len()));
                params.push(Box::new(r.key.clone()));
                slots.push(format!("${}::text", params.len()));
                params.push(Box::new(r.json.as_ref().map(|j| jsonb_text(&String::from_utf8_lossy(j)))));
                slots.push(format!("(${}::text)::jsonb", params.len()));
                tuples.push(format!("({})", slots.join(", ")));
            }
            let sql = format!(
                "INSERT INTO {} ({}, \"_partition\", \"_offset\", \"_key\", \"event\") VALUES {} \
                 ON CONFLICT (\"_partition\", \"_offset\") DO NOTHING",
                table_name(topic),
                names.join(", "),
                tuples.join(", ")
            );
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            self.client()
                .await?
                .execute(&sql, &refs)
                .await
                .map_err(|e| format!("warehouse {}: {e}", table_name(topic)))?;
        }
        Ok(())
    }
}
