//! Fair batches: a batch that would pass `--max-hra-bytes` applies what fits in arrival order
//! and fails only the rest, so one producer's flood fails its own events, never an event
//! another producer had accepted earlier in the same window; each failed event reaches its
//! producer (a waiting caller, `WatchBatches`) and is counted.

mod common;

use batch_scaler::{
    api::pb,
    store::{HraStore, MemoryStore},
};
use common::*;
use std::time::Duration;

const APPLIED: i32 = pb::Outcome::Applied as i32;
const FAILED: i32 = pb::Outcome::Failed as i32;

fn long_job(i: usize) -> String {
    format!("{i:06}-{}", "j".repeat(200))
}

#[tokio::test]
async fn a_flood_fails_its_own_overflow_and_never_an_earlier_neighbour() {
    let mut settings = test_settings(Duration::from_millis(500));
    settings.engine.max_hra_bytes = 64 * 1024;
    let store = MemoryStore::with_objects([hra_object("ci", "a", Some(100_000))]).unwrap();
    let (server, store) = TestServer::with_store(store, settings).await;
    let mut results = watch_all(&server).await;
    // Another producer's job, accepted first in the window, its caller waiting.
    let mut early = server.client().await;
    let early = tokio::spawn(async move {
        early
            .scale_and_wait(job_ev("ci", "a", 1, "early", "d-early"))
            .await
            .unwrap()
            .into_inner()
    });
    eventually(Duration::from_secs(5), "the early event queued", || async {
        let mut c = server.client().await;
        c.get_stats(pb::GetStatsRequest {})
            .await
            .is_ok_and(|s| s.into_inner().pending_events == 1)
    })
    .await;
    // Then a flood of 999 jobs with 200-byte ids (~300 bytes of HRA each: ~300 KB), and the
    // flood's last job waited for.
    const FLOOD: usize = 1000;
    server
        .publish(
            (0..FLOOD - 1)
                .map(|i| job_ev("ci", "a", 1, &long_job(i), &format!("d-{i}")))
                .collect(),
        )
        .await;
    let mut late = server.client().await;
    let last = long_job(FLOOD - 1);
    let late = tokio::spawn(async move {
        late.scale_and_wait(job_ev("ci", "a", 1, &last, "d-last"))
            .await
            .unwrap()
            .into_inner()
    });
    let early = early.await.unwrap().batch.unwrap();
    assert_eq!(early.outcome, APPLIED, "{early:?}");
    let late = late.await.unwrap().batch.unwrap();
    assert_eq!(late.outcome, FAILED, "{late:?}");
    assert!(late.error.contains("did not fit"), "{}", late.error);
    assert!(late.error.contains("--max-hra-bytes"), "{}", late.error);
    // WatchBatches: the overflow's own FAILED result, and the rest APPLIED.
    let (mut failed, mut applied) = (None, None);
    while failed.is_none() || applied.is_none() {
        let r = recv(&mut results).await;
        match r.outcome {
            FAILED => failed = Some(r),
            APPLIED => applied = Some(r),
            _ => {}
        }
    }
    let (failed, applied) = (failed.unwrap(), applied.unwrap());
    assert_eq!(failed.events as usize + applied.events as usize, 1 + FLOOD);
    assert!(
        failed.events > 0 && applied.events > 1,
        "{failed:?} {applied:?}"
    );
    assert!(
        failed.batch_id.ends_with("-overflow"),
        "{}",
        failed.batch_id
    );
    let hra = store.get(&key("ci", "a")).await.unwrap();
    let names: Vec<&str> = hra
        .capacity_reservations
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("early")),
        "the early job holds its runner"
    );
    assert_eq!(names.len(), applied.events as usize);
    assert!(hra.object_bytes <= 64 * 1024, "{}", hra.object_bytes);
    eprintln!(
        "fair batch: {} events applied (the early one first), {} of the flood failed",
        applied.events, failed.events
    );
    let metrics = scrape(server.http_addr).await;
    assert_eq!(
        sample(&metrics, "batch_scaler_hra_too_large_events_total"),
        failed.events as f64
    );
    // A failed event's id is forgotten: sent again, it is not a duplicate.
    let mut again = server.client().await;
    let ack = again
        .scale(job_ev("ci", "a", 1, &long_job(FLOOD - 1), "d-last"))
        .await
        .unwrap()
        .into_inner();
    assert!(!ack.duplicate);
}
