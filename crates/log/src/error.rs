use std::path::PathBuf;

use crate::codec::DecodeError;

/// Everything that can go wrong in a log backend. Messages name what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic `{0}` does not exist; create it with `eventline topics create {0}`")]
    UnknownTopic(String),
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("topic `{topic}` has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition { topic: String, partition: u32, partitions: u32 },
    #[error("offset {offset} is out of range for {topic}/{partition}: valid offsets are {start}..{end}")]
    OffsetOutOfRange { topic: String, partition: u32, offset: u64, start: u64, end: u64 },
    #[error("record {index} is {size} bytes; the limit is {limit} bytes (log.max_record_bytes)")]
    RecordTooLarge { index: usize, size: usize, limit: usize },
    #[error(
        "data directory {} is in use by process {pid}; stop it (is `eventline up` running?) or use another --data-dir",
        path.display()
    )]
    Locked { path: PathBuf, pid: String },
    #[error("corrupt log {} at byte {position}: {reason}. The log will not serve or truncate data \
             inside the log; restore the file from a backup or move it aside", file.display())]
    Corrupt { file: PathBuf, position: u64, reason: String },
    #[error("hole in the log: {} ends at offset {end} but the next segment {} starts at {next}", file.display(), next_file.display())]
    Hole { file: PathBuf, end: u64, next_file: PathBuf, next: u64 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("record at {topic}/{partition} offset {offset} cannot be decoded: {source}")]
    Decode {
        topic: String,
        partition: u32,
        offset: u64,
        #[source]
        source: DecodeError,
    },
    #[error("invalid consumer group: {0}")]
    InvalidGroup(String),
    /// A commit from a member whose view of the group is out of date (an older generation, or a
    /// partition it no longer owns): refused so it cannot overwrite the new owner's offsets.
    #[error("commit of group `{group}` refused: {reason}; the member must poll again to learn its new partitions")]
    Fenced { group: String, reason: String },
    #[error("the log is closed")]
    Closed,
    /// What this way of reaching the log cannot do (a usage error, not a failure).
    #[error("{0}")]
    Unsupported(String),
    #[error("{backend} backend: {message}")]
    Backend { backend: &'static str, message: String },
}

impl LogError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
        let context = context.into();
        move |source| LogError::Io { context, source }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
