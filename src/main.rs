use batch_scaler::{
    app,
    config::{Args, Tool},
    ops::{
        telemetry,
        traces::{TraceSettings, Traces},
    },
};
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(tool) = args.command.take() {
        let result = match tool {
            Tool::Replay(replay) => app::tools::replay(&replay),
            Tool::RecordDeliveries(record) => app::tools::record_deliveries(&record).await,
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
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
