//! `eventline bench services`: the consumer services' throughput, each next to a peer in the same
//! run.
//!
//! - `audit_append_per_s`: events through the audit service end to end (consumer group on the
//!   embedded log → audit records → hash chain → SQLite, committed). Peer: the same rows inserted
//!   into the same table by plain SQLite inserts in batches of 500, without describing or hashing
//!   (`sqlite_insert_per_s`); the ratio is what the trail costs.
//! - `audit_verify_per_s`: the whole trail verified (hashes, links, columns, checkpoints).
//! - `notify_webhook_per_s`: alerts from `compliance.alerts` delivered to an HTTP receiver in this
//!   process with durable per-alert state. Peer: bare HTTP POSTs of the same bodies at the same
//!   concurrency, no state (`http_post_per_s`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventline_log::{EmbeddedLog, EventLog, ProduceRecord};
use eventline_model::topics::{
    AGENT_EXECUTIONS, Acks, COMPLIANCE_ALERTS, DB_CHANGES_CONVERSATIONS, DB_CHANGES_USERS, SECURITY_EVENTS,
};
use eventline_platform::db::Database;
use eventline_services::audit::record::describe;
use eventline_services::audit::store::CheckpointPolicy;
use eventline_services::audit::{AuditOptions, AuditService, AuditSigner, verify};
use eventline_services::notify::config::{ChannelConfig, ChannelType, RouteConfig};
use eventline_services::notify::{NotificationsConfig, NotifyService};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::bench_log::bar;
use crate::Exit;
use crate::cli::BenchServicesArgs;
use crate::config::Config;

const CONCURRENCY: usize = 64;

fn event(topic: &str, i: u64) -> Value {
    let ts = "2026-11-30T10:00:00.000Z";
    let meta = json!({"timestamp": ts, "message_id": format!("m-{i}"), "producer": "eventline"});
    match topic {
        DB_CHANGES_USERS => json!({"event_type": "UPDATE", "table": "Users",
            "data": {"UserId": format!("u-{}", i % 1000), "Email": "hmac-sha256:5e1f0b8a", "Name": "Jane Doe", "Phone": "hmac-sha256:77aa"},
            "before": {"Email": "hmac-sha256:0c2d"}, "timestamp": ts, "_metadata": meta}),
        DB_CHANGES_CONVERSATIONS => json!({"event_type": "UPDATE", "table": "conversations",
            "data": {"conversation_id": format!("conv-{}", i % 5000), "user_id": format!("u-{}", i % 1000), "doc": {"turns": 3}},
            "timestamp": ts, "_metadata": meta}),
        COMPLIANCE_ALERTS => alert(i),
        SECURITY_EVENTS => json!({"event_id": format!("s-{i}"), "event_type": "auth.failed", "outcome": "failure",
            "component": "gateway", "key_id": null, "method": "POST", "route": "/v1/query", "status": 401,
            "reason": "unknown API key", "source_address": "10.0.0.7", "timestamp": ts, "_metadata": meta}),
        _ => {
            json!({"execution_id": format!("exe-{i}"), "agent_id": "card_agent", "status": "completed", "duration_ms": 12,
            "input": {"query": "what is my card balance", "user_id": format!("u-{}", i % 1000), "conversation_id": format!("conv-{}", i % 5000), "key_id": "elk_1a2b3c4d"},
            "output": {"message": "Your debit card ending 8072 has a balance of $1,234.56.", "cards": [{"card_id": "crd_1", "card_number": "453201******8072", "status": "active"}]},
            "timestamp": ts, "_metadata": meta})
        }
    }
}

fn alert(i: u64) -> Value {
    let ts = "2026-11-30T10:00:00.000Z";
    json!({"alert_id": format!("bench-alert-{i}"), "alert_type": "PII_EXPOSURE", "severity": "HIGH",
        "details": {"component": "card_agent", "field": format!("/output/f{}", i % 50), "action": "REDACTED", "pii_type": "SSN"},
        "timestamp": ts, "_metadata": {"timestamp": ts, "message_id": format!("a-{i}"), "producer": "eventline"}})
}

async fn fill(log: &dyn EventLog, topic: &str, values: impl Iterator<Item = (String, Value)>) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(5000);
    for (key, v) in values {
        batch.push(ProduceRecord::new(Some(key), v.to_string()));
        if batch.len() == 5000 {
            log.produce(topic, std::mem::take(&mut batch), Acks::Leader).await?;
        }
    }
    if !batch.is_empty() {
        log.produce(topic, batch, Acks::All).await?;
    }
    Ok(())
}

