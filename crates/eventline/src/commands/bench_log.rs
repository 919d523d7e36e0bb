//! `eventline bench log`: throughput, paced acks=all latency, memory and crash-recovery time of
//! the log, on records of `--record-bytes` with keys over `--keys` users.
//!
//! Latency is measured from each record's *intended* send time on a fixed schedule, not from
//! when it was actually sent, so a stall shows up in every record it delayed (no coordinated
//! omission).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, ProduceRecord};
use eventline_model::topics::{Acks, TopicSpec};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde_json::json;

use crate::Exit;
use crate::cli::BenchLogArgs;
use crate::config::{Backend, Config};

const TOPIC: &str = "bench.log";
const LATENCY_TOPIC: &str = "bench.latency";

struct Workload {
    keys: Vec<Bytes>,
    values: Vec<Bytes>,
}

impl Workload {
    fn new(keys: u32, record_bytes: usize) -> Self {
        let keys = (0..keys).map(|i| Bytes::from(format!("user-{i:06}"))).collect();
        let values = (0..64)
            .map(|i| {
                let head = format!("{{\"execution_id\":\"exec-{i:08}\",\"agent_id\":\"card_agent\",\"pad\":\"");
                let tail = "\"}";
                let pad = record_bytes.saturating_sub(head.len() + tail.len());
                Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)))
            })
            .collect();
        Self { keys, values }
    }

    fn record(&self, rng: &mut impl Rng) -> ProduceRecord {
        let key = self.keys[rng.random_range(0..self.keys.len())].clone();
        let value = self.values[rng.random_range(0..self.values.len())].clone();
        ProduceRecord { key: Some(key), value: Some(value), ..Default::default() }
    }
}

pub(crate) fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40.cyan/blue}] {human_pos}/{human_len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The paced acks=all phase: `total` single-record produce calls on a fixed schedule of `rate` per
/// second from `origin`, each on its own task. Returns, per record, the latency from its intended
/// send time (so a stall counts against every record it delayed) and from its actual send, in ms.
async fn paced_acks_all(
    log: Arc<dyn EventLog>,
    topic: String,
    total: u64,
    rate: u32,
    origin: Instant,
    quiet: bool,
    make: impl Fn(&mut rand::rngs::ThreadRng, Instant) -> ProduceRecord + Send + 'static,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let pb = bar(total, "acks=all", quiet);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<(f64, f64), String>>();
    let handle = tokio::runtime::Handle::current();
    let topic: Arc<str> = topic.into();
    let pacer = std::thread::spawn(move || {
        let _runtime = handle.enter();
        // Wake at the scheduled time, not up to the default 50 µs after it (best effort).
        let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
        let mut rng = rand::rng();
        for i in 0..total {
            let intended = origin + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let record = make(&mut rng, intended);
            let (log, tx, topic) = (log.clone(), tx.clone(), topic.clone());
            let sent = Instant::now();
            let report = move |r: Result<_, eventline_log::LogError>| {
                let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
                let _ = tx.send(r.map(|_| (ms(intended), ms(sent))).map_err(|e| e.to_string()));
            };
            // The produce call runs here, on schedule, up to where it waits for the
            // acknowledgement; a runtime task waits for the rest. Spawning it whole would add the
            // task's start-up lag — the load generator's, not the log's — to every record.
            let mut produce = Box::pin(async move { log.produce(&topic, vec![record], Acks::All).await });
            match produce.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
                std::task::Poll::Ready(r) => report(r),
                std::task::Poll::Pending => {
                    handle.spawn(async move { report(produce.await) });
                }
            }
        }
    });
    let mut lat = Vec::with_capacity(total as usize);
    let mut service = Vec::with_capacity(total as usize);
    while (lat.len() as u64) < total {
        match rx.recv().await {
            Some(Ok((ms, svc))) => {
                lat.push(ms);
                service.push(svc);
            }
            Some(Err(e)) => anyhow::bail!("acks=all produce failed: {e}"),
            None => break,
        }
        if lat.len() % 1000 == 0 {
            pb.set_position(lat.len() as u64);
        }
    }
    pacer.join().map_err(|_| anyhow::anyhow!("pacer thread panicked"))?;
    pb.finish_and_clear();
    Ok((lat, service))
}

/// The paced acks=all phase's latency figures (ms), from each record's intended send time, and
/// p99 from its actual send.
struct AcksAllFigures {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    service_p99: f64,
}

