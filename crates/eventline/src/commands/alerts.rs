//! `eventline alerts`: recent compliance alerts with their delivery state per channel, read from
//! the platform database (with or without `eventline up`).

use std::io::Write;

use eventline_platform::db::Database;
use eventline_services::notify::store;

use crate::Exit;
use crate::config::Config;

pub async fn run(limit: usize, alert_type: Option<String>, json: bool, config: &Config) -> anyhow::Result<()> {
    let path = super::platform_db_path(config)?;
    if !path.exists() {
        return Err(
            Exit::new(2, format!("there is no platform database at {}: start `eventline up`", path.display())).into()
        );
    }
    if limit == 0 {
        return Err(Exit::new(2, "--limit must be at least 1").into());
    }
    let db = Database::open(&path).map_err(|e| Exit::new(2, format!("cannot open {}: {e}", path.display())))?;
    let alerts = db.read(move |c| store::recent(c, limit, alert_type.as_deref())).await??;
    let mut out = std::io::stdout().lock();
    if json {
        for a in &alerts {
            serde_json::to_writer(&mut out, a)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    if alerts.is_empty() {
        writeln!(out, "no alerts yet")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24}  {:<14}  {:<8}  {:<16}  {:<22}  deliveries",
        "time", "type", "severity", "component", "field"
    )?;
    for a in &alerts {
        let deliveries: Vec<String> = a
            .deliveries
            .iter()
            .map(|d| match (&d.last_error, d.state.as_str()) {
                (Some(e), "pending" | "dead") => format!("{}={} ({} tries: {e})", d.channel, d.state, d.attempts),
                _ => format!("{}={}", d.channel, d.state),
            })
            .collect();
        writeln!(
            out,
            "{:<24}  {:<14}  {:<8}  {:<16}  {:<22}  {}",
            a.timestamp,
            a.alert_type,
            a.severity,
            a.component,
            a.field,
            if deliveries.is_empty() { "-".to_owned() } else { deliveries.join(", ") }
        )?;
    }
    Ok(())
}
