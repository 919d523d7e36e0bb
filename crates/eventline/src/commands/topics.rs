use anyhow::Context;
use eventline_log::TopicDescription;
use eventline_model::topics::{self as catalog, duration_text};

use crate::Exit;
use crate::cli::{CreateTopicArgs, TopicsCommand};
use crate::config::Config;
use crate::remote;

pub async fn run(cmd: TopicsCommand, config: &Config) -> anyhow::Result<()> {
    let access = remote::open(config).await?;
    match cmd {
        TopicsCommand::List { json } => {
            let topics = access.log.list_topics().await?;
            if json {
                for t in &topics {
                    outln!("{}", serde_json::to_string(&summary(t))?);
                }
            } else {
                outln!(
                    "{:<32} {:>10} {:>10} {:>11} {:>12} {:>10}",
                    "TOPIC",
                    "PARTITIONS",
                    "RETENTION",
                    "COMPRESSION",
                    "RECORDS",
                    "SIZE"
                );
                for t in &topics {
                    let s = summary(t);
                    outln!(
                        "{:<32} {:>10} {:>10} {:>11} {:>12} {:>10}",
                        t.spec.name,
                        t.spec.partitions,
                        duration_text::format(t.spec.retention),
                        t.spec.compression,
                        s["records"].as_u64().unwrap_or(0),
                        human_bytes(s["size_bytes"].as_u64().unwrap_or(0)),
                    );
                }
            }
            Ok(())
        }
        TopicsCommand::Describe { name, json } => {
            let d = access.log.describe_topic(&name).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                let s = &d.spec;
                outln!("topic:        {}", s.name);
                outln!("partitions:   {}", s.partitions);
                outln!("replication:  {}", s.replication_factor);
                outln!("retention:    {}", duration_text::format(s.retention));
                outln!(
                    "size cap:     {}",
                    s.retention_bytes.map_or("none".to_owned(), |b| format!("{} per partition", human_bytes(b)))
                );
                outln!("compression:  {}", s.compression);
                outln!("acks:         {}", s.acks);
                outln!("key field:    {}", s.key_pointer.as_deref().unwrap_or("(none: --key or null)"));
                outln!(
                    "schema:       {}",
                    if eventline_model::schema::schema_for(&s.name).is_some() {
                        "built in (eventline schema NAME)"
                    } else {
                        "none (any JSON object)"
                    }
                );
                outln!();
                outln!("{:>9} {:>12} {:>12} {:>10}", "PARTITION", "START", "END", "SIZE");
                for p in &d.partitions {
                    outln!(
                        "{:>9} {:>12} {:>12} {:>10}",
                        p.partition,
                        p.start_offset,
                        p.end_offset,
                        human_bytes(p.size_bytes.unwrap_or(0))
                    );
                }
            }
            Ok(())
        }
        TopicsCommand::Create(args) => {
            let spec = spec_from(args, config)?;
            access.log.create_topic(&spec).await?;
            outln!(
                "created topic {} ({} partitions, retention {}, compression {})",
                spec.name,
                spec.partitions,
                duration_text::format(spec.retention),
                spec.compression
            );
            Ok(())
        }
        TopicsCommand::Delete { name, force } => {
            if catalog::is_builtin(&name) && !force {
                return Err(Exit::new(
                    2,
                    format!("`{name}` is a built-in topic; add --force to delete it and all its records"),
                )
                .into());
            }
            access.log.delete_topic(&name).await?;
            outln!("deleted topic {name}");
            Ok(())
        }
    }
}

fn spec_from(args: CreateTopicArgs, config: &Config) -> anyhow::Result<eventline_model::topics::TopicSpec> {
    let mut spec = config.topic_spec(&args.name);
    if let Some(p) = args.partitions {
        spec.partitions = p;
    }
    if let Some(r) = &args.retention {
        spec.retention = duration_text::parse(r).map_err(|e| Exit::new(2, format!("--retention: {e}")))?;
    }
    if let Some(b) = args.retention_bytes {
        spec.retention_bytes = Some(b);
    }
    if let Some(c) = args.compression {
        spec.compression = c;
    }
    if let Some(a) = args.acks {
        spec.acks = a;
    }
    if let Some(k) = args.key_field {
        if !k.starts_with('/') {
            return Err(
                Exit::new(2, format!("--key-field `{k}`: a JSON pointer starts with `/`, e.g. /order_id")).into()
            );
        }
        spec.key_pointer = Some(k);
    }
    spec.validate().map_err(|e| Exit::new(2, e)).context("invalid topic")?;
    Ok(spec)
}

fn summary(t: &TopicDescription) -> serde_json::Value {
    let records: u64 = t.partitions.iter().map(|p| p.end_offset - p.start_offset).sum();
    let size: u64 = t.partitions.iter().filter_map(|p| p.size_bytes).sum();
    serde_json::json!({
        "name": t.spec.name,
        "partitions": t.spec.partitions,
        "retention": duration_text::format(t.spec.retention),
        "compression": t.spec.compression,
        "acks": t.spec.acks,
        "records": records,
        "size_bytes": size,
    })
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
