//! Applying the PostgreSQL migrations ([`super::POSTGRES_MIGRATIONS`]) the way the SQLite side
//! does: a `_eventline_migrations` table records what ran, each migration runs in its own
//! transaction, and a transaction-scoped advisory lock keeps two processes starting at once
//! from running the same migration twice.

use tokio_postgres::Client;

use super::POSTGRES_MIGRATIONS;

/// Advisory lock key shared by every eventline process migrating a database ("evtline" in ASCII).
const MIGRATION_LOCK: i64 = 0x0065_7674_6c69_6e65;

#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    #[error("migration {version} failed: {source}")]
    Migration {
        version: u32,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] tokio_postgres::Error),
}

/// Applies the migrations not applied yet; returns how many ran.
pub async fn migrate(client: &mut Client) -> Result<usize, PgStoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS _eventline_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .or_else(|e| {
            // Two processes creating the table at the same moment: one loses the race on the
            // catalog's unique index; the table exists either way.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) { Ok(()) } else { Err(e) }
        })?;
    let mut ran = 0;
    for (version, sql) in POSTGRES_MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        let done = tx
            .query_opt("SELECT 1 FROM _eventline_migrations WHERE version = $1", &[&(*version as i32)])
            .await?
            .is_some();
        if done {
            tx.commit().await?;
            continue;
        }
        tx.batch_execute(sql).await.map_err(|source| PgStoreError::Migration { version: *version, source })?;
        tx.execute("INSERT INTO _eventline_migrations (version) VALUES ($1)", &[&(*version as i32)]).await?;
        tx.commit().await?;
        ran += 1;
    }
    Ok(ran)
}
