//! Crash safety with a real process: `eventline produce --acks all` appends and prints each
//! acknowledged offset; the test kills it with SIGKILL at random moments, reopens the log, and
//! checks that every acknowledged record is there, byte for byte, in order, and that nothing
//! corrupt is served.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use rand::Rng;

const EXE: &str = env!("CARGO_BIN_EXE_eventline");
const TOPIC: &str = "crash.test";

fn line(round: usize, i: usize) -> String {
    format!("{{\"round\":{round},\"seq\":{i},\"pad\":\"{}\"}}", "z".repeat((round * 7 + i) % 300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_an_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let status = Command::new(EXE)
        .arg("--data-dir")
        .arg(data)
        .args(["topics", "create", TOPIC, "--partitions", "3", "--retention", "forever"])
        .env("EVENTLINE_LOG__SEGMENT_BYTES", "262144")
        .status()
        .unwrap();
    assert!(status.success());
    let mut rng = rand::rng();
    let mut acked: Vec<(u32, u64, String)> = Vec::new();
    let rounds = 50;
    for round in 0..rounds {
        let mut child = Command::new(EXE)
            .arg("--data-dir")
            .arg(data)
            .args(["-q", "produce", TOPIC, "--acks", "all"])
            .env("EVENTLINE_LOG__SEGMENT_BYTES", "262144")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..1_000_000 {
                if stdin.write_all(format!("{}\n", line(round, i)).as_bytes()).is_err() {
                    return;
                }
            }
        });
        let acks = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stdout).lines() {
                    let Ok(l) = l else { return };
                    let v: serde_json::Value = serde_json::from_str(&l).expect("ack lines are JSON");
                    acks.lock().unwrap().push((v["partition"].as_u64().unwrap() as u32, v["offset"].as_u64().unwrap()));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(30..250)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let _ = writer.join();
        let acks = acks.lock().unwrap();
        for (i, (p, o)) in acks.iter().enumerate() {
            acked.push((*p, *o, line(round, i)));
        }
    }
    assert!(acked.len() > 1000, "the producer got work done between kills ({} acks)", acked.len());

    let log =
        EmbeddedLog::open(data.join("log"), EmbeddedOptions { segment_bytes: 262144, ..Default::default() }).unwrap();
    // Everything in the log decodes, and each partition's records are in production order.
    let mut stored: BTreeMap<(u32, u64), String> = BTreeMap::new();
    for p in 0..3 {
        let (start, end) = log.watermarks(TOPIC, p).await.unwrap();
        assert_eq!(start, 0);
        let mut at = 0;
        let mut last: Option<(u64, u64)> = None;
        while at < end {
            let batch = log.fetch(TOPIC, p, at, 5000).await.expect("nothing corrupt is served");
            for r in &batch {
                let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                let order = (v["round"].as_u64().unwrap(), v["seq"].as_u64().unwrap());
                assert!(last.is_none_or(|l| l < order), "partition {p} out of order at offset {}", r.offset);
                last = Some(order);
                stored.insert((p, r.offset), r.value_str().unwrap().to_owned());
            }
            at = batch.last().unwrap().offset + 1;
        }
    }
    for (p, o, want) in &acked {
        let got = stored.get(&(*p, *o)).unwrap_or_else(|| panic!("acknowledged record {p}/{o} is missing"));
        assert_eq!(got, want, "record {p}/{o} is byte-identical");
    }
    eprintln!("{rounds} SIGKILL rounds, {} acknowledged records verified, {} stored", acked.len(), stored.len());
}
