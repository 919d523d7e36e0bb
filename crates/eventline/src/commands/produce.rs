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

use std::io::{BufRead, Write};

use bytes::Bytes;
use eventline_governance::{Gate, Location};
use eventline_log::{Header, ProduceRecord};
use eventline_model::events::Event;
use eventline_model::topics::COMPLIANCE_ALERTS;
use eventline_model::{Metadata, schema};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::Exit;
use crate::backend::open_log;
use crate::cli::ProduceArgs;
use crate::config::Config;

const MAX_BATCH: usize = 2000;

pub async fn run(args: ProduceArgs, config: &Config) -> anyhow::Result<()> {
    let headers = args
        .headers
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Header::new(k, Bytes::copy_from_slice(v.as_bytes()))),
            _ => Err(Exit::new(2, format!("--header `{h}`: write NAME=VALUE"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let log = open_log(config).await?;
    let spec = log.describe_topic(&args.topic).await?.spec;
    let gate = crate::gate::load(config)?;
    let acks = args.acks.unwrap_or(spec.acks);

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
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(l) => pending.push(l),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(pending.len());
        let mut alerts = Vec::new();
        let mut failure = None;
        for line in pending.drain(..) {
            line_no += 1;
            let line = line.map_err(|e| anyhow::anyhow!("reading stdin at line {line_no}: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            match to_record(&line, &args, &spec, &headers, &config.producer, &gate, &mut alerts) {
                Ok(r) => batch.push(r),
                Err(reason) => {
                    failure = Some(format!("line {line_no}: {reason}"));
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            let positions = log.produce(&args.topic, batch, acks).await?;
            let mut out = stdout.lock();
            for p in positions {
                match p.offset {
                    Some(o) => writeln!(out, "{{\"partition\":{},\"offset\":{o}}}", p.partition)?,
                    None => writeln!(out, "{{\"partition\":{},\"offset\":null}}", p.partition)?,
                }
            }
            out.flush()?;
            appended += n;
        }
        if !alerts.is_empty() {
            let records = alerts
                .iter()
                .map(|a| ProduceRecord::new(a.key(), Bytes::from(serde_json::to_vec(a).expect("alerts serialise"))))
                .collect();
            log.produce(COMPLIANCE_ALERTS, records, eventline_model::topics::Acks::All).await?;
            tracing::info!(alerts = alerts.len(), "PII findings reported on {COMPLIANCE_ALERTS}");
        }
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

#[allow(clippy::too_many_arguments)]
fn to_record(
    line: &str,
    args: &ProduceArgs,
    spec: &eventline_model::topics::TopicSpec,
    headers: &[Header],
    producer: &str,
    gate: &Gate,
    alerts: &mut Vec<eventline_model::events::ComplianceAlert>,
) -> Result<ProduceRecord, String> {
    let mut event: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if args.stamp {
        stamp(&mut event, producer);
    }
    if let Err(e) = schema::validate(&spec.name, &event) {
        let mut msg = e.violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ");
        if !args.stamp && e.violations.iter().any(|v| v.pointer == "/_metadata" || v.pointer == "/timestamp") {
            msg.push_str(" (add --stamp to fill in _metadata and timestamp)");
        }
        return Err(msg);
    }
    let outcome = gate.apply(&spec.name, &mut event, "produce", Location::InboundPayload);
    if outcome.changed
        && let Err(e) = schema::validate(&spec.name, &event)
    {
        return Err(format!("the governance policy leaves the event invalid: {e}"));
    }
    alerts.extend(outcome.alerts);
    let key = args.key.clone().or_else(|| spec.key_of(&event));
    // The value is the line exactly as given unless --stamp or the policy changed it.
    let value = if args.stamp || outcome.changed {
        Bytes::from(serde_json::to_vec(&event).expect("JSON serialises"))
    } else {
        Bytes::copy_from_slice(line.trim().as_bytes())
    };
    Ok(ProduceRecord {
        key: key.map(Bytes::from),
        value: Some(value),
        headers: headers.to_vec(),
        // Records are stamped with the append time (Kafka's LogAppendTime): retention and
        // `consume --since` count from when an event arrived, whatever time the event itself names.
        timestamp: None,
        partition: args.partition,
    })
}

/// Fills in `_metadata` and the top-level `timestamp` where they are missing.
fn stamp(event: &mut Value, producer: &str) {
    let Some(obj) = event.as_object_mut() else { return };
    let meta = Metadata::new(producer);
    let now = meta.timestamp.as_str().to_owned();
    let m = obj.entry("_metadata").or_insert_with(|| serde_json::json!({}));
    if let Some(m) = m.as_object_mut() {
        m.entry("timestamp").or_insert_with(|| Value::String(now.clone()));
        m.entry("message_id").or_insert_with(|| Value::String(meta.message_id.to_string()));
        m.entry("producer").or_insert_with(|| Value::String(producer.to_owned()));
    }
    obj.entry("timestamp").or_insert(Value::String(now));
}
