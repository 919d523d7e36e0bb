//! `eventline consume`: a topic's events as JSON lines, each the event's own JSON.
//!
//! Without `--group` every partition is read from the chosen start and the partitions are merged
//! by record timestamp. With `--group` the command is a member of that consumer group: it starts
//! at the group's committed offsets and commits after each batch it has printed.
//!
//! While `eventline up` holds the data directory, records come from its gateway
//! (`GET /v1/topics/{topic}/records`, then `…/stream` for `--follow`) and are printed the same
//! way; `--group` is refused there (consumer groups need the log itself).

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use eventline_log::{EventLog, OffsetReset, Record};
use eventline_model::Timestamp;

use crate::Exit;
use crate::cli::ConsumeArgs;
use crate::config::Config;
use crate::remote::{self, Remote};

const CHUNK: usize = 2000;

pub async fn run(args: ConsumeArgs, config: &Config) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let access = remote::open(config).await?;
    let d = access.log.describe_topic(&args.topic).await?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p < d.spec.partitions => vec![p],
        Some(p) => {
            return Err(Exit::new(
                2,
                format!("--partition {p}: `{}` has partitions 0..{}", args.topic, d.spec.partitions),
            )
            .into());
        }
        None => (0..d.spec.partitions).collect(),
    };
    match &args.group {
        Some(group) => by_group(&*access.log, &args, group, since).await,
        None => by_partition(&*access.log, access.up.as_deref(), &args, &partitions, since).await,
    }
}

fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t.unix_millis());
    }
    match humantime::parse_duration(text) {
        Ok(age) => Ok(Timestamp::now().unix_millis() - age.as_millis() as i64),
        Err(_) => Err(Exit::new(
            2,
            format!("--since `{text}`: give an RFC 3339 time (2026-11-27T10:00:00Z) or an age (15m, 2h, 1day)"),
        )
        .into()),
    }
}

fn print(out: &mut impl Write, r: &Record) -> std::io::Result<()> {
    match &r.value {
        Some(v) => out.write_all(v)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b"\n")
}

struct Cursor {
    partition: u32,
    next: u64,
    buffer: VecDeque<Record>,
}

/// Reads every partition from the chosen start and merges them by timestamp; with `--follow`, goes
/// on as records arrive (through `up`, on the server's stream instead of polling).
async fn by_partition(
    log: &dyn EventLog,
    up: Option<&Remote>,
    args: &ConsumeArgs,
    partitions: &[u32],
    since: Option<i64>,
) -> anyhow::Result<()> {
    let mut cursors = Vec::new();
    for &p in partitions {
        let (start, end) = log.watermarks(&args.topic, p).await?;
        let next = match (args.offset, since) {
            (Some(o), _) => o.clamp(start, end),
            (None, Some(ts)) => log.offset_for_time(&args.topic, p, ts).await?,
            (None, None) => start,
        };
        cursors.push(Cursor { partition: p, next, buffer: VecDeque::new() });
    }
    let mut printed = 0u64;
    let max = args.max.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    loop {
        // Refill empty buffers; a partition whose buffer stays empty is at its end.
        for c in cursors.iter_mut().filter(|c| c.buffer.is_empty()) {
            let got = log.fetch(&args.topic, c.partition, c.next, CHUNK).await?;
            if let Some(last) = got.last() {
                c.next = last.offset + 1;
            }
            c.buffer.extend(got);
        }
        let mut out = stdout.lock();
        let mut progressed = false;
        // Merge by timestamp while every partition that may have more records has one buffered.
        while printed < max {
            let Some(i) = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.buffer.front().map(|r| (r.timestamp, c.partition, i)))
                .min()
                .map(|(_, _, i)| i)
            else {
                break;
            };
            let r = cursors[i].buffer.pop_front().expect("front exists");
            print(&mut out, &r)?;
            printed += 1;
            progressed = true;
            if cursors[i].buffer.is_empty() {
                break; // refill this partition before merging further
            }
        }
        out.flush()?;
        if printed >= max {
            return Ok(());
        }
        if !progressed {
            if !args.follow {
                return Ok(());
            }
            if let Some(r) = up {
                // Caught up: the rest arrives as the server's stream.
                let offsets: Vec<(u32, u64)> = cursors.iter().map(|c| (c.partition, c.next)).collect();
                return follow_stream(r, args, &offsets, max - printed).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `--follow` through `up`: prints the records of its stream as they arrive, until `left` are
/// printed or the server ends the stream.
async fn follow_stream(r: &Remote, args: &ConsumeArgs, offsets: &[(u32, u64)], mut left: u64) -> anyhow::Result<()> {
    let mut stream = r.stream(&args.topic, offsets).await?;
    while left > 0 {
        let Some(record) = stream.next().await? else {
            return Err(
                Exit::new(1, format!("`eventline up` at {} ended the stream (it is shutting down)", r.url())).into()
            );
        };
        let mut out = std::io::stdout().lock();
        print(&mut out, &record)?;
        out.flush()?;
        left -= 1;
    }
    Ok(())
}

async fn by_group(log: &dyn EventLog, args: &ConsumeArgs, group: &str, since: Option<i64>) -> anyhow::Result<()> {
    let reset = OffsetReset::Earliest;
    let mut consumer = log.subscribe(group, std::slice::from_ref(&args.topic), reset).await?;
    // `subscribe` returns with the member's partitions assigned; an explicit start moves it there.
    if args.offset.is_some() || since.is_some() || args.from_beginning {
        for (topic, p) in consumer.assignment() {
            let (start, end) = log.watermarks(&topic, p).await?;
            let to = match (args.offset, since) {
                (Some(o), _) => o.clamp(start, end),
                (None, Some(ts)) => log.offset_for_time(&topic, p, ts).await?,
                (None, None) => start,
            };
            consumer.seek(&topic, p, to).await?;
        }
    }
    let max = args.max.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let mut pending = Vec::new();
    loop {
        if pending.is_empty() {
            let want = (max - printed).min(CHUNK as u64) as usize;
            let wait = if args.follow { Duration::from_secs(1) } else { Duration::from_millis(300) };
            pending = consumer.poll(want, wait).await?;
            if pending.is_empty() && !args.follow {
                break;
            }
        }
        let mut out = stdout.lock();
        for r in pending.drain(..) {
            if printed >= max {
                break;
            }
            print(&mut out, &r)?;
            printed += 1;
        }
        out.flush()?;
        consumer.commit().await?;
        if printed >= max {
            break;
        }
    }
    consumer.commit().await?;
    consumer.close().await?;
    Ok(())
}
