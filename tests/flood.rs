//! Flooding an HRA whose writes keep failing with id-carrying events: past its bound every
//! event is refused with RESOURCE_EXHAUSTED and the process's memory stays flat. Alone in its
//! own test binary, so that no other test's allocations are counted.

mod common;

use batch_scaler::{api::pb, store::StoreError};
use common::*;
use std::time::Duration;
use tonic::Code;

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    batch_scaler_testkit::process::rss_kib("self")
}

fn flood(round: usize, n: usize) -> Vec<pb::ScaleEvent> {
    (0..n)
        .map(|i| {
            let id = format!("delivery-{round:04}-{i:06}-7b5c0e2a-1f9d-11ef-8f3c-2f6a1d0e5b9a");
            job_ev("ci", "stuck", 1, &format!("{round}{i:06}"), &id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_a_failing_hra_is_refused_and_memory_stays_flat() {
    const BOUND: u64 = 1000;
    const PER_ROUND: usize = 5000;
    const TASKS: usize = 8;
    const ROUNDS: usize = 5000;
    let store = FaultyStore::with_objects([hra_object("ci", "stuck", None)]).unwrap();
    store.fail_next_writes(&key("ci", "stuck"), 1000, StoreError::transient("503"));
    let mut settings = test_settings(Duration::from_millis(50));
    settings.engine.retry.deadline = Duration::from_secs(3600);
    settings.engine.bounds.per_hra = BOUND;
    let (server, _store) = TestServer::with_store(store, settings).await;

    // Fill the bound with one stream (refused at the first event past it), twice.
    let mut accepted = 0;
    for round in 0..2 {
        let err = server
            .try_publish(flood(round, PER_ROUND))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
        accepted += if round == 0 { BOUND } else { 0 };
    }
    let before = rss_kib();
    // Every event of the flood reaches intake: one unary call each, from 8 connections.
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let mut client = server.client().await;
        tasks.spawn(async move {
            for round in 0..ROUNDS {
                let event = flood(2 + task * ROUNDS + round, 1).remove(0);
                let refused = client.scale(event).await.unwrap_err();
                assert_eq!(
                    refused.code(),
                    Code::ResourceExhausted,
                    "{}",
                    refused.message()
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let after = rss_kib();
    let sent = TASKS * ROUNDS;
    // Kept, each of these events would cost ~300 bytes (README): ~11 MiB for this flood.
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("flood: {sent} refused events, RSS {before} KiB -> {after} KiB");
    assert!(
        grown_mib < 3.0,
        "RSS grew {grown_mib:.1} MiB over {sent} refused events"
    );
    let metrics = scrape(server.http_addr).await;
    assert!(
        sample(
            &metrics,
            "batch_scaler_events_received_total{result=\"exhausted\"}"
        ) >= (TASKS * ROUNDS) as f64,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "batch_scaler_events_received_total{result=\"accepted\"}"
        ),
        accepted as f64
    );
}
