//! `eventline up` as an operator runs it: the real binary on a fresh data directory, a real HTTP
//! client, SIGTERM to stop, then the log read back from disk.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use serde_json::{Value, json};

mod up_harness;

use up_harness::{EXE, Up};

async fn topic(data: &Path, name: &str) -> Vec<Value> {
    let log = EmbeddedLog::open(data.join("log"), EmbeddedOptions::default()).unwrap();
    let mut out = Vec::new();
    let parts = log.describe_topic(name).await.unwrap().spec.partitions;
    for p in 0..parts {
        for r in log.fetch(name, p, 0, 100_000).await.unwrap() {
            out.push(serde_json::from_slice(r.value.as_ref().unwrap()).unwrap());
        }
    }
    out
}

async fn wait_ready(http: &reqwest::Client, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.get(format!("{url}/readyz")).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_queries_and_profiles_and_everything_reaches_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let up = Up::start(data, &[]);
    let key_path = data.join("admin.key");
    let admin = std::fs::read_to_string(&key_path).unwrap().trim().to_owned();
    assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(up.seen.iter().any(|l| l.contains(&key_path.display().to_string())), "says where the key is");
    assert!(up.seen.iter().all(|l| !l.contains(&admin)), "never prints the secret");

    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/healthz", up.url)).send().await.unwrap().status(), 200);
    let ready = wait_ready(&http, &up.url).await;
    assert_eq!(ready["checks"], json!({"log": "ok", "database": "ok", "cdc": "ok"}));
    let r =
        http.post(format!("{}/v1/query", up.url)).json(&json!({"user_id": "u-1001", "query": "card balance"})).send();
    assert_eq!(r.await.unwrap().status(), 401);

    let r = http
        .put(format!("{}/v1/users/u-7001", up.url))
        .bearer_auth(&admin)
        .json(&json!({"Email": "ops.test@example.com", "Name": "Ops Test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{}/v1/query", up.url))
        .bearer_auth(&admin)
        .json(&json!({"user_id": "u-1002", "query": "My debit card was stolen, block it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["output"]["card"]["status"], "blocked", "{answer}");
    let execution = answer["execution_id"].as_str().unwrap().to_owned();
    let conversation = answer["conversation_id"].as_str().unwrap().to_owned();
    let stderr = up.terminate();
    assert!(stderr.contains("relaying the last captured changes"), "{stderr}");

    // After a clean stop, the log on disk has the profile change (through capture, with the
    // Email hashed), the execution, its alerts and the conversation change.
    let users = topic(data, "db.changes.users").await;
    let created: Vec<&Value> = users.iter().filter(|e| e["data"]["UserId"] == "u-7001").collect();
    assert_eq!(created.len(), 1, "{users:?}");
    assert_eq!(created[0]["event_type"], "INSERT");
    assert!(created[0]["data"]["Email"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert!(!serde_json::to_string(&users).unwrap().contains("@example.com"), "no raw e-mail in db.changes.users");
    let seeded = users.iter().filter(|e| e["data"]["UserId"].as_str().unwrap().starts_with("u-100")).count();
    assert_eq!(seeded, 5, "the demo customers were captured too");
    let execs = topic(data, "agent.executions").await;
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0]["execution_id"], execution.as_str());
    let alerts = topic(data, "compliance.alerts").await;
    assert!(alerts.iter().any(|a| a["details"]["execution_id"] == execution.as_str()));
    let convs = topic(data, "db.changes.conversations").await;
    assert!(convs.iter().any(|c| c["data"]["conversation_id"] == conversation.as_str()), "{convs:?}");
    // The stored turns were already redacted: capture's own pass over them finds nothing.
    let on_conversations: Vec<&Value> =
        alerts.iter().filter(|a| a["details"]["field"].as_str().unwrap().starts_with("/data/doc")).collect();
    assert!(on_conversations.is_empty(), "{on_conversations:?}");
    assert!(!serde_json::to_string(&convs).unwrap().contains("@example.com"));

    // A restart keeps the key and the bank: no new key, no second seed, the card stays blocked.
    let up = Up::start(data, &[]);
    assert!(up.seen.iter().all(|l| !l.contains("seeded the demo bank")), "{:?}", up.seen);
    assert_eq!(std::fs::read_to_string(&key_path).unwrap().trim(), admin);
    let r = http
        .post(format!("{}/v1/query", up.url))
        .bearer_auth(&admin)
        .json(&json!({"user_id": "u-1002", "query": "block my debit card"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["status"], "rejected", "already blocked: {again}");
    up.terminate();
    assert_eq!(topic(data, "agent.executions").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_their_events_land() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let up = Up::start(data, &[]);
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    wait_ready(&http, &up.url).await;
    let queries = ["card balance", "my loan balance", "how is my portfolio", "last 5 transactions"];
    let mut tasks = tokio::task::JoinSet::new();
    const N: usize = 48;
    for i in 0..N {
        let (http, url, admin) = (http.clone(), up.url.clone(), admin.clone());
        let body = json!({"user_id": format!("u-100{}", i % 5 + 1), "query": queries[i % queries.len()]});
        tasks.spawn(async move {
            let r = http.post(format!("{url}/v1/query")).bearer_auth(admin).json(&body).send().await?;
            let status = r.status();
            let body: Value = r.json().await?;
            Ok::<_, reqwest::Error>((status, body, Instant::now()))
        });
    }
    // Stop as soon as the first answer is back: the rest are in flight or not yet accepted.
    let first = tasks.join_next().await.unwrap().unwrap().unwrap();
    let signalled = Instant::now();
    let stopper = std::thread::spawn(move || up.terminate());
    let mut answered = vec![first];
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(a) => answered.push(a),
            Err(e) => assert!(e.is_connect() || e.is_request(), "only refused, never half-answered: {e}"),
        }
    }
    let stderr = stopper.join().unwrap();
    let after = answered.iter().filter(|a| a.2 > signalled).count();
    eprintln!("{} of {N} queries answered, {after} of them after SIGTERM was sent", answered.len());
    assert!(after > 0, "no request was in flight at SIGTERM, so this test proved nothing:\n{stderr}");
    for (status, body, _) in &answered {
        assert_eq!(*status, 200, "{body}\n{stderr}");
    }
    let execs = topic(data, "agent.executions").await;
    for (_, body, _) in &answered {
        let id = body["execution_id"].as_str().unwrap();
        assert!(execs.iter().any(|e| e["execution_id"] == id), "answered {id} but its event is not in the log");
    }
    assert_eq!(execs.len(), answered.len(), "every execution that ran was answered");
}

#[test]
fn postgres_is_refused_and_a_busy_port_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(EXE)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["up", "--database", "postgres://eventline@127.0.0.1/eventline"])
        .env_remove("EVENTLINE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not available in this build") && err.contains("SQLite"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(EXE)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("up")
        .env("EVENTLINE_GATEWAY__LISTEN", &addr)
        .env_remove("EVENTLINE_CONFIG")
        .env_remove("EVENTLINE_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("gateway.listen"), "{err}");
}

/// u-1001's invested value (40 AAPL, 120 VTI, 150 BND × 72.40, 10 GLD × 243.60), in cents.
fn u1001_invested_cents(aapl: f64, vti: f64) -> i64 {
    ((40.0 * aapl + 120.0 * vti + 150.0 * 72.40 + 10.0 * 243.60) * 100.0).round() as i64
}

/// Asks the wealth agent until u-1001's invested value is `want_cents` (the feed is asynchronous).
async fn wait_for_valuation(http: &reqwest::Client, url: &str, key: &str, want_cents: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .post(format!("{url}/v1/query"))
            .bearer_auth(key)
            .json(&json!({"user_id": "u-1001", "query": "How is my portfolio doing?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let got = (v["output"]["invested_value"].as_f64().unwrap() * 100.0).round() as i64;
        if got == want_cents {
            return v;
        }
        assert!(Instant::now() < deadline, "invested value stays {got}, want {want_cents}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_reach_the_log_and_ticks_reprice_portfolios_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let up = Up::start(data, &[]);
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    wait_ready(&http, &up.url).await;
    let r = http.post(format!("{}/v1/keys", up.url)).bearer_auth(&admin).json(&json!({"role": "ingest"})).send();
    let ingest = r.await.unwrap().json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned();
    wait_for_valuation(&http, &up.url, &admin, u1001_invested_cents(227.50, 285.10)).await;

    let post = |path: &str, body: Value| {
        http.post(format!("{}/v1/integrations/{path}", up.url)).bearer_auth(&ingest).json(&body).send()
    };
    let r = post("market-data", json!({"symbol": "AAPL", "price": 250.0, "currency": "USD"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let tick: Value = r.json().await.unwrap();
    let v = wait_for_valuation(&http, &up.url, &admin, u1001_invested_cents(250.0, 285.10)).await;
    assert!(v["output"]["message"].as_str().unwrap().contains("USD"), "{v}");
    let crm = json!({"event_id": "e-1", "source": "hubspot", "entity_type": "case", "entity_id": "case-9",
                     "action": "created", "attributes": {"note": "customer SSN 123-45-6789"}});
    let r = post("crm/events", crm).await.unwrap();
    assert_eq!(r.status(), 200);
    let stderr = up.terminate();
    assert!(!stderr.contains("123-45-6789"), "no raw PII in the server log");
    assert!(stderr.contains("price feed stopped"), "the feed is part of the ordered shutdown: {stderr}");

    // On disk: the CRM event masked, its alert, and the tick's offset committed by the feed.
    let crm_events = topic(data, "external.crm.events").await;
    assert_eq!(crm_events.len(), 1);
    assert_eq!(crm_events[0]["attributes"]["note"], "customer SSN [SSN]");
    let alerts = topic(data, "compliance.alerts").await;
    assert!(alerts.iter().any(|a| a["details"]["component"] == "crm_integration"), "{alerts:?}");
    {
        let log = EmbeddedLog::open(data.join("log"), EmbeddedOptions::default()).unwrap();
        let p = tick["records"][0]["partition"].as_u64().unwrap() as u32;
        let committed = log.committed("eventline-prices", "external.market.data", p).await.unwrap();
        assert_eq!(committed, Some(tick["records"][0]["offset"].as_u64().unwrap() + 1));
    }

    // Restarted: the AAPL price is still 250; an older AAPL tick does not win, a new VTI tick does.
    let up = Up::start(data, &[]);
    wait_ready(&http, &up.url).await;
    let post = |path: &str, body: Value| {
        http.post(format!("{}/v1/integrations/{path}", up.url)).bearer_auth(&ingest).json(&body).send()
    };
    let r = post(
        "market-data",
        json!([{"symbol": "AAPL", "price": 100.0, "currency": "USD", "timestamp": "2001-01-01T00:00:00Z"},
               {"symbol": "VTI", "price": 300.0, "currency": "USD"}]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    wait_for_valuation(&http, &up.url, &admin, u1001_invested_cents(250.0, 300.0)).await;
    up.terminate();
}