pub async fn run(args: BenchServicesArgs, config: &Config) -> anyhow::Result<()> {
    if args.records == 0 || args.alerts == 0 {
        return Err(Exit::new(2, "--records and --alerts must be at least 1").into());
    }
    let dir = config.data_dir.join(format!("bench-services-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = bench(&args, config, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let figures = result?;
    if args.json {
        outln!("{}", serde_json::to_string(&figures)?);
    }
    Ok(())
}

async fn bench(args: &BenchServicesArgs, config: &Config, dir: &std::path::Path) -> anyhow::Result<Value> {
    let quiet = args.json;
    let say = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.join("log"), config.log.options())?);
    for spec in config.builtin_specs() {
        log.ensure_topic(&spec).await?;
        log.ensure_topic(&spec.dead_letter()).await?;
    }
    let topics = [DB_CHANGES_USERS, DB_CHANGES_CONVERSATIONS, AGENT_EXECUTIONS, AGENT_EXECUTIONS, SECURITY_EVENTS];
    let per = args.records / topics.len() as u64;
    let n = per * topics.len() as u64;
    let pb = bar(n, "preparing", quiet);
    for (t, topic) in topics.iter().enumerate() {
        let base = t as u64 * per;
        fill(&*log, topic, (base..base + per).map(|i| (format!("k{i}"), event(topic, i)))).await?;
        pb.inc(per);
    }
    pb.finish_and_clear();

    // The audit service, end to end.
    let db = Database::open(&dir.join("eventline.db"))?;
    let signer = AuditSigner::load_or_create(dir)?;
    let audit = AuditService::new(
        log.clone(),
        db.clone(),
        signer,
        AuditOptions { checkpoint: CheckpointPolicy::default(), retention: None, data_dir: dir.to_owned() },
    );
    let counters = audit.counters();
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn({
        let audit = audit.clone();
        async move { audit.run(stopped).await }
    });
    let pb = bar(n, "audit", quiet);
    while counters.appended.load(Ordering::Relaxed) < n {
        anyhow::ensure!(!task.is_finished(), "the audit service stopped early");
        pb.set_position(counters.appended.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let audit_secs = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    stop.send(true)?;
    task.await??;
    let audit_per_s = n as f64 / audit_secs;

    // Peer: the same rows, plain inserts, no chain.
    let rows: Vec<_> = {
        let mut out = Vec::with_capacity(n as usize);
        for p in 0..3 {
            for topic in [DB_CHANGES_USERS, DB_CHANGES_CONVERSATIONS, AGENT_EXECUTIONS, SECURITY_EVENTS] {
                let mut at = 0;
                loop {
                    let got = log.fetch(topic, p, at, 10_000).await?;
                    let Some(last) = got.last() else { break };
                    at = last.offset + 1;
                    out.extend(got.iter().map(describe));
                }
            }
        }
        out
    };
    let plain = Database::open(&dir.join("plain.db"))?;
    let started = Instant::now();
    plain
        .call(move |c| -> rusqlite::Result<()> {
            for chunk in rows.chunks(500) {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO audit_trail (seq, topic, partition, \"offset\", event_time, actor, subject, resource,
                                                  action, outcome, record, prev_hash, hash)
                         VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', '') ON CONFLICT DO NOTHING",
                    )?;
                    for e in chunk {
                        stmt.execute(rusqlite::params![
                            e.topic,
                            e.partition,
                            e.offset as i64,
                            e.event_time,
                            e.actor,
                            e.subject,
                            e.resource,
                            e.action,
                            e.outcome,
                            e.canonical
                        ])?;
                    }
                }
                tx.commit()?;
            }
            Ok(())
        })
        .await?;
    let plain_per_s = n as f64 / started.elapsed().as_secs_f64();
    say(format!(
        "audit append: {audit_per_s:.0} events/s through the service (target 20,000); plain SQLite inserts of the same rows: {plain_per_s:.0}/s; ratio {:.2}",
        audit_per_s / plain_per_s
    ));

    // Verify.
    let started = Instant::now();
    let key = eventline_services::audit::signing::public_key_of(dir)?;
    let d = dir.to_owned();
    let report = db.read(move |c| verify::verify(c, key.as_ref(), &d)).await??;
    let verify_per_s = report.records as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(report.ok && report.records == n, "the benchmark's trail does not verify: {report:?}");
    say(format!("audit verify: {verify_per_s:.0} records/s over {} records (target 200,000)", report.records));

    // Webhook.
    let (hook, received) = receiver().await?;
    fill(&*log, COMPLIANCE_ALERTS, (0..args.alerts).map(|i| (format!("bench-alert-{i}"), alert(i)))).await?;
    let cfg = NotificationsConfig {
        channels: vec![ChannelConfig {
            name: "bench".into(),
            kind: ChannelType::Webhook,
            url: Some(hook.clone()),
            secret: Some(eventline_services::notify::config::Secret("bench-secret".into())),
            secret_env: None,
            from: None,
            to: Vec::new(),
        }],
        routes: vec![RouteConfig {
            alert_types: vec!["*".into()],
            min_severity: eventline_model::events::Severity::Low,
            channels: vec!["bench".into()],
            coalesce: None,
        }],
        concurrency: CONCURRENCY,
        ..NotificationsConfig::default()
    };
    let notify = NotifyService::new(log.clone(), db.clone(), cfg.resolve(|_| None).map_err(anyhow::Error::msg)?)
        .map_err(anyhow::Error::msg)?;
    let delivered = notify.counters();
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(async move { notify.run(stopped).await });
    let pb = bar(args.alerts, "webhook", quiet);
    let count = || delivered.channels.get("bench").map_or(0, |c| c.delivered.load(Ordering::Relaxed));
    while count() < args.alerts {
        anyhow::ensure!(!task.is_finished(), "the notification service stopped early");
        pb.set_position(count());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let webhook_per_s = args.alerts as f64 / started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    stop.send(true)?;
    task.await??;

    // Peer: bare POSTs of the same bodies at the same concurrency.
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let bodies: Vec<String> = (0..args.alerts).map(|i| alert(i).to_string()).collect();
    let started = Instant::now();
    let sent = futures_util::stream::iter(bodies.into_iter().map(|b| {
        let (http, hook) = (http.clone(), hook.clone());
        async move { http.post(&hook).header("content-type", "application/json").body(b).send().await.is_ok() }
    }))
    .buffer_unordered(CONCURRENCY)
    .filter(|ok| std::future::ready(*ok))
    .count()
    .await;
    let post_per_s = sent as f64 / started.elapsed().as_secs_f64();
    say(format!(
        "webhook: {webhook_per_s:.0} alerts/s delivered with durable state (target 2,000); bare POSTs: {post_per_s:.0}/s; ratio {:.2}; receiver saw {}",
        webhook_per_s / post_per_s,
        received.load(Ordering::Relaxed)
    ));
    // The lake: every topic of this log into Parquet, from a fresh lake directory.
    let lake = eventline_services::lake::LakeService::new(
        log.clone(),
        dir.join("lake"),
        eventline_services::lake::Roll::default(),
        None,
    )
    .with_group("bench-lake");
    let total_in_log: u64 = {
        let mut total = 0;
        for t in lake.topics().await? {
            for p in log.describe_topic(&t).await?.partitions {
                total += p.end_offset - p.start_offset;
            }
        }
        total
    };
    let started = Instant::now();
    let written = lake.sync().await?;
    let lake_per_s = written as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(written == total_in_log, "the lake wrote {written} of {total_in_log} records");
    say(format!("lake: {lake_per_s:.0} events/s into Parquet (zstd) over {written} records (target 200,000)"));

    // Analytics: the aggregation over executions already read (4 passes, a fresh state each).
    let executions: Vec<eventline_log::Record> = (0..250_000u64)
        .map(|i| eventline_log::Record {
            topic: AGENT_EXECUTIONS.into(),
            partition: (i % 3) as u32,
            offset: i,
            timestamp: chrono::Utc::now().timestamp_millis(),
            key: None,
            value: Some(bytes::Bytes::from({
                let mut e = event(AGENT_EXECUTIONS, i);
                e["agent_id"] = json!(["card_agent", "loan_agent", "wealth_agent"][(i % 3) as usize]);
                e["duration_ms"] = json!(i % 2000);
                e["timestamp"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                e.to_string()
            })),
            headers: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    for _ in 0..4 {
        let mut agg = eventline_services::analytics::Aggregator::new(0);
        for r in &executions {
            eventline_services::analytics::service::observe(&mut agg, r).map_err(anyhow::Error::msg)?;
        }
        std::hint::black_box(
            agg.figures(eventline_services::analytics::Window::OneHour, chrono::Utc::now().timestamp_millis()),
        );
    }
    let analytics_per_s = 4.0 * executions.len() as f64 / started.elapsed().as_secs_f64();
    say(format!("analytics: {analytics_per_s:.0} executions/s aggregated (target 1,000,000)"));

    Ok(json!({
        "records": n,
        "lake_events_per_s": lake_per_s.round(),
        "analytics_events_per_s": analytics_per_s.round(),
        "alerts": args.alerts,
        "audit_append_per_s": audit_per_s.round(),
        "sqlite_insert_per_s": plain_per_s.round(),
        "audit_vs_sqlite_ratio": (audit_per_s / plain_per_s * 100.0).round() / 100.0,
        "audit_verify_per_s": verify_per_s.round(),
        "notify_webhook_per_s": webhook_per_s.round(),
        "http_post_per_s": post_per_s.round(),
        "webhook_vs_post_ratio": (webhook_per_s / post_per_s * 100.0).round() / 100.0,
    }))
}

/// An HTTP receiver on loopback answering 204; returns its URL and how many it got.
async fn receiver() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, count))
}
