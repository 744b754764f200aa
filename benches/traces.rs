//! What tracing costs a request: `Scale` calls (each with a `traceparent`, as a traced
//! frontend sends them) from 16 concurrent clients into one service on the memory backend,
//! with traces off, sampled at 1 % and at 100 % (exported to an OTLP receiver in this
//! process), and at 100 % to a collector that accepts connections and never answers. Each configuration runs in a process of its own (the tracer is process-wide).
//! Prints `name: value` lines and the ratios. Run: `cargo bench --bench traces`.

use batch_scaler::{
    api::pb::{self, batch_scaler_client::BatchScalerClient},
    app::{self, Listeners},
    config::Settings,
    ops::{
        telemetry::{self, LogFormat},
        traces::{TraceSettings, Traces},
    },
    store::MemoryStore,
};
use batch_scaler_testkit::otlp::{OtlpReceiver, stalled_collector};
use serde_json::json;
use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, sync::oneshot};

const CALLS: usize = 40_000;
const CLIENTS: usize = 16;

async fn run(mode: &str) {
    let receiver = OtlpReceiver::start().await;
    // A collector that accepts connections and never answers: spans pile up and are dropped.
    let endpoint = if mode.contains("stalled") {
        stalled_collector().await
    } else {
        receiver.endpoint()
    };
    let traces = match mode {
        "off" => None,
        _ => {
            let (t, tracer) = Traces::start(&TraceSettings { endpoint }).unwrap();
            // Quiet logs: only the cost of traces is measured.
            // SAFETY: single-threaded setup, before any logging starts.
            unsafe { std::env::set_var("RUST_LOG", "warn") };
            telemetry::init(LogFormat::Text, Some(tracer));
            Some(t)
        }
    };
    let hras: Vec<_> = (0..100)
        .map(|i| json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "HorizontalRunnerAutoscaler",
            "metadata": {"name": format!("h{i}"), "namespace": "bench"}, "spec": {"scaleTargetRef": {"name": format!("h{i}")}}}))
        .collect();
    let store = Arc::new(MemoryStore::with_objects(hras).unwrap());
    let mut settings = Settings::default();
    settings.engine.window = Duration::from_millis(200);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(
        settings,
        store,
        Listeners::grpc(listener),
        async {
            let _ = stopped.await;
        },
    ));
    let client = BatchScalerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(CALLS / CLIENTS);
            for i in (c..CALLS).step_by(CLIENTS) {
                let mut request = tonic::Request::new(pb::ScaleEvent {
                    namespace: "bench".into(),
                    name: format!("h{}", i % 100),
                    amount: 1,
                    ..Default::default()
                });
                // Trace ids spread like random ones (ratio sampling reads their low bits).
                let low = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let traceparent = format!("00-{:016x}{low:016x}-{:016x}-01", i + 1, i + 1);
                request
                    .metadata_mut()
                    .insert("traceparent", traceparent.parse().unwrap());
                let t = Instant::now();
                client.scale(request).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(CALLS);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "traces {mode}: {:.0} calls/s; p50 {:?}; p99 {:?}; spans received {}, dropped {}",
        CALLS as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.99),
        receiver.spans().len(),
        batch_scaler::ops::traces::SPANS_DROPPED.get()
    );
    let _ = stop.send(());
    let _ = server.await;
    if let Some(t) = traces {
        t.shutdown();
    }
}

fn main() {
    if let Ok(mode) = std::env::var("BENCH_TRACES_MODE") {
        tokio::runtime::Runtime::new().unwrap().block_on(run(&mode));
        return;
    }
    let me = std::env::current_exe().unwrap();
    let mut rates = Vec::new();
    for (mode, sampler) in [
        ("off", None),
        ("1%", Some("0.01")),
        ("100%", Some("1.0")),
        ("100%-collector-stalled", Some("1.0")),
    ] {
        let mut cmd = Command::new(&me);
        cmd.env("BENCH_TRACES_MODE", mode);
        if let Some(ratio) = sampler {
            cmd.env("OTEL_TRACES_SAMPLER", "traceidratio")
                .env("OTEL_TRACES_SAMPLER_ARG", ratio);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("traces "))
            .unwrap_or("")
            .to_owned();
        println!("{line}");
        let rate: f64 = line
            .split(": ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(0.0);
        rates.push((mode, rate));
    }
    let off = rates[0].1;
    for (mode, rate) in &rates[1..] {
        println!(
            "traces {mode} / off: {:.2} of the calls per second",
            rate / off
        );
    }
}
