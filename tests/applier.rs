//! The apply loop against the memory store: re-plans, back-off schedule, deadline,
//! terminal errors and lost answers. Paused tokio time: back-offs take no real time.

mod common;

use batch_scaler::{
    applier::{Applier, Batch, RetryPolicy, system_clock},
    error::StoreError,
    planner::PlanEvent,
    results::{Outcome, ResultHub},
    store::{HraStore, MemoryStore, memory::WriteFault},
};
use chrono::TimeDelta;
use common::*;
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn setup(deadline_secs: u64) -> (Arc<MemoryStore>, Arc<ResultHub>, Applier) {
    let store = Arc::new(
        MemoryStore::with_objects([hra_object("ns", "a", None), hra_object("ns", "b", Some(5))])
            .unwrap(),
    );
    let hub = Arc::new(ResultHub::new(64, 64));
    let retry = RetryPolicy::with_deadline(Duration::from_secs(deadline_secs));
    let applier = Applier::new(store.clone(), hub.clone(), retry, false, system_clock());
    (store, hub, applier)
}

/// Applies a batch to its final outcome, with nothing to refill and no abort.
async fn run(
    applier: &Applier,
    mut batch: Batch,
) -> std::sync::Arc<batch_scaler::results::BatchReport> {
    applier
        .apply(&mut batch, &mut |_| {}, &CancellationToken::new())
        .await
}

fn batch(name: &str, amounts: &[i64]) -> Batch {
    Batch {
        id: format!("batch-{name}"),
        key: key("ns", name),
        events: amounts
            .iter()
            .map(|&amount| PlanEvent {
                amount,
                duration: TimeDelta::minutes(5),
                job: None,
            })
            .collect(),
        event_count: amounts.len() as u64,
        since: Instant::now(),
    }
}

#[test]
fn backoff_schedule_is_1_2_4_8_16_then_16() {
    let p = RetryPolicy::with_deadline(Duration::from_secs(600));
    let delays: Vec<u64> = (1..=8).map(|n| p.delay(n).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16, 16]);
    assert_eq!(p.delay(200).as_secs(), 16);
}

#[tokio::test(start_paused = true)]
async fn a_clean_apply_reads_once_writes_once_and_reports_applied() {
    let (store, hub, applier) = setup(600);
    let mut sub = watch(&hub);
    let report = run(&applier, batch("a", &[1, 1, -1])).await;
    assert_eq!(report.outcome, Outcome::Applied);
    assert_eq!(
        (
            report.counts.added,
            report.counts.completed,
            report.counts.after
        ),
        (2, 1, 1)
    );
    assert_eq!((report.attempt, report.events), (1, 3));
    assert_eq!((store.reads(), store.writes()), (1, 1));
    let hra = store.get(&key("ns", "a")).await.unwrap();
    assert_eq!(hra.capacity_reservations.len(), 1);
    assert_eq!(hra.applied_batches, vec!["batch-a"]);
    assert_eq!(next(&mut sub, 1).await.batch_id, "batch-a");
}

#[tokio::test(start_paused = true)]
async fn transient_errors_back_off_then_apply_with_the_same_batch_id() {
    let (store, hub, applier) = setup(600);
    let k = key("ns", "a");
    store.fail_next_writes(&k, 3, StoreError::Transient("503 busy".into()));
    let mut sub = watch(&hub);
    let started = Instant::now();
    let report = run(&applier, batch("a", &[1])).await;
    assert_eq!(started.elapsed(), Duration::from_secs(1 + 2 + 4));
    assert_eq!((report.outcome, report.attempt), (Outcome::Applied, 4));
    for attempt in 1..=3 {
        let r = next(&mut sub, 1).await;
        assert_eq!((r.outcome, r.attempt), (Outcome::Retrying, attempt));
        assert_eq!(r.error.as_deref(), Some("503 busy"));
        assert_eq!(r.batch_id, "batch-a");
        assert_eq!(
            r.counts.added, 1,
            "a retrying result carries its plan's counters"
        );
    }
    assert_eq!(next(&mut sub, 1).await.outcome, Outcome::Applied);
    assert_eq!(store.get(&k).await.unwrap().capacity_reservations.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_the_retry_deadline() {
    let (store, hub, applier) = setup(20);
    let k = key("ns", "a");
    store.fail_next_writes(&k, 10, StoreError::Transient("down".into()));
    let mut sub = watch(&hub);
    let started = Instant::now();
    let report = run(&applier, batch("a", &[1])).await;
    // Attempts at 0, 1, 3, 7 and 15 s; the next would start at 31 s, past the 20 s deadline.
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    assert_eq!((report.outcome, report.attempt), (Outcome::Failed, 5));
    assert!(
        report.error.as_deref().unwrap().contains("retry deadline"),
        "{:?}",
        report.error
    );
    let outcomes: Vec<_> = futures_collect(&mut sub, 5).await;
    assert_eq!(
        outcomes,
        [
            Outcome::Retrying,
            Outcome::Retrying,
            Outcome::Retrying,
            Outcome::Retrying,
            Outcome::Failed
        ]
    );
    assert!(
        store
            .get(&k)
            .await
            .unwrap()
            .capacity_reservations
            .is_empty()
    );
}

async fn futures_collect(sub: &mut batch_scaler::results::Subscription, n: usize) -> Vec<Outcome> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(next(sub, 60).await.outcome);
    }
    v
}

