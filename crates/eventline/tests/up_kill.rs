//! `eventline up` killed with SIGKILL, again and again, while clients send queries: every query
//! answered 200 has its `agent.executions` event exactly once, and no execution event is there
//! twice (the executor's outbox: change, events and conversation turn commit together, and the
//! relay never appends a row twice).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use serde_json::{Value, json};

mod up_harness;

use up_harness::{Up, wait_ready};

const ROUNDS: usize = 20;
const CLIENTS: usize = 8;

const QUERIES: [(&str, &str); 6] = [
    ("u-1001", "what is my card balance"),
    ("u-1002", "please freeze my debit card"),
    ("u-1002", "unfreeze my debit card"),
    ("u-1003", "show the amortization schedule of my loan"),
    ("u-1004", "how is my portfolio doing"),
    ("u-1005", "my SSN is 123-45-6789, what is my card balance"),
];

async fn executions(data: &Path) -> BTreeMap<String, usize> {
    let log = EmbeddedLog::open(data.join("log"), EmbeddedOptions::default()).unwrap();
    let mut count = BTreeMap::new();
    for p in 0..log.describe_topic("agent.executions").await.unwrap().spec.partitions {
        for r in log.fetch("agent.executions", p, 0, 1_000_000).await.unwrap() {
            let v: Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            *count.entry(v["execution_id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_duplicates_no_execution() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..ROUNDS {
        let mut up = Up::start(data, &[]);
        wait_ready(&http, &up.url).await;
        let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (http, url, admin, answered) = (http.clone(), up.url.clone(), admin.clone(), answered.clone());
            clients.push(tokio::spawn(async move {
                for i in 0.. {
                    let (user, query) = QUERIES[(c + i) % QUERIES.len()];
                    let sent = http
                        .post(format!("{url}/v1/query"))
                        .bearer_auth(&admin)
                        .json(&json!({"user_id": user, "query": query}))
                        .send()
                        .await;
                    let Ok(r) = sent else { return };
                    if r.status() != 200 {
                        continue;
                    }
                    let Ok(body) = r.json::<Value>().await else { return };
                    answered.lock().unwrap().push(body["execution_id"].as_str().unwrap().to_owned());
                }
            }));
        }
        // Let the load run a little (a different while each round), then kill -9.
        tokio::time::sleep(Duration::from_millis(150 + 37 * (round as u64 % 9))).await;
        up.child.kill().unwrap();
        up.child.wait().unwrap();
        for c in clients {
            c.await.unwrap();
        }
    }
    // One clean run relays what the last kill left in the outbox, then stops in order.
    let up = Up::start(data, &[]);
    wait_ready(&http, &up.url).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    up.terminate();

    let answered: BTreeSet<String> = answered.lock().unwrap().iter().cloned().collect();
    assert!(answered.len() > ROUNDS * 5, "the load reached the server: {} answers", answered.len());
    let logged = executions(data).await;
    let twice: Vec<_> = logged.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "execution events appended more than once: {twice:?}");
    let missing: Vec<_> = answered.iter().filter(|id| !logged.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} answered executions have no event: {missing:?}", missing.len());
    eprintln!("{} answered queries, {} execution events, over {ROUNDS} SIGKILLs", answered.len(), logged.len());
}
