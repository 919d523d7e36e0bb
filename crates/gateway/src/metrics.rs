//! `GET /metrics`: Prometheus text exposition (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`). Counters and histograms are recorded where things happen (the
//! log wrapper, the consumer runtime, governance, the executor, capture, the services, the HTTP
//! layer below); gauges that describe the log — end offsets, consumer lag per group — are read
//! from the log at each scrape.
//!
//! Unauthenticated, like `/healthz`: it carries counts and latencies, never event content, keys or
//! ids. `[metrics] listen` moves it to an address of its own (then the API's port has none).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eventline_log::EventLog;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Latency buckets, seconds: 0.5 ms to 30 s.
const BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .expect("buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (a test process): this one still renders
            // what is recorded through it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Sets the gauges read from the log: end offsets per partition, lag per group and partition.
pub async fn refresh_log_gauges(log: &dyn EventLog) {
    if let Ok(topics) = log.list_topics().await {
        for t in topics {
            for p in t.partitions {
                metrics::gauge!("eventline_log_end_offset", "topic" => t.spec.name.clone(), "partition" => p.partition.to_string())
                    .set(p.end_offset as f64);
            }
        }
    }
    if let Ok(groups) = log.list_groups().await {
        for g in groups {
            if let Ok(lags) = log.group_lag(&g).await {
                for l in lags {
                    metrics::gauge!("eventline_consumer_lag_records", "group" => g.clone(), "topic" => l.topic, "partition" => l.partition.to_string())
                        .set(l.lag as f64);
                }
            }
        }
    }
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    refresh_log_gauges(&**state.executor().log()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle().render()).into_response()
}

/// Counts every request by route template, method and status, and times it by route.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("(unmatched)", |m| m.as_str()).to_owned();
    // Any token is a method to HTTP: only the standard ones become label values.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("eventline_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("eventline_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
