//! Traces across the log: `up` with `[telemetry] otlp_endpoint` exports its spans over OTLP/HTTP
//! to a receiver in this test (decoded with `opentelemetry-proto`). One query sent with a W3C
//! `traceparent` yields one trace that holds the HTTP request, the planner, the agent, the
//! database commit, the change data capture of the conversation it wrote, and the processing of
//! its events by every consumer service (audit, analytics, lake, notifications) and the alert's
//! delivery; a profile written through the API carries its trace through capture the same way.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde_json::json;

mod up_harness;

use up_harness::Up;

#[derive(Clone, Debug)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
}

type Spans = Arc<Mutex<Vec<Span>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP trace receiver on a free port: what it was sent, decoded.
async fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                let mut s = store.lock().unwrap();
                for rs in request.resource_spans {
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            s.push(Span {
                                trace_id: hex(&span.trace_id),
                                span_id: hex(&span.span_id),
                                parent: hex(&span.parent_span_id),
                                name: span.name,
                            });
                        }
                    }
                }
                ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn of_trace(spans: &Spans, trace_id: &str) -> Vec<Span> {
    spans.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect()
}

/// Waits until the trace holds a span named each of `names` (exactly, or as a prefix with `*`).
async fn wait_for(spans: &Spans, trace_id: &str, names: &[&str]) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = of_trace(spans, trace_id);
        let missing: Vec<&&str> = names
            .iter()
            .filter(|n| {
                !got.iter().any(|s| match n.strip_suffix('*') {
                    Some(prefix) => s.name.starts_with(prefix),
                    None => s.name == **n,
                })
            })
            .collect();
        if missing.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} lacks {missing:?}; it has {:?}",
            got.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every span's parent is in the trace, or is the caller's span: one tree, rooted at the caller.
fn assert_one_tree(spans: &[Span], caller_span: &str) {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for s in spans {
        assert!(
            s.parent == caller_span || ids.contains(s.parent.as_str()),
            "span {:?} has parent {} outside the trace",
            s.name,
            s.parent
        );
        // And it leads up to the caller.
        let mut at = s;
        let mut hops = 0;
        while at.parent != caller_span {
            at = by_id[at.parent.as_str()];
            hops += 1;
            assert!(hops < 64, "a cycle above {:?}", s.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_query_yields_one_trace_through_the_log_capture_and_every_consumer() {
    let (otlp, spans) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("eventline.toml");
    std::fs::write(
        &config,
        format!(
            "[telemetry]\notlp_endpoint = \"{otlp}\"\nexport_interval = \"200ms\"\n[lake]\nmax_file_age = \"1s\"\n\
             [[notifications.channels]]\nname = \"log\"\ntype = \"log\"\n\
             [[notifications.routes]]\nalert_types = [\"*\"]\nchannels = [\"log\"]\n"
        ),
    )
    .unwrap();
    let up = Up::start_with_env(&data, &[], &[("EVENTLINE_CONFIG", config.to_str().unwrap())]);
    let http = reqwest::Client::new();
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();

    // A query with PII (an alert, so a notification) under the caller's trace.
    let (trace_id, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let r = http
        .post(format!("{}/v1/query", up.url))
        .bearer_auth(&admin)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({"user_id": "u-1001", "query": "my SSN is 219-09-9999, what is my card balance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let trace = wait_for(
        &spans,
        trace_id,
        &[
            "POST /v1/query",
            "execute query",
            "planner",
            "agent",
            "database commit",
            "cdc capture",
            "eventline-audit process agent.executions",
            "eventline-audit process compliance.alerts",
            "eventline-audit process db.changes.conversations",
            "eventline-analytics process agent.executions",
            "eventline-lake process agent.executions",
            "eventline-lake process db.changes.conversations",
            "eventline-notify process compliance.alerts",
            "notification delivery",
        ],
    )
    .await;
    assert_one_tree(&trace, caller_span);
    let root: Vec<&Span> = trace.iter().filter(|s| s.parent == caller_span).collect();
    assert_eq!(root.len(), 1, "one span continues the caller's: {root:?}");
    assert_eq!(root[0].name, "POST /v1/query");
    // The conversation's change went through capture: its consumers hang below the capture span.
    let capture = trace.iter().find(|s| s.name == "cdc capture").unwrap();
    let audit_change = trace.iter().find(|s| s.name == "eventline-audit process db.changes.conversations").unwrap();
    assert_eq!(audit_change.parent, capture.span_id);

    // A profile written through the API: HTTP → database write → capture → consumers.
    let (trace_id, caller_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let r = http
        .put(format!("{}/v1/users/u-7001", up.url))
        .bearer_auth(&admin)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({"Email": "ada@example.com", "Name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let trace = wait_for(
        &spans,
        trace_id,
        &[
            "PUT /v1/users/{user_id}",
            "database write",
            "cdc capture",
            "eventline-audit process db.changes.users",
            "eventline-lake process db.changes.users",
        ],
    )
    .await;
    assert_one_tree(&trace, caller_span);

    // Without a caller's trace a request starts its own.
    let before: HashSet<String> = spans.lock().unwrap().iter().map(|s| s.trace_id.clone()).collect();
    let r = http
        .post(format!("{}/v1/query", up.url))
        .bearer_auth(&admin)
        .json(&json!({"user_id": "u-1001", "query": "what is my loan balance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let fresh = loop {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == "POST /v1/query" && !before.contains(&s.trace_id) && s.parent.is_empty())
            .cloned();
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no new root span for an untraced query");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    wait_for(&spans, &fresh.trace_id, &["agent", "eventline-audit process agent.executions"]).await;
    up.terminate();
}
