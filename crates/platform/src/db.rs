//! [`Database`]: the platform's SQLite database shared by async code. Writes go through one
//! connection (SQLite has one writer at a time; the executor commits executions in groups on it);
//! reads that need no transaction take a read-only connection from a pool (r2d2), so a profile or
//! a conversation is served while a group of executions commits. Every use runs on tokio's
//! blocking pool, so a slow statement never stalls the runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::store::sqlite::{self, StoreError};

/// Read-only connections in the pool.
const READERS: u32 = 4;

/// A handle to `<data-dir>/eventline.db`; clone it freely.
#[derive(Clone, Debug)]
pub struct Database {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    readers: r2d2::Pool<ReadOnly>,
}

/// Opens the pool's connections: the same settings as every eventline connection, `query_only`.
#[derive(Debug)]
struct ReadOnly {
    path: PathBuf,
}

impl r2d2::ManageConnection for ReadOnly {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let conn = sqlite::open(&self.path).map_err(|e| match e {
            StoreError::Open { source, .. } | StoreError::Sql(source) | StoreError::Migration { source, .. } => source,
            StoreError::Pool(reason) => rusqlite::Error::InvalidParameterName(reason),
        })?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

/// Runs `f` with the connection behind `conn` on tokio's blocking pool (a panic in `f` is resumed
/// in the caller). For connections of their own (the outbox relay, capture's relay).
pub async fn on_blocking_pool<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> T + Send + 'static,
) -> T {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

impl Database {
    /// Opens the database (WAL, busy handler, foreign keys) and applies the migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = sqlite::open(path)?;
        sqlite::migrate(&mut conn)?;
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(0))
            .build_unchecked(ReadOnly { path: path.to_owned() });
        Ok(Self { path: path.to_owned(), conn: Arc::new(Mutex::new(conn)), readers })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the writing connection on the blocking pool.
    pub async fn call<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> T + Send + 'static) -> T {
        on_blocking_pool(&self.conn, f).await
    }

    /// Runs `f` with a read-only connection of the pool on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.get().map_err(|e| StoreError::Pool(e.to_string()))?;
            Ok(f(&conn))
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
    }

    /// Runs `f` with the writing connection on the current thread (start-up, tests).
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// `SELECT 1` on a read connection: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(StoreError::from)).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_go_on_while_the_writer_holds_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("e.db")).unwrap();
        db.call(|c| c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")).await.unwrap();
        let (held, release) = std::sync::mpsc::channel::<()>();
        let writer = {
            let db = db.clone();
            tokio::spawn(async move {
                db.call(move |c| {
                    c.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);").unwrap();
                    let _ = release.recv();
                    c.execute_batch("COMMIT").unwrap();
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let n: i64 = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            db.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()),
        )
        .await
        .expect("a read does not wait for the writer")
        .unwrap();
        assert_eq!(n, 1, "the read sees the last commit, not the open transaction");
        let refused = db.read(|c| c.execute("INSERT INTO t VALUES (3)", [])).await.unwrap();
        assert!(refused.is_err(), "pool connections are read-only");
        held.send(()).unwrap();
        writer.await.unwrap();
    }
}
