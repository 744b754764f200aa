use batch_scaler::{
    app,
    config::Args,
    ops::{
        telemetry,
        traces::{TraceSettings, Traces},
    },
};
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let traces =
        match TraceSettings::resolve(args.otlp_endpoint.as_deref()).map(|s| Traces::start(&s)) {
            None => None,
            Some(Ok(started)) => Some(started),
            Some(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let (traces, tracer) = traces.map_or((None, None), |(t, tracer)| (Some(t), Some(tracer)));
    telemetry::init(args.log_format, tracer);
    let result = app::run(args, app::shutdown_signal()).await;
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
