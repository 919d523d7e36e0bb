//! `eventline analytics [--window 5m] [--json]`: the running `up`'s analytics, or the same figures
//! computed from the log when `up` is not running.

use eventline_services::analytics::{Window, report_from_log};
use serde_json::Value;

use crate::Exit;
use crate::config::Config;

pub async fn run(window: &str, json: bool, config: &Config) -> anyhow::Result<()> {
    let w = Window::parse(window).map_err(|e| Exit::new(2, format!("--window: {e}")))?;
    let access = crate::remote::open(config).await?;
    let report: Value = match &access.up {
        Some(up) => {
            let body = up.get_json(&format!("/v1/analytics/agents?window={}", w.as_str())).await?;
            body["windows"][0].clone()
        }
        None => serde_json::to_value(report_from_log(&*access.log, w).await?)?,
    };
    if json {
        outln!("{report}");
        return Ok(());
    }
    print_tables(&report)
}

/// A JSON value as table text (strings without quotes).
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_tables(r: &Value) -> anyhow::Result<()> {
    outln!(
        "window {} ({} → {})",
        r["window"].as_str().unwrap_or("?"),
        r["from"].as_str().unwrap_or("?"),
        r["to"].as_str().unwrap_or("?")
    );
    outln!();
    outln!(
        "{:<14} {:>10} {:>10} {:>8} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7}",
        "agent",
        "executions",
        "completed",
        "failed",
        "rejected",
        "success",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms"
    );
    let agents = r["agents"].as_array().cloned().unwrap_or_default();
    if agents.is_empty() {
        outln!("(no executions in this window)");
    }
    for a in agents {
        let l = &a["latency_ms"];
        outln!(
            "{:<14} {:>10} {:>10} {:>8} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7}",
            a["agent_id"].as_str().unwrap_or("?"),
            cell(&a["executions"]),
            cell(&a["completed"]),
            cell(&a["failed"]),
            cell(&a["rejected"]),
            a["success_rate"].as_f64().map_or("-".to_owned(), |s| format!("{:.1}%", s * 100.0)),
            cell(&l["p50"]),
            cell(&l["p95"]),
            cell(&l["p99"]),
            l["max"]
        );
    }
    outln!();
    outln!("{:<28} {:>10} {:>10}", "topic", "events", "events/s");
    for t in r["topics"].as_array().cloned().unwrap_or_default() {
        outln!("{:<28} {:>10} {:>10}", cell(&t["topic"]), cell(&t["events"]), cell(&t["events_per_s"]));
    }
    let alerts = r["alerts"].as_array().cloned().unwrap_or_default();
    if !alerts.is_empty() {
        outln!();
        outln!("{:<20} {:<10} {:>8}", "alert type", "severity", "count");
        for a in alerts {
            outln!("{:<20} {:<10} {:>8}", cell(&a["alert_type"]), cell(&a["severity"]), cell(&a["count"]));
        }
    }
    Ok(())
}
