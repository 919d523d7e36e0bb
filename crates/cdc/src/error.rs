/// What can stop change data capture.
#[derive(Debug, thiserror::Error)]
pub enum CdcError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] eventline_platform::store::sqlite::StoreError),
    #[error("log: {0}")]
    Log(#[from] eventline_log::LogError),
    #[error("outbox row {seq} is malformed: {reason}")]
    BadRow { seq: i64, reason: String },
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL migrations: {0}")]
    PgStore(#[from] eventline_platform::store::postgres::PgStoreError),
    #[error("PostgreSQL replication: {0}")]
    Replication(#[from] pgwire_replication::PgWireError),
    #[error("PostgreSQL replication stream: {0}")]
    Decode(#[from] crate::postgres::pgoutput::DecodeError),
    #[error("{0}")]
    Config(String),
    #[error(
        "table \"{table}\" has REPLICA IDENTITY {current}; capture needs FULL for the prior values of UPDATE and DELETE and for unchanged TOAST columns: run ALTER TABLE \"{table}\" REPLICA IDENTITY FULL"
    )]
    ReplicaIdentity { table: String, current: String },
    #[error(
        "replication slot `{slot}` was lost: {reason}. Changes after the slot's last confirmed position{} cannot be captured any more; take a new snapshot with `eventline cdc run --database URL --resnapshot` (drops and recreates the slot and publishes every row again as SNAPSHOT)",
        if confirmed.is_empty() { String::new() } else { format!(" ({confirmed})") }
    )]
    SlotLost { slot: String, reason: String, confirmed: String },
}

impl CdcError {
    /// Whether the error is a lost connection (a restarting server, a network blip) that a
    /// reconnect can cure, rather than a fault in data or configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            // No database error: the connection broke or could not be made.
            CdcError::Postgres(e) => {
                e.is_closed()
                    || e.as_db_error().is_none()
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        c.starts_with("57P") || c.starts_with("08") || c == "55006"
                    })
            }
            CdcError::Replication(e) => match e {
                pgwire_replication::PgWireError::Io(_) | pgwire_replication::PgWireError::Task(_) => true,
                pgwire_replication::PgWireError::Server(text) => [
                    "SQLSTATE 57P",
                    "SQLSTATE 08",
                    "SQLSTATE 55006",
                    "is active for PID",
                    "shutting down",
                    "starting up",
                ]
                .iter()
                .any(|s| text.contains(s)),
                _ => false,
            },
            _ => false,
        }
    }
}

pub type Result<T, E = CdcError> = std::result::Result<T, E>;
