//! `eventline up` with a webhook channel, killed with SIGKILL in the middle of deliveries: after
//! a clean restart every alert the log holds reached the receiver, each with a valid signature,
//! and only deliveries that were in flight at a kill came twice (same `Idempotency-Key`). The
//! audit trail written meanwhile verifies, against the log too.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

mod up_harness;

use up_harness::{EXE, Up, wait_ready};

const ROUNDS: usize = 5;
const SECRET: &str = "kill-test-secret";
/// Deliveries in flight at most (the channel's `concurrency`).
const CONCURRENCY: usize = 8;

type Got = Arc<Mutex<BTreeMap<String, usize>>>;

async fn receive(State(got): State<Got>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers.get("x-eventline-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(sig, eventline_services::notify::channel::signature(SECRET.as_bytes(), &body));
    let key = headers.get("idempotency-key").unwrap().to_str().unwrap().to_owned();
    // Counted on arrival; then a slow answer, so that deliveries are in flight when the kill comes.
    *got.lock().unwrap().entry(key).or_default() += 1;
    tokio::time::sleep(Duration::from_millis(100)).await;
    StatusCode::NO_CONTENT
}

/// Every alert id in `compliance.alerts`, read through the running server.
async fn alert_ids(http: &reqwest::Client, url: &str, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for p in 0..3 {
        let mut offset = 0;
        loop {
            let page: Value = http
                .get(format!("{url}/v1/topics/compliance.alerts/records?partition={p}&offset={offset}&limit=1000"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let records = page["records"].as_array().unwrap();
            ids.extend(records.iter().map(|r| r["value"]["alert_id"].as_str().unwrap().to_owned()));
            if records.is_empty() {
                break;
            }
            offset = page["next_offset"].as_u64().unwrap();
        }
    }
    ids
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(EXE)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("EVENTLINE_CONFIG")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_deliveries_loses_no_alert_and_resends_only_what_was_in_flight() {
    let got: Got = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("eventline.toml");
    std::fs::write(
        &config,
        format!(
            "[notifications]\nconcurrency = {CONCURRENCY}\nbackoff_min = \"50ms\"\nbackoff_max = \"200ms\"\n\
             [[notifications.channels]]\nname = \"secops\"\ntype = \"webhook\"\nurl = \"{hook}\"\nsecret_env = \"KILL_TEST_SECRET\"\n\
             [[notifications.routes]]\nalert_types = [\"*\"]\nchannels = [\"secops\"]\n"
        ),
    )
    .unwrap();
    let envs = [("EVENTLINE_CONFIG", config.to_str().unwrap()), ("KILL_TEST_SECRET", SECRET)];
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    for round in 0..ROUNDS {
        let mut up = Up::start_with_env(&data, &[], &envs);
        wait_ready(&http, &up.url).await;
        let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
        // Queries whose answers and inputs carry PII: each raises alerts.
        for i in 0..20 {
            let r = http
                .post(format!("{}/v1/query", up.url))
                .bearer_auth(&admin)
                .json(&json!({"user_id": "u-1001", "query": format!("card balance please, my SSN is 219-09-{:04}", 1000 + i)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(200 + 60 * round as u64)).await;
        up.child.kill().unwrap();
        up.child.wait().unwrap();
    }
    // A clean run delivers what is left.
    let up = Up::start_with_env(&data, &[], &envs);
    wait_ready(&http, &up.url).await;
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
    let ids = alert_ids(&http, &up.url, &admin).await;
    assert!(ids.len() >= ROUNDS * 20, "alerts were raised: {}", ids.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = ids.iter().filter(|id| !got.lock().unwrap().contains_key(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} of {} alerts never delivered", ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    up.terminate();
    let got = got.lock().unwrap().clone();
    let resent: usize = got.values().map(|n| n - 1).sum();
    assert!(
        resent <= ROUNDS * CONCURRENCY,
        "only deliveries in flight at a kill may come twice: {resent} repeats over {ROUNDS} kills"
    );
    eprintln!("{} alerts delivered over {ROUNDS} SIGKILLs, {resent} sent again", ids.len());

    // The CLI sees the delivery state, and the trail written through the kills verifies.
    let out = cli(&data, &["alerts", "--json", "--limit", "1000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(listed.iter().all(|a| a["deliveries"][0]["state"] == "delivered"), "all delivered");
    let out = cli(&data, &["audit", "verify", "--against-log"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("audit trail intact") && !text.contains("are missing"), "{text}");
    // An edit of the trail: exit 1 and the record named.
    let db = data.join("eventline.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        r#"UPDATE audit_trail SET record = replace(record, '"outcome":"', '"outcome":"not ') WHERE seq = 7"#,
        [],
    )
    .unwrap();
    drop(conn);
    let out = cli(&data, &["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["ok"].as_bool(), report["first_bad"]["seq"].as_u64()), (Some(false), Some(7)), "{report}");
}
