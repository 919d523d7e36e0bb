//! The Parquet lake as another tool reads it: DuckDB (PyPI `duckdb`, installed by
//! scripts/services/duckdb.sh) counts every topic's rows against the log, checks the column
//! types, and groups executions by agent as the analytics do; 20 SIGKILLs during `lake sync`
//! leave every record exactly once; compaction keeps that; the PostgreSQL warehouse holds the
//! same rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, ProduceRecord};
use eventline_model::topics::{Acks, TopicSpec, builtin_specs};
use serde_json::{Value, json};

mod up_harness;

use up_harness::{EXE, Up};

fn duckdb_python() -> String {
    std::env::var("EVENTLINE_TEST_DUCKDB_PYTHON").unwrap_or_else(|_| {
        panic!(
            "EVENTLINE_TEST_DUCKDB_PYTHON is not set: run `scripts/services/duckdb.sh start`, then \
             `set -a; . scripts/services/.env; set +a` (scripts/test.sh does both)"
        )
    })
}

/// Runs `sql` in DuckDB over the lake; returns the rows as JSON arrays.
fn duckdb(sql: &str) -> Vec<Vec<Value>> {
    let script = format!(
        "import duckdb, json, sys\nrows = duckdb.connect().sql({sql:?}).fetchall()\nprint(json.dumps([[v if isinstance(v, (int, float, str, type(None))) else str(v) for v in r] for r in rows]))"
    );
    let out = Command::new(duckdb_python()).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "duckdb: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now_text(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn event(topic: &str, i: u64) -> Value {
    let ts = now_text(-((i % 600) as i64) * 1000);
    let meta = json!({"timestamp": ts, "message_id": format!("{topic}-{i}"), "producer": "lake-test"});
    match topic {
        "db.changes.users" => {
            json!({"event_type": "UPDATE", "table": "Users", "data": {"UserId": format!("u-{}", i % 50), "Name": "n"}, "before": null, "timestamp": ts, "_metadata": meta})
        }
        "db.changes.conversations" => {
            json!({"event_type": "INSERT", "table": "conversations", "data": {"conversation_id": format!("c-{i}"), "user_id": "u-1"}, "timestamp": ts, "_metadata": meta})
        }
        "compliance.alerts" => {
            json!({"alert_id": format!("a-{i}"), "alert_type": "PII_EXPOSURE", "severity": (["LOW", "HIGH"][(i % 2) as usize]),
            "details": {"component": "card_agent", "field": "/output/message", "action": "REDACTED"}, "timestamp": ts, "_metadata": meta})
        }
        "external.crm.events" => {
            json!({"event_id": format!("e-{i}"), "source": "salesforce", "entity_type": "contact", "entity_id": format!("c{i}"), "action": "updated", "attributes": {"tier": "gold"}, "timestamp": ts, "_metadata": meta})
        }
        "external.market.data" => {
            json!({"symbol": "AAPL", "price": 100.0 + i as f64 / 100.0, "currency": "USD", "volume": i, "timestamp": ts, "_metadata": meta})
        }
        "security.events" => {
            json!({"event_id": format!("s-{i}"), "event_type": "auth.failed", "outcome": "failure", "component": "gateway", "status": 401, "timestamp": ts, "_metadata": meta})
        }
        "user.topic" => json!({"anything": i, "nested": {"x": [1, 2]}}),
        _ => {
            json!({"execution_id": format!("x-{i}"), "agent_id": (["card_agent", "loan_agent", "wealth_agent"][(i % 3) as usize]),
            "status": if i.is_multiple_of(7) { "failed" } else { "completed" }, "duration_ms": (i * 37) % 900,
            "input": {"query": "q", "user_id": format!("u-{}", i % 50)}, "output": {"message": "ok"}, "timestamp": ts, "_metadata": meta})
        }
    }
}

const TOPICS: [&str; 9] = [
    "agent.executions.dlq",
    "agent.executions",
    "compliance.alerts",
    "db.changes.users",
    "db.changes.conversations",
    "external.crm.events",
    "external.market.data",
    "security.events",
    "user.topic",
];

/// Fills the data directory's log with `n` records per topic; returns the count per topic.
async fn fill(data: &Path, n: u64) -> BTreeMap<String, u64> {
    let log = EmbeddedLog::open(data.join("log"), EmbeddedOptions::default()).unwrap();
    for spec in builtin_specs(&TopicSpec::new("defaults")) {
        log.ensure_topic(&spec).await.unwrap();
        log.ensure_topic(&spec.dead_letter()).await.unwrap();
    }
    log.ensure_topic(&TopicSpec::new("user.topic")).await.unwrap();
    let mut counts = BTreeMap::new();
    for topic in TOPICS {
        let records: Vec<_> =
            (0..n).map(|i| ProduceRecord::new(Some(format!("k{i}")), event(topic, i).to_string())).collect();
        for chunk in records.chunks(5000) {
            log.produce(topic, chunk.to_vec(), Acks::All).await.unwrap();
        }
        counts.insert(topic.to_owned(), n);
    }
    counts
}

