//! `eventline produce`: JSON lines on stdin → validated records → one acknowledgement line per
//! record, in input order, printed as soon as its batch is acknowledged. Lines that arrive while a
//! batch is being acknowledged form the next batch, so a fast pipe gets large batches and an
//! interactive one gets an answer per line.
//!
//! Every event passes the governance gate before it is appended: the field policy masks, hashes or
//! drops PII, and each finding is reported on `compliance.alerts` (without the raw value).
//!
//! The first invalid line stops the command: everything before it is appended and acknowledged,
//! nothing from it on is, and the error names the line, the field and the reason.
//!
//! While `eventline up` holds the data directory, the batches go to its gateway
//! (`POST /v1/topics/{topic}/records`), which makes each record with the same produce pipeline
//! ([`prepare_lines`]) and answers with the same positions.

use std::io::{BufRead, Write};
use std::sync::Arc;

use bytes::Bytes;
use eventline_gateway::produce::{RecordOptions, prepare_lines};
use eventline_log::Header;
use eventline_model::topics::{Acks, TopicSpec};
use eventline_pipeline::Pipeline;
use tokio::sync::mpsc;

use crate::Exit;
use crate::cli::ProduceArgs;
use crate::config::Config;
use crate::remote::{self, Position, ProduceParams};

const MAX_BATCH: usize = 2000;
/// Through a running `up`: at most this many lines and about this many bytes per request (the
/// gateway's default batch and body limits).
const REMOTE_MAX_LINES: usize = 1000;
const REMOTE_MAX_BYTES: usize = 512 * 1024;

pub async fn run(args: ProduceArgs, config: &Config) -> anyhow::Result<()> {
    let headers = args
        .headers
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Header::new(k, Bytes::copy_from_slice(v.as_bytes()))),
            _ => Err(Exit::new(2, format!("--header `{h}`: write NAME=VALUE"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let access = remote::open(config).await?;
    // Fail before reading stdin when the topic does not exist.
    let spec = access.log.describe_topic(&args.topic).await?.spec;
    let sink = match access.up {
        None => {
            let gate = crate::gate::load(config)?;
            let acks = args.acks.unwrap_or(spec.acks);
            let opts = RecordOptions {
                key: args.key.clone(),
                partition: args.partition,
                headers,
                stamp: args.stamp,
                from_caller: false,
            };
            let pipeline = Pipeline::new(access.log, Some(Arc::new(gate)), config.producer.clone());
            Sink::Local { pipeline, spec, acks, opts }
        }
        // Through `up`: the raw lines go to its produce endpoint, whose pipeline validates and
        // governs them once (see `crate::remote`).
        Some(remote) => {
            let params = ProduceParams {
                key: args.key.clone(),
                partition: args.partition,
                acks: args.acks.map(|a| a.to_string()),
                stamp: args.stamp,
                headers: args.headers.clone(),
            };
            Sink::Remote { remote, params }
        }
    };
    let max_batch = if matches!(sink, Sink::Remote { .. }) { REMOTE_MAX_LINES } else { MAX_BATCH };

    let (tx, mut rx) = mpsc::channel::<std::io::Result<String>>(MAX_BATCH * 4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });

    let mut line_no = 0usize;
    let mut appended = 0usize;
    let stdout = std::io::stdout();
    let mut pending = Vec::new();
    while let Some(first) = rx.recv().await {
        pending.push(first);
        let mut bytes = 0;
        while pending.len() < max_batch && bytes < REMOTE_MAX_BYTES {
            match rx.try_recv() {
                Ok(l) => {
                    bytes += l.as_ref().map_or(0, |l| l.len() + 1);
                    pending.push(l);
                }
                Err(_) => break,
            }
        }
        let first_line = line_no + 1;
        let mut lines = Vec::with_capacity(pending.len());
        for line in pending.drain(..) {
            line_no += 1;
            lines.push(line.map_err(|e| anyhow::anyhow!("reading stdin at line {line_no}: {e}"))?);
        }
        let (positions, failure) = sink.append(&args.topic, lines, first_line).await?;
        let mut out = stdout.lock();
        for p in &positions {
            match p.offset {
                Some(o) => writeln!(out, "{{\"partition\":{},\"offset\":{o}}}", p.partition)?,
                None => writeln!(out, "{{\"partition\":{},\"offset\":null}}", p.partition)?,
            }
        }
        out.flush()?;
        appended += positions.len();
        if let Some(message) = failure {
            return Err(Exit::new(
                1,
                format!("{message}\n{appended} record(s) before it were appended and acknowledged; nothing from this line on was"),
            )
            .into());
        }
    }
    Ok(())
}

/// Where the records go: the log itself, or the gateway of the `up` that holds it.
enum Sink {
    Local { pipeline: Pipeline, spec: TopicSpec, acks: Acks, opts: RecordOptions },
    Remote { remote: Arc<remote::Remote>, params: ProduceParams },
}

impl Sink {
    /// Appends the records of `lines` (the first is line `first_line` of the input; blank lines
    /// are skipped) up to the first bad one; returns their positions and, if a line was refused,
    /// `line N: reason`.
    async fn append(
        &self,
        topic: &str,
        lines: Vec<String>,
        first_line: usize,
    ) -> anyhow::Result<(Vec<Position>, Option<String>)> {
        match self {
            Sink::Local { pipeline, spec, acks, opts } => {
                let (numbers, lines): (Vec<usize>, Vec<String>) = lines
                    .into_iter()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(i, l)| (first_line + i, l))
                    .unzip();
                let (ready, refused) = prepare_lines(pipeline, spec, opts, &lines);
                let failure = refused.map(|(i, reason)| format!("line {}: {reason}", numbers[i]));
                let appended = pipeline.append(topic, ready, *acks).await?;
                let positions =
                    appended.positions.iter().map(|p| Position { partition: p.partition, offset: p.offset }).collect();
                Ok((positions, failure))
            }
            Sink::Remote { remote, params } => {
                if lines.iter().all(|l| l.trim().is_empty()) {
                    return Ok((Vec::new(), None));
                }
                let reply = remote.produce(topic, params, lines.join("\n")).await?;
                let failure = reply.refused.map(|(line, reason)| format!("line {}: {reason}", first_line + line - 1));
                Ok((reply.positions, failure))
            }
        }
    }
}
