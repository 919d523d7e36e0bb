//! `eventline demo`: realistic mixed traffic through the HTTP API, paced at `--rate` requests per
//! second for `--duration`, then a summary. Everything goes through the public endpoints with the
//! roles a bank would use: an `agent` key for queries and profiles, an `ingest` key for the
//! integrations (both made with the admin key at start).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::Exit;
use crate::cli::DemoArgs;
use crate::config::Config;

const USERS: [&str; 5] = ["u-1001", "u-1002", "u-1003", "u-1004", "u-1005"];
const QUESTIONS: [&str; 12] = [
    "what is my card balance",
    "show my last 5 transactions",
    "freeze my debit card",
    "unfreeze my debit card",
    "how much do I owe on my loan",
    "show the amortization schedule of my loan",
    "can I borrow $25,000 over 5 years",
    "what are the current loan rates",
    "how is my portfolio doing",
    "how are my stocks doing",
    "what is my credit card balance",
    "how are my investments allocated",
];
/// Questions that carry PII (masked by the gate, raising compliance alerts).
const PII_QUESTIONS: [&str; 4] = [
    "my SSN is 219-09-9999, what is my card balance",
    "email me at jane.doe@example.com the last transactions",
    "call me on +1 212 555 0147 about my loan",
    "my card 4111 1111 1111 1111 was charged twice, what is my balance",
];
const SYMBOLS: [(&str, f64); 5] = [("AAPL", 230.0), ("MSFT", 420.0), ("NVDA", 130.0), ("VTI", 290.0), ("BND", 72.0)];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Query,
    ProfileCreate,
    ProfileUpdate,
    CrmEvent,
    MarketTick,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Query => "agent query",
            Kind::ProfileCreate => "profile create",
            Kind::ProfileUpdate => "profile update",
            Kind::CrmEvent => "CRM event",
            Kind::MarketTick => "market tick",
        }
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: BTreeMap<u16, u64>,
    latencies_ms: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

async fn new_key(http: &reqwest::Client, url: &str, admin: &str, role: &str) -> anyhow::Result<String> {
    let r = http
        .post(format!("{url}/v1/keys"))
        .bearer_auth(admin)
        .json(&json!({"role": role}))
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {url}"))?;
    if !r.status().is_success() {
        return Err(Exit::new(
            1,
            format!("the gateway refused to make a {role} key ({}): the demo needs an admin key (--key)", r.status()),
        )
        .into());
    }
    let v: Value = r.json().await?;
    v["key"].as_str().map(str::to_owned).context("POST /v1/keys answered without a key")
}

