//! Memory by replicas, not events: a burst of huge events (10,000 of `amount: 1000`) is
//! refused at intake by the bounds, which count replicas; with the bounds raised out of the
//! way, the units beyond the named ones are one grouped reservation, never written out one by
//! one, so the process's peak RSS grows by a few MiB either way. Alone in its
//! own test binary, so that no other test's allocations are counted.

mod common;

use batch_scaler::{api::pb, config::Settings};
use batch_scaler_testkit::process::{peak_rss_kib, reset_peak_rss, rss_kib};
use common::*;
use std::time::Duration;
use tonic::Code;

const EVENTS: usize = 10_000;
/// A batch writing an HRA near `--max-hra-bytes` (1 MiB: 10,000 reservations): the memory
/// store holds and patches it as JSON trees (several times its size); no more than that.
const WRITE_PEAK_MIB: f64 = 40.0;
/// A batch of 10,000,000 units held as one group: a few MiB.
const REFUSED_PEAK_MIB: f64 = 8.0;

fn huge_events(round: usize) -> Vec<pb::ScaleEvent> {
    (0..EVENTS)
        .map(|i| pb::ScaleEvent {
            event_id: format!("delivery-{round}-{i:05}"),
            ..ev("ci", "big", 1000)
        })
        .collect()
}

/// Runs `load` and returns how far the process's peak RSS rose above its RSS before, in MiB.
async fn peak_growth_mib(load: impl std::future::Future<Output = ()>) -> f64 {
    let reset = reset_peak_rss();
    let before = if reset {
        rss_kib("self")
    } else {
        peak_rss_kib("self")
    };
    load.await;
    peak_rss_kib("self").saturating_sub(before) as f64 / 1024.0
}

async fn server(tune: impl FnOnce(&mut Settings)) -> TestServer {
    let store = FaultyStore::with_objects([hra_object("ci", "big", None)]).unwrap();
    let mut settings = test_settings(Duration::from_millis(200));
    tune(&mut settings);
    TestServer::with_store(store, settings).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_of_a_thousand_replicas_cost_a_few_mib() {
    // At the default bounds: refused at intake once the HRA holds 10,000 replicas.
    let defaults = server(|_| {}).await;
    let mut watch = watch_all(&defaults).await;
    let grown = peak_growth_mib(async {
        let err = defaults.try_publish(huge_events(0)).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
        assert!(
            err.message().starts_with(
                "events[10]: HRA ci/big already holds 10000 pending replicas (--max-pending-per-hra)"
            ),
            "{}",
            err.message()
        );
        let applied = recv(&mut watch).await;
        assert_eq!(
            (applied.outcome, applied.added),
            (pb::Outcome::Applied as i32, 10_000)
        );
    })
    .await;
    eprintln!("memory: at the default bounds, peak RSS grew {grown:.1} MiB");
    assert!(grown < WRITE_PEAK_MIB, "peak RSS grew {grown:.1} MiB");

    // Bounds raised out of the way: all 10,000 (10,000,000 replicas) accepted; the units
    // beyond the named ones are one grouped reservation, so the batch applies without ever
    // writing 10,000,000 entries out.
    let raised = server(|s| {
        s.engine.bounds.per_hra = u64::MAX;
        s.engine.bounds.total = u64::MAX;
    })
    .await;
    let mut watch = watch_all(&raised).await;
    let grown = peak_growth_mib(async {
        let summary = raised.try_publish(huge_events(1)).await.unwrap();
        assert_eq!(summary.accepted, EVENTS as u64);
        let applied = recv(&mut watch).await;
        assert_eq!(
            applied.outcome,
            pb::Outcome::Applied as i32,
            "{}",
            applied.error
        );
        assert_eq!((applied.added, applied.after), (10_000_000, 10_000_000));
        let target = raised
            .client()
            .await
            .get_target(pb::TargetRef {
                namespace: "ci".into(),
                name: "big".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            target.capacity_reservations.len(),
            100 + 1,
            "named, one group"
        );
        assert_eq!(target.reserved_replicas, 10_000_000);
    })
    .await;
    eprintln!("memory: with the bounds raised, peak RSS grew {grown:.1} MiB");
    assert!(grown < REFUSED_PEAK_MIB, "peak RSS grew {grown:.1} MiB");
}
