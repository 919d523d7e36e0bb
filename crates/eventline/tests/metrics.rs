//! `GET /metrics` of a running `up`, scraped by the real Prometheus (Debian `prometheus`,
//! installed by scripts/services/prometheus.sh): every metric name operators and the Grafana
//! dashboard (deploy/grafana/eventline.json) rely on is exported and queryable.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod up_harness;

use up_harness::Up;

/// The names the issue and SPEC §6 promise (histograms by their base name).
const REQUIRED: [&str; 14] = [
    "eventline_log_appended_records_total",
    "eventline_log_appended_bytes_total",
    "eventline_log_end_offset",
    "eventline_consumer_lag_records",
    "eventline_consumer_processed_total",
    "eventline_cdc_lag_seconds",
    "eventline_cdc_lag_bytes",
    "eventline_agent_execution_duration_seconds",
    "eventline_governance_detections_total",
    "eventline_notifications_total",
    "eventline_audit_records_total",
    "eventline_http_requests_total",
    "eventline_http_request_duration_seconds",
    "eventline_lake_records_total",
];

/// Metric names in a Prometheus exposition, histograms also by their base name.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = line.split(['{', ' ']).next().unwrap().to_owned();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                out.insert(base.to_owned());
            }
        }
        out.insert(name);
    }
    out
}

async fn traffic(http: &reqwest::Client, url: &str, key: &str) {
    for q in ["card balance", "how is my portfolio doing", "my SSN is 219-09-9999, what is my card balance"] {
        let r = http
            .post(format!("{url}/v1/query"))
            .bearer_auth(key)
            .json(&json!({"user_id": "u-1001", "query": q}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http.get(format!("{url}/v1/audit")).bearer_auth("elk_wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_promised_metric_and_the_grafana_dashboard_uses_only_exported_ones() {
    let prometheus = std::env::var("EVENTLINE_TEST_PROMETHEUS").unwrap_or_else(|_| {
        panic!("EVENTLINE_TEST_PROMETHEUS is not set: run scripts/services/prometheus.sh start (scripts/test.sh does)")
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("eventline.toml");
    std::fs::write(
        &config,
        "[lake]\nmax_file_age = \"1s\"\n[[notifications.channels]]\nname = \"log\"\ntype = \"log\"\n\
         [[notifications.routes]]\nalert_types = [\"*\"]\nchannels = [\"log\"]\n",
    )
    .unwrap();
    let up = Up::start_with_env(&data, &[], &[("EVENTLINE_CONFIG", config.to_str().unwrap())]);
    let http = reqwest::Client::new();
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
    traffic(&http, &up.url, &admin).await;

    // No key needed; Prometheus text format.
    let deadline = Instant::now() + Duration::from_secs(30);
    let exported = loop {
        let r = http.get(format!("{}/metrics", up.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = r.text().await.unwrap();
        let got = names(&text);
        if REQUIRED.iter().all(|n| got.contains(*n)) {
            assert!(text.contains("route=\"/v1/query\""), "routes are templates");
            assert!(!text.contains("u-1001") && !text.contains(&admin[4..]), "no ids or secrets in metrics");
            break got;
        }
        let missing: Vec<_> = REQUIRED.iter().filter(|n| !got.contains(**n)).collect();
        assert!(Instant::now() < deadline, "missing from /metrics: {missing:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // The Grafana dashboard queries only what is exported.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../deploy/grafana/eventline.json",
            std::env::var("CARGO_MANIFEST_DIR").unwrap()
        ))
        .unwrap(),
    )
    .unwrap();
    let mut used = BTreeSet::new();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("eventline_") {
                let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[at + name.len()..];
                used.insert(name);
            }
        }
    }
    assert!(used.len() >= 10, "{used:?}");
    let unknown: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics up does not export: {unknown:?}");

    // The real Prometheus scrapes it and answers queries for each name.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = up.url.trim_start_matches("http://");
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: eventline\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let mut prom = Command::new(&prometheus)
        .arg(format!("--config.file={}", prom_dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", prom_dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let query = |q: String| {
        let http = http.clone();
        async move {
            let r =
                http.get(format!("http://127.0.0.1:{port}/api/v1/query")).query(&[("query", q)]).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            Some(v["data"]["result"].as_array()?.len())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<&str> = REQUIRED.to_vec();
    while !pending.is_empty() {
        traffic(&http, &up.url, &admin).await;
        let mut still = Vec::new();
        for name in pending {
            let q = if name.ends_with("_seconds") && (name.contains("duration")) {
                format!("{name}_count")
            } else {
                name.to_owned()
            };
            if query(q).await.unwrap_or(0) == 0 {
                still.push(name);
            }
        }
        pending = still;
        if !pending.is_empty() {
            assert!(Instant::now() < deadline, "Prometheus has no series for {pending:?}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let by_route = query("sum by (route) (eventline_http_requests_total)".into()).await.unwrap();
    assert!(by_route >= 2, "requests by route template");
    let _ = prom.kill();
    let _ = prom.wait();
    up.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_moves_metrics_to_an_address_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::start_with_env(dir.path(), &[], &[("EVENTLINE_METRICS__LISTEN", "127.0.0.1:0")]);
    let line = up.wait_for_line("metrics on http://");
    let url = line[line.find("http://").unwrap()..].split_whitespace().next().unwrap().to_owned();
    let http = reqwest::Client::new();
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("eventline_"));
    let r = http.get(format!("{}/metrics", up.url)).send().await.unwrap();
    assert_eq!(r.status(), 404, "not on the API's address any more");
    up.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start_with_env(dir.path(), &[], &[("EVENTLINE_METRICS__ENABLED", "false")]);
    let r = reqwest::get(format!("{}/metrics", up.url)).await.unwrap();
    assert_eq!(r.status(), 404);
    up.terminate();
}
