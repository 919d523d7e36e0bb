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
}

pub type Result<T, E = CdcError> = std::result::Result<T, E>;
