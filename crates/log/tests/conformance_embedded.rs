//! The conformance suite against the embedded log.

use std::sync::Arc;

use eventline_log::conformance::{Capabilities, Fixture};
use eventline_log::{EmbeddedLog, EmbeddedOptions};

async fn embedded() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions { segment_bytes: 64 << 10, ..Default::default() };
    let log = EmbeddedLog::open(dir.path(), opts).unwrap();
    Fixture { log: Arc::new(log), caps: Capabilities::default(), guard: Box::new(dir) }
}

eventline_log::conformance_tests!(embedded());
