//! A collector that accepts connections but never answers: requests go on as before, no event
//! is lost, and the spans that cannot be queued are dropped and counted. (What tracing costs
//! a request is measured by `cargo bench --bench traces`.)

mod common;

use batch_scaler::{
    ops::{
        telemetry::{self, LogFormat},
        traces::{self, QUEUE, TraceSettings, Traces},
    },
    store::{HraStore, MemoryStore},
};
use batch_scaler_testkit::otlp::stalled_collector;
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_collector_loses_no_event_and_its_spans_are_dropped_and_counted() {
    // Accepts, then holds every connection without a byte in answer.
    let endpoint = stalled_collector().await;
    let (traces, tracer) = Traces::start(&TraceSettings { endpoint }).unwrap();
    telemetry::init(LogFormat::Text, Some(tracer));

    let (server, store) = TestServer::with_store(
        MemoryStore::with_objects([hra_object("ci", "app", None)]).unwrap(),
        test_settings(Duration::from_millis(100)),
    )
    .await;
    // Each call makes two spans (the RPC, the enqueue): well past the export queue.
    const CALLS: usize = 6000;
    let client = server.client().await;
    let mut tasks = Vec::new();
    for t in 0..20 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..CALLS).step_by(20) {
                let event = job_ev("ci", "app", 1, &format!("{i}"), &format!("d-{i}"));
                client.scale(event).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eventually(Duration::from_secs(30), "every event applied", || async {
        store.get(&key("ci", "app")).await.unwrap().units() == CALLS as u64
    })
    .await;
    let dropped = traces::SPANS_DROPPED.get();
    assert!(
        dropped as usize >= 2 * CALLS - QUEUE - 1024,
        "dropped {dropped}"
    );
    assert_eq!(traces::SPANS_EXPORTED.get(), 0);
    let text = scrape(server.http_addr).await;
    assert!(sample(&text, "batch_scaler_trace_spans_dropped_total") >= dropped as f64);
    println!(
        "stalled collector: {CALLS} calls answered, every event applied, {dropped} spans dropped"
    );
    traces.shutdown();
}
