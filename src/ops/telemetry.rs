//! Logging setup: `RUST_LOG` filtering (default `info`), text or one JSON object per line (with
//! `trace_id`/`span_id` when a traced span is current), and, when traces are exported, the
//! OpenTelemetry layer over the same spans.

use super::traces;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::Targets,
    fmt::{self, FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What traces are made of: our spans, and the Kubernetes client's HTTP request spans.
pub fn trace_targets() -> Targets {
    Targets::new()
        .with_target("batch_scaler", Level::INFO)
        .with_target("kube_client::client::builder", Level::DEBUG)
}

/// Installs the global subscriber; with `tracer`, spans are exported as traces too.
pub fn init(format: LogFormat, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .fmt_fields(fmt::format::JsonFields::new())
            .event_format(WithTraceIds(
                fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            ))
            .boxed(),
    };
    let otel = tracer.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_filter(trace_targets())
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(otel)
        .init();
}

/// A JSON line with `trace_id` and `span_id` added when the event happens in a traced span.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match (traces::current(), line.trim_end().strip_suffix('}')) {
            (Some(sc), Some(body)) => writeln!(
                writer,
                "{body},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                sc.trace_id(),
                sc.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}
