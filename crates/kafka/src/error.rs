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

/// Group names follow the same rule on both backends, so a group moves between them unchanged.
pub(crate) fn validate_group(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > 249 {
        return Err(LogError::InvalidGroup(format!("`{group}`: a group name has 1 to 249 characters")));
    }
    if let Some(c) = group.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(LogError::InvalidGroup(format!(
            "`{group}` contains `{c}`; use only ASCII letters, digits, `.`, `_` and `-`"
        )));
    }
    if group.starts_with('.') {
        return Err(LogError::InvalidGroup(format!("`{group}` must not start with `.`")));
    }
    Ok(())
}