async fn topic_ends(http: &reqwest::Client, url: &str, key: &str) -> BTreeMap<String, u64> {
    let Ok(r) = http.get(format!("{url}/v1/topics")).bearer_auth(key).send().await else { return BTreeMap::new() };
    let Ok(v) = r.json::<Value>().await else { return BTreeMap::new() };
    v["topics"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    let name = t["spec"]["name"].as_str()?.to_owned();
                    let end = t["partitions"].as_array()?.iter().filter_map(|p| p["end_offset"].as_u64()).sum();
                    Some((name, end))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn run(args: DemoArgs, config: &Config) -> anyhow::Result<()> {
    let duration = humantime::parse_duration(&args.duration)
        .map_err(|e| Exit::new(2, format!("--duration `{}`: {e}; write e.g. 30s or 5m", args.duration)))?;
    if args.rate == 0 || args.rate > 10_000 {
        return Err(Exit::new(2, "--rate must be between 1 and 10000 requests per second").into());
    }
    let (url, admin) = crate::remote::locate(config, args.url.as_deref(), args.key.as_deref())?;
    let http = crate::remote::http_client(config, Some(Duration::from_secs(30)))?;
    let agent = new_key(&http, &url, &admin, "agent").await?;
    let ingest = new_key(&http, &url, &admin, "ingest").await?;
    let before = topic_ends(&http, &url, &admin).await;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let total = (f64::from(args.rate) * duration.as_secs_f64()).ceil() as u64;
    let tallies: Arc<Mutex<BTreeMap<Kind, Tally>>> = Arc::default();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40.cyan/blue}] {pos}/{len} requests, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("demo");
    eprintln!("eventline demo: {total} requests to {url} at {}/s (seed {seed})", args.rate);
    let gap = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut prices: Vec<f64> = SYMBOLS.iter().map(|(_, p)| *p).collect();
    let mut tasks = Vec::new();
    for i in 0..total {
        let due = started + gap.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let roll: f64 = rng.random();
        let (kind, req) = if roll < 0.5 {
            let user = USERS[rng.random_range(0..USERS.len())];
            let q = if rng.random_bool(0.15) {
                PII_QUESTIONS[rng.random_range(0..PII_QUESTIONS.len())]
            } else {
                QUESTIONS[rng.random_range(0..QUESTIONS.len())]
            };
            (
                Kind::Query,
                http.post(format!("{url}/v1/query")).bearer_auth(&agent).json(&json!({"user_id": user, "query": q})),
            )
        } else if roll < 0.57 {
            let id = format!("demo-{seed:x}-{i}");
            let body = json!({"Email": format!("{id}@example.com"), "Name": format!("Demo Customer {i}"), "Phone": "+1 212 555 0100"});
            (Kind::ProfileCreate, http.put(format!("{url}/v1/users/{id}")).bearer_auth(&agent).json(&body))
        } else if roll < 0.65 {
            let user = USERS[rng.random_range(0..USERS.len())];
            let body = json!({"Email": format!("{user}.{}@example.com", rng.random_range(0..1000)), "Name": format!("Customer {user}")});
            (Kind::ProfileUpdate, http.put(format!("{url}/v1/users/{user}")).bearer_auth(&agent).json(&body))
        } else if roll < 0.8 {
            let note = if rng.random_bool(0.3) {
                "customer asked to call back on +1 212 555 0147"
            } else {
                "follow-up on card dispute"
            };
            let body = json!({"event_id": format!("crm-{seed:x}-{i}"), "source": "salesforce", "entity_type": "case",
                "entity_id": format!("case-{}", rng.random_range(0..200)), "action": "updated", "attributes": {"note": note, "priority": "normal"}});
            (Kind::CrmEvent, http.post(format!("{url}/v1/integrations/crm/events")).bearer_auth(&ingest).json(&body))
        } else {
            let s = rng.random_range(0..SYMBOLS.len());
            prices[s] = (prices[s] * (1.0 + rng.random_range(-0.004..0.004))).max(0.01);
            let body = json!({"symbol": SYMBOLS[s].0, "price": (prices[s] * 100.0).round() / 100.0, "currency": "USD", "exchange": "XNAS"});
            (Kind::MarketTick, http.post(format!("{url}/v1/integrations/market-data")).bearer_auth(&ingest).json(&body))
        };
        let permit = limit.clone().acquire_owned().await?;
        let (tallies, bar) = (tallies.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let status = match req.send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let mut all = tallies.lock().unwrap_or_else(|p| p.into_inner());
            let tally = all.entry(kind).or_default();
            tally.latencies_ms.push(ms);
            if (200..300).contains(&status) {
                tally.ok += 1;
            } else {
                *tally.errors.entry(status).or_default() += 1;
            }
            drop(permit);
            bar.inc(1);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    // Let capture and the relays catch up before counting events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = topic_ends(&http, &url, &admin).await;

    let tallies = tallies.lock().unwrap_or_else(|p| p.into_inner());
    outln!("eventline demo: {total} requests in {:.1} s (seed {seed})", elapsed.as_secs_f64());
    outln!();
    outln!("{:<16} {:>8} {:>8} {:>10} {:>10}  errors", "kind", "requests", "ok", "p50 ms", "p99 ms");
    let mut all_latencies = Vec::new();
    let mut error_total = 0;
    for (kind, t) in tallies.iter() {
        let mut l = t.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        all_latencies.extend_from_slice(&l);
        let errors: Vec<String> = t
            .errors
            .iter()
            .map(|(s, n)| if *s == 0 { format!("{n} unreachable") } else { format!("{n} × {s}") })
            .collect();
        error_total += t.errors.values().sum::<u64>();
        outln!(
            "{:<16} {:>8} {:>8} {:>10.1} {:>10.1}  {}",
            kind.name(),
            l.len(),
            t.ok,
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            if errors.is_empty() { "-".to_owned() } else { errors.join(", ") }
        );
    }
    all_latencies.sort_by(f64::total_cmp);
    outln!(
        "{:<16} {:>8} {:>8} {:>10.1} {:>10.1}  {error_total}",
        "all",
        all_latencies.len(),
        all_latencies.len() as u64 - error_total,
        percentile(&all_latencies, 0.5),
        percentile(&all_latencies, 0.99)
    );
    outln!();
    outln!("{:<30} {:>8}", "events appended", "count");
    for (topic, end) in &after {
        let n = end.saturating_sub(before.get(topic).copied().unwrap_or(0));
        if n > 0 {
            outln!("{topic:<30} {n:>8}");
        }
    }
    Ok(())
}
