//! Traces: the `tracing` spans exported as OpenTelemetry over OTLP/gRPC when an endpoint is
//! configured (`--otlp-endpoint`, else `OTEL_EXPORTER_OTLP_ENDPOINT`). The sampler and service
//! name follow OpenTelemetry's own variables (`OTEL_TRACES_SAMPLER`/`_ARG`, default parent-based
//! always on; `OTEL_SERVICE_NAME`, default `batch-scaler`). Finished spans go into a bounded
//! queue that one task exports in batches: a request never waits for the collector, and spans
//! that do not fit while it is slow or gone are dropped and counted.

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator},
    trace::{SpanContext, TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanData, SpanExporter, SpanProcessor, Tracer},
};
use prometheus_client::metrics::counter::Counter;
use std::{
    collections::HashMap,
    sync::{
        LazyLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::mpsc;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Finished spans waiting for export; past it spans are dropped.
pub const QUEUE: usize = 8192;
/// Most spans per export.
const BATCH: usize = 512;
/// How long spans wait for a batch to fill.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most links a batch span keeps (one per event it holds).
pub const MAX_LINKS: u32 = 1000;

static ON: AtomicBool = AtomicBool::new(false);

/// Spans dropped because the export queue was full (the collector slow or gone).
pub static SPANS_DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Spans the collector accepted.
pub static SPANS_EXPORTED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Spans whose export failed.
pub static SPANS_FAILED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Registers the export counters.
pub fn register(registry: &mut prometheus_client::registry::Registry) {
    registry.register(
        "trace_spans_dropped",
        "Finished spans dropped because the export queue was full (the collector slow or gone)",
        SPANS_DROPPED.clone(),
    );
    registry.register(
        "trace_spans_exported",
        "Spans the OTLP collector accepted",
        SPANS_EXPORTED.clone(),
    );
    registry.register(
        "trace_spans_export_failed",
        "Spans whose export to the OTLP collector failed",
        SPANS_FAILED.clone(),
    );
}

/// True once traces are exported: only then are span contexts captured per event.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Where traces go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSettings {
    /// The OTLP/gRPC endpoint (`http://collector:4317`).
    pub endpoint: String,
}

impl TraceSettings {
    /// `--otlp-endpoint`, else `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` (no exporter, no task)
    /// when neither is set.
    pub fn resolve(flag: Option<&str>) -> Option<Self> {
        let env = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
        flag.map(str::to_owned)
            .or(env)
            .filter(|e| !e.trim().is_empty())
            .map(|endpoint| Self { endpoint })
    }
}

/// Exported traces: flushed by [`Traces::shutdown`].
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Starts exporting to `settings.endpoint` (inside a Tokio runtime: the export task runs
    /// on it); the tracer feeds `tracing-opentelemetry`'s layer.
    pub fn start(settings: &TraceSettings) -> Result<(Self, Tracer), String> {
        use opentelemetry_otlp::WithExportConfig;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("--otlp-endpoint {}: {e}", settings.endpoint))?;
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "batch-scaler".into());
        let resource = Resource::builder().with_service_name(service).build();
        exporter.set_resource(&resource);
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(export(exporter, rx));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(QueueProcessor { tx })
            .with_max_links_per_span(MAX_LINKS)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("batch-scaler");
        ON.store(true, Ordering::Relaxed);
        Ok((Self { provider }, tracer))
    }

    /// Ends every span still queued (within a few seconds).
    pub fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        let _ = self.provider.shutdown_with_timeout(Duration::from_secs(3));
    }
}

/// Hands each finished, sampled span to the export task without waiting.
#[derive(Debug)]
struct QueueProcessor {
    tx: mpsc::Sender<SpanData>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() && self.tx.try_send(span).is_err() {
            SPANS_DROPPED.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

async fn export(exporter: opentelemetry_otlp::SpanExporter, mut rx: mpsc::Receiver<SpanData>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let first = rx.recv().await;
        let Some(first) = first else { return };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let sent = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
        match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(sent)).await {
            Ok(Ok(())) => {
                SPANS_EXPORTED.inc_by(n);
                if FAILING.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "batch_scaler::traces", "trace export works again");
                }
            }
            Ok(Err(e)) => failed(n, &e),
            Err(_) => failed(n, &OTelSdkError::Timeout(EXPORT_TIMEOUT)),
        }
    }
}

/// True from a failed export until the next one that works.
static FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Counts a failed export; the first of a run of failures is logged as a warning (the rest at
/// debug, so a collector that is down does not flood the log), and so is the recovery.
fn failed(n: u64, e: &OTelSdkError) {
    SPANS_FAILED.inc_by(n);
    if FAILING.swap(true, Ordering::Relaxed) {
        tracing::debug!(target: "batch_scaler::traces", spans = n, error = %e, "trace export failed");
    } else {
        tracing::warn!(target: "batch_scaler::traces", spans = n, error = %e,
            "trace export failed (counted in batch_scaler_trace_spans_export_failed_total; logged again once it works)");
    }
}

/// The span context of the current `tracing` span, when traces are exported and it has one.
pub fn current() -> Option<SpanContext> {
    if !on() {
        return None;
    }
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The remote parent W3C `traceparent`/`tracestate` headers name (gRPC metadata and gRPC-Web
/// headers alike).
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// `traceparent` (and `tracestate`) of `sc`, to pass a trace on.
pub fn inject(sc: &SpanContext) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let cx = Context::new().with_remote_span_context(sc.clone());
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    out
}

/// The remote span context a `traceparent` value names.
pub fn parse_traceparent(traceparent: &str) -> Option<SpanContext> {
    let headers = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&headers);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// A span named `name` whose parent is the remote span `traceparent` names (another replica's,
/// or a producer's); none unless traces are exported.
pub fn child_of_remote(name: &'static str, traceparent: &str) -> tracing::Span {
    if !on() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!("remote", otel.name = name, otel.kind = "server");
    if let Some(sc) = parse_traceparent(traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(sc));
    }
    span
}

/// The `traceparent` of the current span, empty when there is none (or traces are off).
pub fn current_traceparent() -> String {
    current()
        .map(|sc| inject(&sc).remove("traceparent").unwrap_or_default())
        .unwrap_or_default()
}

/// Makes `span` a child of the remote span `parent` (a no-op for an invalid one).
pub fn set_remote_parent(span: &tracing::Span, parent: Context) {
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(tp).unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_sampled() && sc.is_remote());
        assert_eq!(inject(&sc)["traceparent"], tp);
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(parse_traceparent("garbage").is_none());
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", tp.parse().unwrap());
        assert_eq!(
            extract(&headers).span().span_context().span_id(),
            sc.span_id()
        );
    }

    #[test]
    fn an_endpoint_comes_from_the_flag_first() {
        assert_eq!(
            TraceSettings::resolve(Some("http://c:4317"))
                .map(|s| s.endpoint)
                .as_deref(),
            Some("http://c:4317")
        );
        assert_eq!(TraceSettings::resolve(Some(" ")), None);
    }
}