#[tokio::test(start_paused = true)]
async fn terminal_errors_fail_once_without_retry() {
    let (store, hub, applier) = setup(600);
    let mut sub = watch(&hub);
    let missing = Batch {
        key: key("ns", "gone"),
        ..batch("a", &[1])
    };
    let report = run(&applier, missing).await;
    assert_eq!((report.outcome, report.attempt), (Outcome::Failed, 1));
    assert!(report.error.as_deref().unwrap().contains("not found"));
    assert_eq!(store.writes(), 0);

    for e in [
        StoreError::Forbidden("rbac".into()),
        StoreError::Invalid("schema".into()),
    ] {
        store.fault_next_write(&key("ns", "a"), WriteFault::Fail(e));
        let report = run(&applier, batch("a", &[1])).await;
        assert_eq!((report.outcome, report.attempt), (Outcome::Failed, 1));
    }
    let outcomes = futures_collect(&mut sub, 3).await;
    assert_eq!(outcomes, [Outcome::Failed; 3]);
    assert!(sub.live.try_recv().is_err(), "nothing else reported");
}

#[tokio::test(start_paused = true)]
async fn a_conflict_re_plans_at_once_and_keeps_the_other_writers_reservation() {
    let (store, _hub, applier) = setup(600);
    let k = key("ns", "a");
    store.edit_after_next_read(&k, Box::new(|list| list.push(reservation("theirs", 300))));
    let started = Instant::now();
    let report = run(&applier, batch("a", &[2])).await;
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no back-off for a conflict"
    );
    assert_eq!((report.outcome, report.attempt), (Outcome::Applied, 1));
    assert_eq!(
        (report.counts.before, report.counts.after),
        (1, 3),
        "counters of the re-plan"
    );
    let hra = store.get(&k).await.unwrap();
    let names: Vec<_> = hra
        .capacity_reservations
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["theirs", "", ""]);
    assert_eq!((store.reads(), store.writes()), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn endless_conflicts_back_off_as_transient() {
    let (store, hub, applier) = setup(600);
    let k = key("ns", "a");
    for _ in 0..5 {
        store.edit_after_next_read(&k, Box::new(|list| list.push(reservation("x", 300))));
    }
    let mut sub = watch(&hub);
    let report = run(&applier, batch("a", &[1])).await;
    let first = next(&mut sub, 1).await;
    assert_eq!(first.outcome, Outcome::Retrying);
    assert!(first.error.as_deref().unwrap().contains("conflicting"));
    assert_eq!((report.outcome, report.attempt), (Outcome::Applied, 2));
    assert_eq!(store.get(&k).await.unwrap().capacity_reservations.len(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_answer_was_lost_is_not_applied_twice() {
    let (store, hub, applier) = setup(600);
    let k = key("ns", "a");
    store.fault_next_write(
        &k,
        WriteFault::ApplyThenFail(StoreError::Unknown("connection reset".into())),
    );
    let mut sub = watch(&hub);
    let report = run(&applier, batch("a", &[1])).await;
    assert_eq!(next(&mut sub, 1).await.outcome, Outcome::Retrying);
    assert_eq!((report.outcome, report.attempt), (Outcome::Applied, 2));
    assert_eq!(report.counts.added, 1);
    assert_eq!(store.get(&k).await.unwrap().capacity_reservations.len(), 1);
    assert_eq!(
        store.writes(),
        1,
        "the second attempt saw its batch id and did not write"
    );
}

#[tokio::test(start_paused = true)]
async fn abort_stops_retrying() {
    let (store, _hub, applier) = setup(600);
    let k = key("ns", "a");
    store.fail_next_writes(&k, 10, StoreError::Transient("down".into()));
    let abort = CancellationToken::new();
    let stopper = abort.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stopper.cancel();
    });
    let started = Instant::now();
    let report = applier
        .apply(&mut batch("a", &[1]), &mut |_| {}, &abort)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.error.as_deref().unwrap().contains("shutting down"));
    // Attempt 3 started when the 2 s back-off was cut short at 2.5 s.
    assert_eq!(report.attempt, 3);
    assert_eq!(started.elapsed(), Duration::from_millis(2500));
}

#[tokio::test(start_paused = true)]
async fn dry_run_plans_and_reports_without_changing_the_store() {
    let (store, hub, _) = setup(600);
    let dry = Applier::new(
        store.clone(),
        hub,
        RetryPolicy::with_deadline(Duration::from_secs(9)),
        true,
        system_clock(),
    );
    let k = key("ns", "b");
    store
        .edit(&k, Box::new(|l| l.push(reservation("", 60))))
        .unwrap();
    let before = store.object(&k).unwrap();
    let report = run(&dry, batch("b", &[3, -1])).await;
    assert_eq!(report.outcome, Outcome::DryRun);
    assert_eq!(
        (
            report.counts.before,
            report.counts.added,
            report.counts.completed,
            report.counts.after
        ),
        (1, 3, 1, 3)
    );
    assert_eq!(store.object(&k).unwrap(), before);
}
