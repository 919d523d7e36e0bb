//! Opens the configured log backend, with the built-in topics in place.

use std::sync::Arc;

use anyhow::Context;
use eventline_log::{EmbeddedLog, EventLog};

use crate::Exit;
use crate::config::{Backend, Config};

/// Opens the log the configuration names and makes sure the six built-in topics and their
/// dead-letter topics exist.
pub async fn open_log(config: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    let log: Arc<dyn EventLog> = match config.backend {
        Backend::Embedded => {
            let dir = config.log_dir();
            let log = EmbeddedLog::open(&dir, config.log.options())
                .with_context(|| format!("cannot open the embedded log in {}", dir.display()))?;
            Arc::new(log)
        }
        Backend::Kafka => {
            return Err(Exit::new(
                2,
                "the kafka backend is not available in this build yet; use --backend embedded (the default)",
            )
            .into());
        }
    };
    for spec in config.builtin_specs() {
        log.ensure_topic(&spec).await.with_context(|| format!("cannot create built-in topic {}", spec.name))?;
    }
    Ok(log)
}
