//! `eventline audit verify|query`: the audit trail in the platform database, read directly (so
//! they work with or without `eventline up`; SQLite lets them read while `up` writes).

use std::io::Write;

use eventline_platform::db::Database;
use eventline_services::audit::record::parse_bound;
use eventline_services::audit::signing::{parse_public_key, public_key_of};
use eventline_services::audit::{AUDIT_GROUP, coverage, store, verify};

use crate::Exit;
use crate::cli::AuditCommand;
use crate::config::Config;

pub async fn run(cmd: AuditCommand, config: &Config) -> anyhow::Result<()> {
    let path = super::platform_db_path(config)?;
    if !path.exists() {
        return Err(Exit::new(
            2,
            format!(
                "there is no platform database at {}: the audit trail is written by `eventline up`",
                path.display()
            ),
        )
        .into());
    }
    let db = Database::open(&path).map_err(|e| Exit::new(2, format!("cannot open {}: {e}", path.display())))?;
    match cmd {
        AuditCommand::Verify { against_log, public_key, json } => {
            let key = match public_key {
                Some(text) => Some(parse_public_key(&text).map_err(|e| Exit::new(2, format!("--public-key: {e}")))?),
                None => public_key_of(&config.data_dir)?,
            };
            let dir = config.data_dir.clone();
            let report = db.read(move |c| verify::verify(c, key.as_ref(), &dir)).await??;
            let cover = if against_log {
                let access = crate::remote::open(config).await?;
                Some(coverage::check(&*access.log, &db, AUDIT_GROUP).await?)
            } else {
                None
            };
            let missing = cover.as_ref().is_some_and(|c| c.missing > 0);
            if json {
                let mut v = serde_json::to_value(&report)?;
                if let Some(c) = &cover {
                    v["against_log"] = serde_json::to_value(c)?;
                    v["ok"] = serde_json::Value::Bool(report.ok && c.missing == 0);
                }
                println!("{v}");
            } else {
                print_report(&report, cover.as_ref());
            }
            if !report.ok || missing {
                return Err(Exit::new(1, "the audit trail is not intact").into());
            }
            Ok(())
        }
        AuditCommand::Query { entity, topic, since, until, limit, oldest_first, cursor } => {
            let bound = |name: &str, t: Option<String>| {
                t.map(|t| parse_bound(&t).map_err(|e| Exit::new(2, format!("--{name}: {e}")))).transpose()
            };
            if limit == 0 {
                return Err(Exit::new(2, "--limit must be at least 1").into());
            }
            let q = store::Query {
                entity,
                topic,
                since: bound("since", since)?,
                until: bound("until", until)?,
                limit,
                oldest_first,
                cursor,
            };
            let page = db.read(move |c| store::query(c, &q)).await??;
            let mut out = std::io::stdout().lock();
            for r in &page.records {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            if let Some(next) = &page.next_cursor {
                eprintln!("eventline: more records: --cursor {next}");
            }
            Ok(())
        }
    }
}

fn print_report(r: &verify::Report, cover: Option<&coverage::Coverage>) {
    match &r.first_bad {
        None => println!(
            "audit trail intact: {} records{}, head {}",
            r.records,
            match (r.first_seq, r.last_seq) {
                (Some(a), Some(b)) => format!(" (seq {a}..={b})"),
                _ => String::new(),
            },
            r.head.as_deref().unwrap_or("-")
        ),
        Some(b) => {
            println!("audit trail NOT intact: first bad record seq {}", b.seq);
            if let (Some(t), Some(p), Some(o)) = (&b.topic, b.partition, b.offset) {
                println!("  from {t} partition {p} offset {o}");
            }
            println!("  {}", b.reason);
        }
    }
    match &r.last_checkpoint {
        Some(c) => println!("signed checkpoints: {} (last: record {} at {})", r.checkpoints, c.seq, c.signed_at),
        None => println!("signed checkpoints: none yet"),
    }
    println!(
        "public key (Ed25519): {}",
        r.public_key.as_deref().unwrap_or("none: no audit-signing.key in the data directory")
    );
    if let Some(c) = cover {
        match &c.first_missing {
            None => println!(
                "against the log: all {} records in the log are in the trail ({} pending)",
                c.checked, c.pending
            ),
            Some(m) => println!(
                "against the log: {} of {} records are missing from the trail; first: {} partition {} offset {}",
                c.missing, c.checked, m.topic, m.partition, m.offset
            ),
        }
    }
}
