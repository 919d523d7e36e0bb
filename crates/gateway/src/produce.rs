//! One produce request, as `eventline produce` and `POST /v1/topics/{topic}/records` both take
//! it: lines of JSON made into drafts for the produce pipeline with the caller's options (key,
//! partition, headers, stamping), prepared up to the first bad one, appended with the chosen acks.
//!
//! ```
//! use eventline_gateway::produce::{RecordOptions, prepare_lines};
//! use eventline_governance::{Gate, Policy};
//! use eventline_log::{EmbeddedLog, EmbeddedOptions};
//! use eventline_model::topics::TopicSpec;
//! use eventline_pipeline::Pipeline;
//! use std::sync::Arc;
//! let dir = tempfile::tempdir().unwrap();
//! let log = Arc::new(EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap());
//! let gate = Gate::new(Policy::default_with_key(b"0123456789abcdef0123456789abcdef".to_vec()), "doc");
//! let pipeline = Pipeline::new(log, Some(Arc::new(gate)), "doc");
//! let spec = TopicSpec::new("scratch");
//! let lines = vec![r#"{"note": "hi"}"#.to_owned(), "{oops".to_owned()];
//! let (ready, refused) = prepare_lines(&pipeline, &spec, &RecordOptions::default(), &lines);
//! assert_eq!(ready[0].record.value.as_deref(), Some(&br#"{"note": "hi"}"#[..]));
//! let (index, error) = refused.unwrap();
//! assert_eq!(index, 1);
//! assert!(error.to_string().starts_with("not JSON"));
//! ```

use eventline_governance::Location;
use eventline_log::Header;
use eventline_model::topics::TopicSpec;
use eventline_pipeline::{Draft, EventError, Pipeline, Prepared};

/// The component named in alerts about events produced by hand or through the topic endpoints.
pub const PRODUCE_COMPONENT: &str = "produce";

/// How the records of one produce call are made.
#[derive(Clone, Debug, Default)]
pub struct RecordOptions {
    /// Key for every record (default: the topic's key field).
    pub key: Option<String>,
    /// Every record to this partition instead of hashing the key.
    pub partition: Option<u32>,
    /// The caller's headers (reserved `eventline.*` names are refused).
    pub headers: Vec<Header>,
    /// Fill in `_metadata` and `timestamp` where missing.
    pub stamp: bool,
    /// Sent through the API (not by the operator's `eventline produce`): on a built-in topic the
    /// caller may not name the producer.
    pub from_caller: bool,
}

/// The draft of one line.
pub fn draft(line: &str, opts: &RecordOptions) -> Draft {
    let draft = Draft::text(line, PRODUCE_COMPONENT, Location::InboundPayload);
    let draft = if opts.from_caller { draft.from_caller() } else { draft };
    draft.stamped(opts.stamp).key(opts.key.clone()).partition(opts.partition).headers(opts.headers.clone())
}

/// Prepares `lines` in order up to the first that is refused; returns the prepared events and,
/// if one was refused, its index in `lines` and why.
pub fn prepare_lines(
    pipeline: &Pipeline,
    spec: &TopicSpec,
    opts: &RecordOptions,
    lines: &[String],
) -> (Vec<Prepared>, Option<(usize, EventError)>) {
    let mut ready = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match pipeline.prepare(spec, draft(line, opts)) {
            Ok(p) => ready.push(p),
            Err(e) => return (ready, Some((i, e))),
        }
    }
    (ready, None)
}