fn eventline(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(EXE)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("EVENTLINE_CONFIG")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn lake_glob(data: &Path, topic: &str) -> String {
    format!("{}/lake/{topic}/*/*.parquet", data.display())
}

fn count_rows(data: &Path, topic: &str) -> (i64, i64) {
    let rows = duckdb(&format!(
        "select count(*), count(distinct (_partition, _offset)) from read_parquet('{}', hive_partitioning=true)",
        lake_glob(data, topic)
    ));
    (rows[0][0].as_i64().unwrap(), rows[0][1].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_sync_writes_every_topic_with_typed_columns_that_duckdb_reads_and_analytics_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let counts = fill(data, 3000).await;
    let out = eventline(data, &["lake", "sync"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (topic, n) in &counts {
        assert_eq!(count_rows(data, topic), (*n as i64, *n as i64), "{topic}: every record once");
    }
    // Types as documented.
    let types: BTreeMap<String, String> = duckdb(&format!(
        "select column_name, column_type from (describe select * from read_parquet('{}', hive_partitioning=true))",
        lake_glob(data, "agent.executions")
    ))
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_str().unwrap().to_owned()))
    .collect();
    assert_eq!(types["timestamp"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(types["duration_ms"], "BIGINT");
    assert_eq!(types["agent_id"], "VARCHAR");
    assert_eq!(types["_offset"], "BIGINT");
    assert_eq!(types["_partition"], "INTEGER");
    assert_eq!(types["date"], "DATE", "Hive-style date=YYYY-MM-DD directories");
    let price = duckdb(&format!(
        "select typeof(price), typeof(volume), typeof(symbol) from read_parquet('{}') limit 1",
        lake_glob(data, "external.market.data")
    ));
    assert_eq!(price[0], [json!("DOUBLE"), json!("BIGINT"), json!("VARCHAR")]);
    let nested = duckdb(&format!(
        "select output->>'message' from read_parquet('{}') limit 1",
        lake_glob(data, "agent.executions")
    ));
    assert_eq!(nested[0][0], "ok", "nested objects are JSON text");
    let generic = duckdb(&format!(
        "select value->>'anything' from read_parquet('{}') where _offset = 0 limit 1",
        lake_glob(data, "user.topic")
    ));
    assert!(generic[0][0].is_string(), "a user topic keeps the event as JSON");

    // GROUP BY agent_id over the lake equals the analytics' counts.
    let by_agent: BTreeMap<String, (i64, i64)> = duckdb(&format!(
        "select agent_id, count(*), count(*) filter (where status = 'failed') from read_parquet('{}') group by agent_id",
        lake_glob(data, "agent.executions")
    ))
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_owned(), (r[1].as_i64().unwrap(), r[2].as_i64().unwrap())))
    .collect();
    let out = eventline(data, &["analytics", "--window", "1h", "--json"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_analytics: BTreeMap<String, (i64, i64)> = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["agent_id"].as_str().unwrap().to_owned(),
                (a["executions"].as_i64().unwrap(), a["failed"].as_i64().unwrap()),
            )
        })
        .collect();
    assert_eq!(by_agent, from_analytics);
    // Quantiles against a brute-force computation over the same events.
    let durations: BTreeMap<String, Vec<i64>> = duckdb(&format!(
        "select agent_id, list(duration_ms order by duration_ms) from read_parquet('{}') group by agent_id",
        lake_glob(data, "agent.executions")
    ))
    .into_iter()
    .map(|r| {
        let list: Vec<i64> =
            r[1].as_str().unwrap().trim_matches(['[', ']']).split(", ").map(|x| x.parse().unwrap()).collect();
        (r[0].as_str().unwrap().to_owned(), list)
    })
    .collect();
    for a in report["agents"].as_array().unwrap() {
        let sorted = &durations[a["agent_id"].as_str().unwrap()];
        for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (1.0, "max")] {
            let exact = sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
            let got = a["latency_ms"][key].as_i64().unwrap();
            assert!((got - exact).abs() <= exact / 1000 + 1, "{} {key}: {got} vs exact {exact}", a["agent_id"]);
        }
    }

    // Compaction merges each day's files per partition and keeps every record once.
    let files_before = std::fs::read_dir(data.join("lake/agent.executions")).unwrap().count();
    let _ = files_before;
    let out = eventline(data, &["lake", "compact", "--topic", "agent.executions"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count_rows(data, "agent.executions"), (3000, 3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_during_lake_sync_leave_every_record_in_the_lake_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let counts = fill(data, 20_000).await;
    // Small files, so kills land between many of them.
    let envs = [("EVENTLINE_LAKE__MAX_FILE_RECORDS", "1500")];
    for round in 0..20u64 {
        let mut child = Command::new(EXE)
            .arg("--data-dir")
            .arg(data)
            .args(["lake", "sync"])
            .env_remove("EVENTLINE_CONFIG")
            .envs(envs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 53 * (round % 7)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // The kills landed mid-way: some files were written, not all.
    let partial: usize = TOPICS
        .iter()
        .map(|t| {
            walk(&data.join("lake").join(t)).iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count()
        })
        .sum();
    eprintln!("{partial} complete files after 20 kills");
    assert!(partial > 0, "the kills left some progress");
    // Leftovers a kill may leave (a temporary file) are cleaned by the next run, which finishes.
    let out = eventline(data, &["lake", "sync"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (topic, n) in &counts {
        assert_eq!(count_rows(data, topic), (*n as i64, *n as i64), "{topic}: every record exactly once");
    }
    // An interrupted compaction (merged file written, small ones not yet removed) is repaired.
    let day_dir = std::fs::read_dir(data.join("lake/compliance.alerts")).unwrap().next().unwrap().unwrap().path();
    let small: Vec<_> = std::fs::read_dir(&day_dir).unwrap().map(|e| e.unwrap().path()).collect();
    let keep = dir.path().join("saved.parquet");
    std::fs::copy(&small[0], &keep).unwrap();
    let out = eventline(data, &["lake", "compact", "--topic", "compliance.alerts"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::copy(&keep, &small[0]).unwrap(); // as if the removal had not happened
    let out = eventline(data, &["lake", "sync"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count_rows(data, "compliance.alerts"), (20_000, 20_000), "the leftover is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warehouse_holds_the_same_rows_in_postgresql_once() {
    let url = std::env::var("EVENTLINE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!("EVENTLINE_TEST_PG_URL is not set: run scripts/services/postgres.sh start (scripts/test.sh does)")
    });
    // A database of its own.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let db = format!("lake_wh_{}", std::process::id());
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    let wh_url = format!("{}/{db}", url.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    fill(data, 500).await;
    let envs = [("EVENTLINE_LAKE__WAREHOUSE_URL", wh_url.as_str())];
    let out = eventline(data, &["lake", "sync"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Again from scratch (lake files gone): the warehouse does not double.
    std::fs::remove_dir_all(data.join("lake")).unwrap();
    let out = eventline(data, &["lake", "sync"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (wh, conn) = tokio_postgres::connect(&wh_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    for topic in TOPICS {
        let table = format!("lake_{}", topic.replace(['.', '-'], "_"));
        let n: i64 = wh.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 500, "{table}");
    }
    let row = wh
        .query_one(
            "SELECT agent_id, duration_ms, pg_typeof(\"timestamp\")::text, output->>'message', event->>'execution_id' \
             FROM lake_agent_executions WHERE _partition = 0 ORDER BY _offset LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, String>(0).ends_with("_agent"));
    assert!(row.get::<_, Option<i64>>(1).is_some());
    assert_eq!(row.get::<_, String>(2), "timestamp with time zone");
    assert_eq!(row.get::<_, String>(3), "ok");
    assert!(row.get::<_, String>(4).starts_with("x-"));
    drop(wh);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_up_the_lake_and_the_analytics_endpoint_agree_on_every_agent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let envs = [("EVENTLINE_LAKE__MAX_FILE_AGE", "1s")];
    let up = Up::start_with_env(data, &[], &envs);
    let http = reqwest::Client::new();
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();
    let queries = [
        ("u-1001", "what is my card balance"),
        ("u-1003", "how much do I owe on my loan"),
        ("u-1004", "how is my portfolio doing"),
        ("u-1002", "show my last transactions"),
    ];
    for i in 0..30 {
        let (user, q) = queries[i % queries.len()];
        let r = http
            .post(format!("{}/v1/query", up.url))
            .bearer_auth(&admin)
            .json(&json!({"user_id": user, "query": q}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Within a few seconds every execution is in the lake and in the analytics.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (lake, endpoint) = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let files = walk(&data.join("lake/agent.executions"));
        let lake: BTreeMap<String, i64> = if files.is_empty() {
            BTreeMap::new()
        } else {
            duckdb(&format!(
                "select agent_id, count(*) from read_parquet('{}') group by agent_id",
                lake_glob(data, "agent.executions")
            ))
            .into_iter()
            .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_i64().unwrap()))
            .collect()
        };
        let body: Value = http
            .get(format!("{}/v1/analytics/agents?window=all", up.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let endpoint: BTreeMap<String, i64> = body["windows"][0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["agent_id"].as_str().unwrap().to_owned(), a["executions"].as_i64().unwrap()))
            .collect();
        if lake.values().sum::<i64>() == 30 && lake == endpoint {
            break (lake, endpoint);
        }
        assert!(std::time::Instant::now() < deadline, "lake {lake:?} vs analytics {endpoint:?}");
    };
    assert_eq!(lake, endpoint);
    assert!(lake.len() >= 3, "{lake:?}");
    up.terminate();
}