impl AcksAllFigures {
    /// Sorts the samples, prints the figures and keeps them.
    fn summarise(
        lat: &mut [f64],
        service: &mut [f64],
        rate: u32,
        latency_for: Duration,
        say: &impl Fn(String),
    ) -> Self {
        lat.sort_by(f64::total_cmp);
        service.sort_by(f64::total_cmp);
        let f = Self {
            p50: percentile(lat, 0.5),
            p99: percentile(lat, 0.99),
            p999: percentile(lat, 0.999),
            max: lat.last().copied().unwrap_or(0.0),
            service_p99: percentile(service, 0.99),
        };
        say(format!(
            "acks=all at {rate} msg/s for {}: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms ({} records)",
            humantime::format_duration(latency_for),
            f.p50,
            f.p99,
            f.p999,
            f.max,
            lat.len()
        ));
        say(format!("  (from the actual send, excluding load-generator lag: p99 {:.3} ms)", f.service_p99));
        f
    }

    /// The `acks_all_*` keys of `--json`.
    fn json(&self, rate: u32) -> serde_json::Map<String, serde_json::Value> {
        let ms = |x: f64| json!((x * 1000.0).round() / 1000.0);
        [
            ("acks_all_rate", json!(rate)),
            ("acks_all_p50_ms", ms(self.p50)),
            ("acks_all_p99_ms", ms(self.p99)),
            ("acks_all_p999_ms", ms(self.p999)),
            ("acks_all_max_ms", ms(self.max)),
            ("acks_all_service_p99_ms", ms(self.service_p99)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// The consume phase's msg/s and MB/s, after checking that every produced record was read.
fn consume_figures(
    read: u64,
    sent: u64,
    bytes: u64,
    started: Instant,
    say: &impl Fn(String),
) -> anyhow::Result<(f64, f64)> {
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(read == sent, "consumed {read} records but produced {sent}");
    let (rate, mb) = (read as f64 / secs, bytes as f64 / secs / 1e6);
    say(format!("consume: {read} records in {secs:.2} s = {rate:.0} msg/s, {mb:.1} MB/s"));
    Ok((rate, mb))
}

pub async fn run(args: BenchLogArgs, config: &Config) -> anyhow::Result<()> {
    let latency_for = humantime::parse_duration(&args.latency_duration)
        .map_err(|e| Exit::new(2, format!("--latency-duration `{}`: {e}", args.latency_duration)))?;
    if args.records == 0 || args.batch == 0 || args.partitions == 0 || args.keys == 0 || args.rate == 0 {
        return Err(Exit::new(2, "--records, --batch, --partitions, --keys and --rate must be positive").into());
    }
    let quiet = args.json;
    if config.backend == Backend::Kafka {
        // The brokers own storage and recovery: no data directory, no SIGKILL-reopen phase.
        let figures = kafka::measure(&args, config, latency_for, quiet).await?;
        if args.json {
            outln!("{}", serde_json::to_string(&figures)?);
        }
        return Ok(());
    }
    let owned_dir = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| config.data_dir.join(format!("bench-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let result = measure(&args, config, &dir, latency_for, quiet).await;
    if owned_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let figures = result?;
    if args.json {
        outln!("{}", serde_json::to_string(&figures)?);
    }
    Ok(())
}

async fn measure(
    args: &BenchLogArgs,
    config: &Config,
    dir: &Path,
    latency_for: Duration,
    quiet: bool,
) -> anyhow::Result<serde_json::Value> {
    let log_dir = dir.join("log");
    let opts = config.log.options();
    let log = Arc::new(EmbeddedLog::open(&log_dir, opts.clone())?);
    let mut spec = TopicSpec::new(TOPIC);
    spec.partitions = args.partitions;
    spec.retention = None;
    log.create_topic(&spec).await?;
    let work = Arc::new(Workload::new(args.keys, args.record_bytes));
    let mut rng = rand::rng();
    let say = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };

    // 1. Produce throughput: one producer, batches of --batch, acks=1.
    let pb = bar(args.records, "produce", quiet);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut bytes = 0u64;
    while sent < args.records {
        let n = (args.records - sent).min(args.batch as u64) as usize;
        let batch: Vec<ProduceRecord> = (0..n).map(|_| work.record(&mut rng)).collect();
        bytes += batch.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum::<u64>();
        log.produce(TOPIC, batch, Acks::Leader).await?;
        sent += n as u64;
        pb.set_position(sent);
    }
    let produce_s = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let produce_rate = sent as f64 / produce_s;
    let produce_mb = bytes as f64 / produce_s / 1e6;
    say(format!(
        "produce: {sent} records in {produce_s:.2} s = {produce_rate:.0} msg/s, {produce_mb:.1} MB/s (acks=1, batch {})",
        args.batch
    ));

    // 2. Consume throughput: read every partition from the start.
    let pb = bar(sent, "consume", quiet);
    let started = Instant::now();
    let mut read = 0u64;
    let mut read_bytes = 0u64;
    for p in 0..args.partitions {
        let (_, end) = log.watermarks(TOPIC, p).await?;
        let mut at = 0;
        while at < end {
            let records = log.fetch(TOPIC, p, at, 10_000).await?;
            let Some(last) = records.last() else { break };
            at = last.offset + 1;
            read += records.len() as u64;
            read_bytes += records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum::<u64>();
            pb.set_position(read);
        }
    }
    pb.finish_and_clear();
    let (consume_rate, consume_mb) = consume_figures(read, sent, read_bytes, started, &say)?;

    // 3. acks=all latency at a paced rate, measured from the intended send time. First make the
    // throughput phases' gigabytes durable, so this phase measures acks=all on its own rather than
    // the kernel writing back earlier acks=1 data; it uses a topic of its own.
    log.sync_all()?;
    let mut latency_spec = TopicSpec::new(LATENCY_TOPIC);
    latency_spec.partitions = args.partitions;
    latency_spec.retention = None;
    log.create_topic(&latency_spec).await?;
    let total = (latency_for.as_secs_f64() * args.rate as f64) as u64;
    let latency_log: Arc<dyn EventLog> = log.clone();
    let (mut lat, mut service) = {
        let work = work.clone();
        paced_acks_all(latency_log, LATENCY_TOPIC.to_owned(), total, args.rate, Instant::now(), quiet, move |rng, _| {
            work.record(rng)
        })
        .await?
    };
    let acks_all = AcksAllFigures::summarise(&mut lat, &mut service, args.rate, latency_for, &say);
    let rss = peak_rss_mb();
    say(format!("peak RSS: {rss:.1} MB"));

    // 4. Recovery: a producer process is killed with SIGKILL while appending; time the reopen.
    let sizes: Vec<u64> = log.describe_topic(TOPIC).await?.partitions.iter().filter_map(|p| p.size_bytes).collect();
    log.close()?;
    drop(log);
    let reopen_ms = reopen_after_kill(dir, &work, opts)?;
    let largest_gb = sizes.iter().copied().max().unwrap_or(0) as f64 / 1e9;
    say(format!("reopen after SIGKILL: {reopen_ms:.0} ms ({} partitions, largest {largest_gb:.2} GB)", sizes.len()));

    let mut figures = json!({
        "backend": "embedded",
        "records": sent,
        "record_bytes": args.record_bytes,
        "partitions": args.partitions,
        "batch": args.batch,
        "produce_msgs_per_s": produce_rate.round(),
        "produce_mb_per_s": (produce_mb * 10.0).round() / 10.0,
        "consume_msgs_per_s": consume_rate.round(),
        "consume_mb_per_s": (consume_mb * 10.0).round() / 10.0,
        "peak_rss_mb": (rss * 10.0).round() / 10.0,
        "reopen_after_kill_ms": reopen_ms.round(),
        "largest_partition_gb": (largest_gb * 100.0).round() / 100.0,
    });
    figures.as_object_mut().expect("an object").extend(acks_all.json(args.rate));
    Ok(figures)
}

/// Runs `eventline produce` on the benchmark's data directory, kills it with SIGKILL while it
/// appends, and times opening the log again (which recovers every partition).
fn reopen_after_kill(dir: &Path, work: &Workload, opts: EmbeddedOptions) -> anyhow::Result<f64> {
    let exe: PathBuf = std::env::current_exe().context("locate the eventline binary")?;
    let mut child = Command::new(exe)
        .arg("--data-dir")
        .arg(dir)
        .args(["-q", "produce", TOPIC, "--acks", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start the producer process")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let lines: Vec<u8> = work.values.iter().flat_map(|v| v.iter().copied().chain([b'\n'])).collect();
    let writer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if stdin.write_all(&lines).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1000));
    child.kill().context("SIGKILL the producer")?;
    let _ = child.wait();
    let _ = writer.join();
    let started = Instant::now();
    let log = EmbeddedLog::open(dir.join("log"), opts)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    drop(log);
    Ok(ms)
}

/// `bench log --backend kafka`: the same phases on a Kafka cluster, plus a bare rdkafka producer
/// with the same settings on the same records and batches (`reference_produce_msgs_per_s`) and
/// the produce→consume latency of a consumer group at the paced rate. The SIGKILL-reopen phase
/// is skipped: the brokers, not eventline, own durability and recovery.
mod kafka {
    use std::collections::VecDeque;

    use eventline_kafka::KafkaLog;
    use eventline_kafka::reference::ReferenceProducer;
    use eventline_log::{OffsetReset, RecordPosition};
    use eventline_model::topics::Compression;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// Produce calls (batches) kept in flight in the throughput phase, by both producers.
    const IN_FLIGHT: usize = 8;
    type ProduceCall<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = eventline_log::Result<Vec<RecordPosition>>> + Send + 'a>>;

    /// Turns each producer takes in the throughput phase.
    const ROUNDS: u64 = 20;
    /// Header carrying a record's intended send time, nanoseconds since the phase's origin.
    const SENT_AT: &str = "bench-sent-at-ns";

    /// The workload's batches, reproducible from `seed`, so both producers send the same records.
    fn batches(
        work: &Workload,
        records: u64,
        batch: usize,
        seed: u64,
    ) -> impl Iterator<Item = Vec<ProduceRecord>> + '_ {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut left = records;
        std::iter::from_fn(move || {
            let n = left.min(batch as u64) as usize;
            left -= n as u64;
            (n > 0).then(|| (0..n).map(|_| work.record(&mut rng)).collect())
        })
    }

    fn as_pairs(batch: Vec<ProduceRecord>) -> Vec<(Bytes, Bytes)> {
        batch.into_iter().map(|r| (r.key.unwrap_or_default(), r.value.unwrap_or_default())).collect()
    }

    fn round(x: f64, places: i32) -> f64 {
        let f = 10f64.powi(places);
        (x * f).round() / f
    }

    pub async fn measure(
        args: &BenchLogArgs,
        config: &Config,
        latency_for: Duration,
        quiet: bool,
    ) -> anyhow::Result<serde_json::Value> {
        let opts = crate::backend::kafka_options(config)?;
        let log = Arc::new(
            KafkaLog::connect(opts.clone())
                .await
                .with_context(|| format!("cannot reach Kafka at {}", config.kafka.brokers))?,
        );
        let run = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let (topic, ref_topic, lat_topic) =
            (format!("{TOPIC}.{run}"), format!("{TOPIC}.reference.{run}"), format!("{LATENCY_TOPIC}.{run}"));
        for t in [&topic, &ref_topic, &lat_topic] {
            let mut spec = TopicSpec::new(t.as_str());
            spec.partitions = args.partitions;
            spec.retention = None;
            log.create_topic(&spec).await?;
        }
        let result = phases(args, &log, &opts, [&topic, &ref_topic, &lat_topic], latency_for, quiet).await;
        for t in [&topic, &ref_topic, &lat_topic] {
            let _ = log.delete_topic(t).await;
        }
        let mut figures = result?;
        figures["brokers"] = json!(config.kafka.brokers);
        Ok(figures)
    }

    async fn phases(
        args: &BenchLogArgs,
        log: &Arc<KafkaLog>,
        opts: &eventline_kafka::KafkaOptions,
        [topic, ref_topic, lat_topic]: [&String; 3],
        latency_for: Duration,
        quiet: bool,
    ) -> anyhow::Result<serde_json::Value> {
        let work = Arc::new(Workload::new(args.keys, args.record_bytes));
        let seed = rand::random::<u64>();
        let say = |line: String| {
            if !quiet {
                eprintln!("{line}");
            }
        };

        // 1. Produce throughput, eventline against a bare rdkafka producer with the same settings
        // on the same records and batches: --records split into ROUNDS, the two taking turns
        // (ABBA) so both meet the broker in the same state. Batches of --batch, acks=1,
        // IN_FLIGHT produce calls (batches) at once. Both producers exist before the clock starts.
        let reference = ReferenceProducer::new(opts, Acks::Leader, Compression::None)?;
        let mut per_partition = vec![0u64; args.partitions as usize];
        let mut tally = |positions: Vec<RecordPosition>| {
            for p in positions {
                per_partition[p.partition as usize] += 1;
            }
        };
        let warm_up = || vec![work.record(&mut rand::rng())];
        tally(log.produce(topic, warm_up(), Acks::Leader).await?);
        reference.produce_batches(ref_topic, std::iter::once(warm_up()).map(as_pairs), 1).await?;
        let pb = bar(args.records * 2, "produce", quiet);
        let (mut sent, mut bytes, mut ref_sent) = (0u64, 0u64, 0u64);
        let (mut produce_s, mut ref_s) = (0f64, 0f64);
        // Per round: eventline's time and the reference's time for the same records.
        let mut round_times = vec![(0f64, 0f64); ROUNDS as usize];
        for round in 0..ROUNDS {
            let records = args.records / ROUNDS + u64::from(round < args.records % ROUNDS);
            let seed = seed.wrapping_add(round);
            for eventline_turn in if round % 2 == 0 { [true, false] } else { [false, true] } {
                let started = Instant::now();
                if eventline_turn {
                    // Each call is polled once right away, which hands its records to librdkafka,
                    // then awaited later: in-flight calls on this task, as the reference does.
                    let mut window = VecDeque::new();
                    for batch in batches(&work, records, args.batch, seed) {
                        if window.len() >= IN_FLIGHT {
                            let call: ProduceCall<'_> = window.pop_front().expect("non-empty window");
                            tally(call.await?);
                        }
                        sent += batch.len() as u64;
                        bytes += batch.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum::<u64>();
                        let mut call: ProduceCall<'_> = Box::pin(log.produce(topic, batch, Acks::Leader));
                        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
                        match first {
                            std::task::Poll::Ready(positions) => tally(positions?),
                            std::task::Poll::Pending => window.push_back(call),
                        }
                        pb.set_position(sent + ref_sent);
                    }
                    for call in window {
                        tally(call.await?);
                    }
                    let took = started.elapsed().as_secs_f64();
                    produce_s += took;
                    round_times[round as usize].0 = took;
                    say(format!("  round {round}: eventline {:.0} msg/s", records as f64 / took));
                } else {
                    let batches = batches(&work, records, args.batch, seed).map(as_pairs);
                    ref_sent += reference.produce_batches(ref_topic, batches, IN_FLIGHT).await?;
                    let took = started.elapsed().as_secs_f64();
                    ref_s += took;
                    round_times[round as usize].1 = took;
                    say(format!("  round {round}: reference {:.0} msg/s", records as f64 / took));
                    pb.set_position(sent + ref_sent);
                }
            }
        }
        pb.finish_and_clear();
        drop(reference);
        let produce_rate = sent as f64 / produce_s;
        let produce_mb = bytes as f64 / produce_s / 1e6;
        say(format!(
            "produce: {sent} records in {produce_s:.2} s = {produce_rate:.0} msg/s, {produce_mb:.1} MB/s (acks=1, batch {}, {IN_FLIGHT} in flight)",
            args.batch
        ));
        let ref_rate = ref_sent as f64 / ref_s;
        let total_ratio = produce_rate / ref_rate;
        // The ratio is the median over rounds of eventline's rate over the reference's rate in
        // the same round: the two runs of a round are back to back, so they share whatever else
        // the machine is doing, and the median ignores rounds that a burst of it hit.
        let mut ratios: Vec<f64> = round_times.iter().map(|(ours, theirs)| theirs / ours).collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = percentile(&ratios, 0.5);
        say(format!(
            "reference (bare rdkafka, same settings, same records): {ref_rate:.0} msg/s; eventline/reference: \
             median of {ROUNDS} rounds {ratio:.3} (range {:.3}..{:.3}), of the totals {total_ratio:.3}",
            ratios[0],
            ratios[ratios.len() - 1]
        ));
        let sent = sent + 1; // the warm-up record is read back too

        // 2. Consume throughput: read every partition from the start (up to what was produced:
        // a broker's high watermark may lag, see the crate docs of eventline-kafka).
        let pb = bar(sent, "consume", quiet);
        let started = Instant::now();
        let (mut read, mut read_bytes) = (0u64, 0u64);
        for (p, &want) in per_partition.iter().enumerate() {
            let (mut at, mut got, mut empty) = (0u64, 0u64, 0);
            while got < want {
                let records = log.fetch(topic, p as u32, at, 10_000).await?;
                let Some(last) = records.last() else {
                    empty += 1;
                    if empty > 10 {
                        anyhow::bail!("partition {p}: read {got} of {want} records, then nothing more");
                    }
                    continue;
                };
                at = last.offset + 1;
                got += records.len() as u64;
                read_bytes += records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum::<u64>();
                pb.set_position(read + got);
            }
            read += got;
        }
        pb.finish_and_clear();
        let (consume_rate, consume_mb) = consume_figures(read, sent, read_bytes, started, &say)?;

        // 3. acks=all at the paced rate, from each record's intended send time, with a consumer
        // group member reading the same topic: produce→consume latency on the same records.
        let total = (latency_for.as_secs_f64() * args.rate as f64) as u64;
        let group = format!("bench-{}", lat_topic.replace('.', "-"));
        let mut member = log.subscribe(&group, std::slice::from_ref(lat_topic), OffsetReset::Earliest).await?;
        // One record first, unmeasured: it creates the idempotent acks=all producer (a producer
        // id from the cluster), which is set-up cost, not latency.
        log.produce(lat_topic, vec![work.record(&mut rand::rng())], Acks::All).await?;
        let origin = Instant::now();
        let reader = tokio::spawn(async move {
            let mut e2e = Vec::with_capacity(total as usize);
            let deadline = Instant::now() + latency_for + Duration::from_secs(30);
            let mut committed = Instant::now();
            while (e2e.len() as u64) < total && Instant::now() < deadline {
                for r in member.poll(10_000, Duration::from_millis(100)).await? {
                    // The warm-up record has no send time.
                    let Some(at_ns) = r.header(SENT_AT).and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    let now_ns = origin.elapsed().as_nanos() as u64;
                    e2e.push(now_ns.saturating_sub(at_ns) as f64 / 1e6);
                }
                if committed.elapsed() >= Duration::from_secs(1) {
                    member.commit().await?;
                    committed = Instant::now();
                }
            }
            member.commit().await?;
            member.close().await?;
            anyhow::Ok(e2e)
        });
        let (mut lat, mut service) = {
            let work = work.clone();
            paced_acks_all(log.clone(), lat_topic.clone(), total, args.rate, origin, quiet, move |rng, intended| {
                work.record(rng).with_header(SENT_AT, (intended - origin).as_nanos().to_string())
            })
            .await?
        };
        let mut e2e = reader.await??;
        if (e2e.len() as u64) < total {
            anyhow::bail!("the consumer group read {} of {total} records of the latency phase", e2e.len());
        }
        let acks_all = AcksAllFigures::summarise(&mut lat, &mut service, args.rate, latency_for, &say);
        e2e.sort_by(f64::total_cmp);
        let (e2e_p50, e2e_p99, e2e_max) =
            (percentile(&e2e, 0.5), percentile(&e2e, 0.99), e2e.last().copied().unwrap_or(0.0));
        say(format!("produce→consume (group member): p50 {e2e_p50:.3} ms, p99 {e2e_p99:.3} ms, max {e2e_max:.3} ms"));
        let rss = peak_rss_mb();
        say(format!("peak RSS: {rss:.1} MB"));
        say("reopen after SIGKILL: skipped for kafka (the brokers own durability and recovery)".into());

        let mut figures = json!({
            "backend": "kafka",
            "records": sent,
            "record_bytes": args.record_bytes,
            "partitions": args.partitions,
            "batch": args.batch,
            "produce_msgs_per_s": produce_rate.round(),
            "produce_mb_per_s": round(produce_mb, 1),
            "consume_msgs_per_s": consume_rate.round(),
            "consume_mb_per_s": round(consume_mb, 1),
            "peak_rss_mb": round(rss, 1),
            "reopen_after_kill_ms": null,
            "largest_partition_gb": null,
            "reopen_after_kill_skipped": "kafka: the brokers own durability and recovery",
            "produce_batches_in_flight": IN_FLIGHT,
            "reference_produce_msgs_per_s": ref_rate.round(),
            "produce_vs_reference": round(ratio, 3),
            "produce_vs_reference_total": round(total_ratio, 3),
            "produce_rounds": ROUNDS,
            "produce_consume_rate": args.rate,
            "produce_consume_p50_ms": round(e2e_p50, 3),
            "produce_consume_p99_ms": round(e2e_p99, 3),
            "produce_consume_max_ms": round(e2e_max, 3),
        });
        figures.as_object_mut().expect("an object").extend(acks_all.json(args.rate));
        Ok(figures)
    }
}
