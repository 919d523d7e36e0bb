//! Opening the SQLite database the way every eventline connection must.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::SQLITE_MIGRATIONS;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("migration {version} failed: {source}")]
    Migration {
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no database connection available: {0}")]
    Pool(String),
}

/// Opens `path` in WAL mode (readers never block the writer), with a busy timeout, foreign keys,
/// and `recursive_triggers` on so that `INSERT OR REPLACE` fires the delete triggers of the row it
/// replaces (change data capture then sees a DELETE and an INSERT).
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_handler(Some(wait_when_busy)).map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
    conn.pragma_update(None, "recursive_triggers", "ON").map_err(open_err)?;
    Ok(conn)
}

/// Retries a locked database for about 10 s: every 100 µs for the first 0.2 s, then every 1 ms.
/// (SQLite's own busy timeout backs off to sleeps of up to 100 ms, which puts 100 ms stalls into
/// change data capture whenever the relay and a writer meet.)
fn wait_when_busy(attempt: i32) -> bool {
    match attempt {
        0..2_000 => std::thread::sleep(Duration::from_micros(100)),
        2_000..11_800 => std::thread::sleep(Duration::from_millis(1)),
        _ => return false,
    }
    true
}

/// Begins a transaction that writes: `BEGIN IMMEDIATE`, so it takes the write lock up front
/// (waiting through the busy handler). A deferred transaction that reads first and writes later
/// fails at once with "database is locked" when another connection (the capture relay, a
/// concurrent request) committed in between, since WAL cannot upgrade its stale read snapshot.
///
/// Inside a [`Unit`] (a transaction is already open) it is a savepoint of that transaction:
/// what it writes commits or rolls back with the unit.
pub fn write_transaction(conn: &mut Connection) -> rusqlite::Result<WriteTx<'_>> {
    if conn.is_autocommit() {
        Ok(WriteTx::Top(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?))
    } else {
        Ok(WriteTx::Nested(conn.savepoint()?))
    }
}

/// A write transaction of its own, or a savepoint inside a [`Unit`].
#[derive(Debug)]
pub enum WriteTx<'c> {
    Top(rusqlite::Transaction<'c>),
    Nested(rusqlite::Savepoint<'c>),
}

impl WriteTx<'_> {
    pub fn commit(self) -> rusqlite::Result<()> {
        match self {
            WriteTx::Top(t) => t.commit(),
            WriteTx::Nested(s) => s.commit(),
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Top(t) => t,
            WriteTx::Nested(s) => s,
        }
    }
}

/// One atomic unit of work over several steps that each write (an agent's change, the outbox
/// rows of its events, the conversation turn): `BEGIN IMMEDIATE` now, `COMMIT` in
/// [`Unit::commit`], `ROLLBACK` when dropped uncommitted. Steps get the connection through
/// `&mut *unit`; their own [`write_transaction`]s become savepoints.
#[derive(Debug)]
pub struct Unit<'c> {
    conn: &'c mut Connection,
    open: bool,
}

impl<'c> Unit<'c> {
    pub fn begin(conn: &'c mut Connection) -> rusqlite::Result<Self> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Self { conn, open: true })
    }

    pub fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.conn.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Unit<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl std::ops::DerefMut for Unit<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
    }
}

impl Drop for Unit<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Applies the migrations not applied yet; returns how many ran.
pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _eventline_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let mut ran = 0;
    for (version, sql) in SQLITE_MIGRATIONS {
        let done: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM _eventline_migrations WHERE version = ?1)", [version], |r| {
                r.get(0)
            })?;
        if done {
            continue;
        }
        let tx = write_transaction(conn)?;
        tx.execute_batch(sql).map_err(|source| StoreError::Migration { version: *version, source })?;
        tx.execute(
            "INSERT INTO _eventline_migrations (version, applied_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            [version],
        )?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_create_the_contract_tables_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("eventline.db")).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), SQLITE_MIGRATIONS.len());
        assert_eq!(migrate(&mut conn).unwrap(), 0, "idempotent");
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('Users')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(cols, ["UserId", "Email", "Name", "Phone", "CreatedAt", "UpdatedAt"]);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let bad =
            conn.execute("INSERT INTO conversations (conversation_id, user_id, doc) VALUES ('c', 'u', 'not json')", []);
        assert!(bad.is_err(), "doc must be JSON");
    }
}
