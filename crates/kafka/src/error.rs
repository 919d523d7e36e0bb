//! Turning librdkafka's errors into the port's [`LogError`].

use eventline_log::{LogError, Result};

/// A client error that has no more specific variant.
pub(crate) fn backend(message: impl Into<String>) -> LogError {
    LogError::Backend { backend: "kafka", message: message.into() }
}

/// Runs blocking librdkafka calls (metadata, offsets, polls) off the async runtime's workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| backend(format!("a blocking Kafka call panicked: {e}")))?
}
