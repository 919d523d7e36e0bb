//! Analytics against a real embedded log: the windows by event time, a restart that rebuilds the
//! same figures from the log without counting anything twice, and invalid records dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, ProduceRecord};
use eventline_model::topics::{AGENT_EXECUTIONS, Acks, COMPLIANCE_ALERTS, TopicSpec, builtin_specs};
use eventline_services::analytics::{AnalyticsService, Window};
use serde_json::{Value, json};
use tokio::sync::watch;

fn at(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn execution(i: u64, agent: &str, status: &str, duration_ms: u64, ts: &str) -> Value {
    json!({"execution_id": format!("x{i}"), "agent_id": agent, "status": status, "duration_ms": duration_ms,
        "input": {"query": "q"}, "output": {}, "timestamp": ts,
        "_metadata": {"timestamp": ts, "message_id": format!("m{i}"), "producer": "t"}})
}

async fn produce(log: &EmbeddedLog, topic: &str, events: &[Value]) {
    let records =
        events.iter().enumerate().map(|(i, e)| ProduceRecord::new(Some(format!("k{i}")), e.to_string())).collect();
    log.produce(topic, records, Acks::All).await.unwrap();
}

async fn run_for(service: &AnalyticsService, d: Duration) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let s = service.clone();
    let task = tokio::spawn(async move { s.run(stopped).await.unwrap() });
    tokio::time::sleep(d).await;
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_by_event_time_and_a_restart_rebuilds_them_from_the_log_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
    for spec in builtin_specs(&TopicSpec::new("defaults")) {
        log.ensure_topic(&spec).await.unwrap();
        log.ensure_topic(&spec.dead_letter()).await.unwrap();
    }
    // 300 card executions in the last 40 s (latency i ms), 100 loan ones 3 min ago, 50 wealth
    // ones 2 h ago (outside every window), and alerts.
    let mut events = Vec::new();
    for i in 0..300u64 {
        let status = if i % 10 == 0 {
            "failed"
        } else if i % 25 == 0 {
            "rejected"
        } else {
            "completed"
        };
        events.push(execution(i, "card_agent", status, i + 1, &at(-40_000 + i as i64 * 100)));
    }
    for i in 0..100u64 {
        events.push(execution(1000 + i, "loan_agent", "completed", 50, &at(-180_000)));
    }
    for i in 0..50u64 {
        events.push(execution(2000 + i, "wealth_agent", "completed", 5, &at(-7_200_000)));
    }
    produce(&log, AGENT_EXECUTIONS, &events).await;
    let alerts: Vec<Value> = (0..20)
        .map(|i| json!({"alert_id": format!("a{i}"), "alert_type": "PII_EXPOSURE", "severity": if i < 5 { "HIGH" } else { "LOW" },
            "details": {"component": "c", "field": "f", "action": "REDACTED"}, "timestamp": at(-10_000),
            "_metadata": {"timestamp": at(-10_000), "message_id": format!("am{i}"), "producer": "t"}}))
        .collect();
    produce(&log, COMPLIANCE_ALERTS, &alerts).await;
    produce(&log, AGENT_EXECUTIONS, &[json!({"not": "an execution"})]).await;

    let service = AnalyticsService::new(log.clone());
    let (stop, task) = run_for(&service, Duration::from_secs(2)).await;
    let m1 = service.report(Window::OneMinute).await.unwrap();
    let m5 = service.report(Window::FiveMinutes).await.unwrap();
    let h1 = service.report(Window::OneHour).await.unwrap();
    stop.send(true).unwrap();
    task.await.unwrap();

    let card = m1.figures.agents.iter().find(|a| a.agent_id == "card_agent").unwrap();
    assert_eq!((card.executions, card.failed, card.rejected), (300, 30, 6));
    assert_eq!(card.completed, 264);
    assert!((card.success_rate.unwrap() - 0.88).abs() < 1e-9);
    // Brute force over the same latencies 1..=300.
    let exact = |q: f64| ((300.0 * q).ceil() as u64).clamp(1, 300);
    for (got, q) in [(card.latency_ms.p50, 0.5), (card.latency_ms.p95, 0.95), (card.latency_ms.p99, 0.99)] {
        assert!(got.abs_diff(exact(q)) <= 1, "p{q}: {got} vs {}", exact(q));
    }
    assert_eq!(card.latency_ms.max, 300);
    assert!(m1.figures.agents.iter().all(|a| a.agent_id != "loan_agent"), "3 minutes ago is outside 1m");
    assert_eq!(m5.figures.agents.iter().map(|a| a.executions).sum::<u64>(), 400);
    assert_eq!(h1.figures.agents.iter().map(|a| a.executions).sum::<u64>(), 400, "2 h ago is outside every window");
    let high = m1.figures.alerts.iter().find(|a| a.severity == "HIGH").unwrap();
    assert_eq!(high.count, 5);
    let rate = m5.topics.iter().find(|t| t.topic == AGENT_EXECUTIONS).unwrap();
    assert_eq!(rate.events, 451, "everything appended within the window, per second over it");
    // The record that is not an execution went to the dead-letter topic.
    let dlq: u64 = {
        let mut n = 0;
        for p in 0..3 {
            n += log.watermarks("agent.executions.dlq", p).await.unwrap().1;
        }
        n
    };
    assert_eq!(dlq, 1);

    // A restart (a new process: a new service, the same group) rebuilds the same windows.
    let again = AnalyticsService::new(log.clone());
    let (stop, task) = run_for(&again, Duration::from_secs(2)).await;
    let m5_again = again.report(Window::FiveMinutes).await.unwrap();
    assert_eq!(m5_again.figures.agents, m5.figures.agents, "rebuilt from the log, nothing lost or counted twice");
    // An event dated far in the future counts at the log's time, and does not push the windows
    // past the present.
    produce(&log, AGENT_EXECUTIONS, &[execution(9998, "card_agent", "completed", 3, "9999-12-31T00:00:00.000Z")]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m1_after = again.report(Window::OneMinute).await.unwrap();
    assert_eq!(m1_after.figures.agents.iter().find(|a| a.agent_id == "card_agent").unwrap().executions, 301);
    // New events count once.
    produce(&log, AGENT_EXECUTIONS, &[execution(9999, "card_agent", "completed", 7, &at(0))]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = again.report(Window::OneMinute).await.unwrap();
    assert_eq!(after.figures.agents.iter().find(|a| a.agent_id == "card_agent").unwrap().executions, 302);
    stop.send(true).unwrap();
    task.await.unwrap();
}
