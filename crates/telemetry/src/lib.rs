//! Traces. [`init`] installs the process's `tracing` subscriber: human-readable events on stderr
//! and, when an OTLP endpoint is configured, every `info`-level span exported with OpenTelemetry
//! (OTLP over HTTP/protobuf, batched on a thread of its own).
//!
//! A trace crosses the log in the records' W3C `traceparent` header: a producer writes the
//! context of its current span ([`traceparent`]), a consumer makes its span a child of the
//! record's ([`set_parent`]). Without an exporter spans have no OpenTelemetry context:
//! [`traceparent`] is `None` and callers pass on a `traceparent` they were given unchanged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where and how spans are exported.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// The collector's base URL (`http://host:4318`); spans go to `<endpoint>/v1/traces`.
    pub endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Spans wait at most this long in the batch before they are sent.
    pub export_interval: Duration,
    /// The share of new traces recorded (0.0 – 1.0); a trace a caller started keeps the caller's
    /// decision (the `sampled` flag of its `traceparent`).
    pub sample_ratio: f64,
}

/// What could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("telemetry: {0}")]
pub struct TelemetryError(String);

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (an OTLP endpoint was configured): callers skip work that only
/// feeds traces when they are not.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Flushes and stops the exporter when dropped (keep it until the process ends).
#[must_use = "dropping the guard stops the exporter"]
#[derive(Debug, Default)]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }
}

/// The URL spans are posted to: `<endpoint>/v1/traces`, unless the endpoint already names it.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") }
}

/// Installs the global subscriber: `fmt` on stderr filtered by `filter`, plus the OpenTelemetry
/// layer (spans and events at `info` and above) when `otlp` is given.
pub fn init(
    filter: tracing_subscriber::EnvFilter,
    ansi: bool,
    otlp: Option<&OtlpConfig>,
) -> Result<Guard, TelemetryError> {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter);
    let Some(otlp) = otlp else {
        tracing_subscriber::registry().with(fmt).try_init().map_err(|e| TelemetryError(e.to_string()))?;
        return Ok(Guard::default());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(&otlp.endpoint))
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| {
            TelemetryError(format!(
                "the OTLP exporter for `{}`: {e}",
                eventline_model::secrets::redact_url(&otlp.endpoint)
            ))
        })?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            // Room for a few seconds of spans of a busy gateway (~12 spans a query); beyond it
            // spans are dropped, never waited for.
            BatchConfigBuilder::default()
                .with_scheduled_delay(otlp.export_interval)
                .with_max_queue_size(65_536)
                .with_max_export_batch_size(2_048)
                .build(),
        )
        .build();
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(otlp.sample_ratio.clamp(0.0, 1.0)),
    ));
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(batch)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(otlp.service_name.clone()).build())
        .build();
    let tracer = provider.tracer("eventline");
    // Spans carry what names them and their own fields: no source locations, thread names or
    // busy/idle timings (each an attribute on every span; encoding them was most of the cost).
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry().with(fmt).with(otel).try_init().map_err(|e| TelemetryError(e.to_string()))?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(Guard { provider: Some(provider) })
}

struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

#[derive(Default)]
struct Out(Option<String>);

impl Injector for Out {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

/// Whether a W3C `traceparent` says its trace is recorded (the `sampled` flag). Work that only
/// feeds a trace (a span per consumed record, the writer's context for capture) is skipped for
/// traces that are not.
pub fn sampled(traceparent: &str) -> bool {
    exporting()
        && traceparent.len() == 55
        && traceparent.get(53..55).and_then(|f| u8::from_str_radix(f, 16).ok()).is_some_and(|flags| flags & 1 == 1)
}

/// Makes `span` a child of the W3C `traceparent` (a remote parent). Does nothing when spans are
/// not exported or the text is not a traceparent.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    if !exporting() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&One(traceparent));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The W3C `traceparent` naming `span`, when spans are exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut out = Out::default();
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    out.0
}

/// The `traceparent` to write into what `span` produces: the span's own when spans are exported,
/// otherwise the one the operation was given (passed on unchanged).
pub fn traceparent_or(span: &tracing::Span, given: Option<String>) -> Option<String> {
    traceparent(span).or(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampled_flag_is_read_from_the_traceparent() {
        EXPORTING.store(true, Ordering::Relaxed);
        assert!(sampled("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
        assert!(!sampled("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"));
        assert!(!sampled("00-short-01"));
        // A multi-byte character where the flags would be is not a panic.
        assert!(!sampled(&format!("00-{}é0", "a".repeat(49))));
        EXPORTING.store(false, Ordering::Relaxed);
        assert!(!sampled("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    }

    #[test]
    fn the_traces_url_is_the_endpoint_with_the_otlp_path() {
        assert_eq!(traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }

    #[test]
    fn without_an_exporter_spans_have_no_traceparent_and_a_given_one_passes_through() {
        let span = tracing::info_span!("x");
        assert_eq!(traceparent(&span), None);
        let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned();
        assert_eq!(traceparent_or(&span, Some(given.clone())), Some(given));
    }
}
