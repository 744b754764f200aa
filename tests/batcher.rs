//! The windowed batcher over the memory store, in paused tokio time.

mod common;

use async_trait::async_trait;
use batch_scaler::{
    config::Settings,
    domain::{
        event::ScaleEvent,
        hra::{Hra, HraKey},
        report::Outcome,
    },
    engine::{
        Engine,
        applier::RetryPolicy,
        batcher::{Batcher, IntakeError},
        hub::ResultHub,
    },
    store::{HraStore, StoreError, Write},
};
use chrono::TimeDelta;
use common::*;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{sync::oneshot, time::Instant};
use tokio_util::sync::CancellationToken;

/// A memory store whose writes take `latency`, recording the most writes in flight at once.
struct SlowStore {
    inner: FaultyStore,
    latency: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl HraStore for SlowStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        self.inner.list(namespace).await
    }
    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.write(write).await
    }
}

const WINDOW: Duration = Duration::from_secs(1);

struct Rig {
    store: Arc<SlowStore>,
    hub: Arc<ResultHub>,
    batcher: Arc<Batcher>,
    stop: CancellationToken,
    run: tokio::task::JoinHandle<()>,
}

fn rig(names: &[&str], latency: Duration, max_concurrent: usize, grace: Duration) -> Rig {
    let inner = FaultyStore::with_objects(names.iter().map(|n| hra_object("ns", n, None))).unwrap();
    let store = Arc::new(SlowStore {
        inner,
        latency,
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let mut settings = Settings::default().engine;
    settings.window = WINDOW;
    settings.retry = RetryPolicy::with_deadline(Duration::from_secs(600));
    settings.max_concurrent_writes = max_concurrent;
    settings.replay_capacity = 256;
    settings.watcher_buffer = 256;
    let Engine { batcher, hub, .. } = Engine::new(store.clone(), &settings, Arc::default());
    let stop = CancellationToken::new();
    let run = tokio::spawn(batcher.clone().run(stop.clone(), grace));
    Rig {
        store,
        hub,
        batcher,
        stop,
        run,
    }
}

fn event(name: &str, amount: i32) -> ScaleEvent {
    ScaleEvent {
        key: key("ns", name),
        amount,
        duration: Some(TimeDelta::minutes(10)),
        event_id: None,
        job_id: None,
        repository: None,
        origin: Default::default(),
        started: None,
        times: None,
    }
}

fn submit(r: &Rig, name: &str, amounts: &[i32]) {
    for &a in amounts {
        r.batcher.submit(&event(name, a), None).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn one_batch_per_hra_per_window_in_arrival_order() {
    let r = rig(&["a", "b"], Duration::ZERO, 8, WINDOW);
    let mut sub = watch(&r.hub);
    let started = Instant::now();
    submit(&r, "a", &[-1]);
    submit(&r, "b", &[1]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    submit(&r, "a", &[1]);
    submit(&r, "b", &[-1]);
    let mut seen = [next(&mut sub, 5).await, next(&mut sub, 5).await];
    assert_eq!(
        started.elapsed(),
        WINDOW,
        "the window opened with the first event"
    );
    seen.sort_by(|x, y| x.key.cmp(&y.key));
    // a: [-1, +1] on an empty list leaves one entry; b: [+1, -1] leaves none.
    assert_eq!(
        (
            seen[0].key.name.as_str(),
            seen[0].events,
            seen[0].counts.after
        ),
        ("a", 2, 1)
    );
    assert_eq!(
        (
            seen[1].key.name.as_str(),
            seen[1].events,
            seen[1].counts.after
        ),
        ("b", 2, 0)
    );
    assert_eq!(r.store.inner.writes(), 2);
    tokio::time::sleep(WINDOW * 3).await;
    assert!(sub.live.try_recv().is_err(), "no batch without events");
}

#[tokio::test(start_paused = true)]
async fn events_arriving_during_an_apply_fold_into_the_next_batch_in_order() {
    let r = rig(&["a"], Duration::from_secs(5), 8, WINDOW);
    let mut sub = watch(&r.hub);
    let started = Instant::now();
    submit(&r, "a", &[1]);
    tokio::time::sleep(Duration::from_millis(1500)).await; // apply running until 6 s
    submit(&r, "a", &[1, 1]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    submit(&r, "a", &[-1]);
    assert_eq!(r.batcher.in_flight(), 1);
    let first = next(&mut sub, 10).await;
    assert_eq!((first.events, first.counts.after), (1, 1));
    assert_eq!(started.elapsed(), Duration::from_secs(6));
    let second = next(&mut sub, 10).await;
    // Started as soon as the first ended (its window had closed), took 5 s.
    assert_eq!(started.elapsed(), Duration::from_secs(11));
    assert_eq!(
        (second.events, second.counts.added, second.counts.completed),
        (3, 2, 1)
    );
    assert_eq!(second.counts.after, 2);
    assert_ne!(first.batch_id, second.batch_id);
}

#[tokio::test(start_paused = true)]
async fn applies_of_different_hras_run_concurrently_within_the_bound() {
    let names = ["a", "b", "c", "d", "e"];
    let r = rig(&names, Duration::from_secs(1), 2, WINDOW);
    let mut sub = watch(&r.hub);
    let started = Instant::now();
    for n in names {
        submit(&r, n, &[1]);
    }
    for _ in names {
        assert_eq!(next(&mut sub, 10).await.outcome, Outcome::Applied);
    }
    // Window 1 s, then 5 writes of 1 s, two at a time: 3 rounds.
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    assert_eq!(r.store.peak.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_hra_does_not_delay_another() {
    let r = rig(&["slow", "fast"], Duration::ZERO, 8, WINDOW);
    let slow = key("ns", "slow");
    r.store
        .inner
        .fail_next_writes(&slow, 3, StoreError::transient("503"));
    let mut sub = watch(&r.hub);
    let started = Instant::now();
    submit(&r, "slow", &[1]);
    submit(&r, "fast", &[1]);
    let mut fast_at = Vec::new();
    let mut slow_applied_at = None;
    while slow_applied_at.is_none() {
        let rep = next(&mut sub, 30).await;
        match rep.key.name.as_str() {
            "fast" => {
                fast_at.push(started.elapsed());
                if fast_at.len() == 1 {
                    // Intake never waits for the stuck HRA either.
                    submit(&r, "fast", &[1]);
                }
            }
            _ if rep.outcome == Outcome::Applied => slow_applied_at = Some(started.elapsed()),
            _ => assert_eq!(rep.outcome, Outcome::Retrying),
        }
    }
    assert_eq!(fast_at, [WINDOW, WINDOW * 2]);
    // Attempts at 1, 2, 4 and 8 s.
    assert_eq!(slow_applied_at, Some(Duration::from_secs(8)));
}

#[tokio::test(start_paused = true)]
async fn waiters_get_the_final_outcome_of_their_batch() {
    let r = rig(&["a"], Duration::ZERO, 8, WINDOW);
    r.store.inner.fault_next_write(
        &key("ns", "a"),
        WriteFault::Fail(StoreError::transient("x")),
    );
    let (tx, rx) = oneshot::channel();
    r.batcher.submit(&event("a", 1), Some(tx)).unwrap();
    let (tx2, rx2) = oneshot::channel();
    r.batcher.submit(&event("missing", 1), Some(tx2)).unwrap();
    let report = rx.await.unwrap();
    assert_eq!((report.outcome, report.attempt), (Outcome::Applied, 2));
    assert_eq!(rx2.await.unwrap().outcome, Outcome::Failed);
}

#[tokio::test(start_paused = true)]
async fn shutdown_applies_pending_events_at_once_and_refuses_new_ones() {
    let r = rig(
        &["a", "b"],
        Duration::from_millis(100),
        8,
        Duration::from_secs(30),
    );
    let mut sub = watch(&r.hub);
    submit(&r, "a", &[1, 1]);
    submit(&r, "b", &[1]);
    let started = Instant::now();
    r.stop.cancel();
    r.run.await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "no waiting for the window"
    );
    assert_eq!(next(&mut sub, 1).await.outcome, Outcome::Applied);
    assert_eq!(next(&mut sub, 1).await.outcome, Outcome::Applied);
    assert_eq!(
        r.store
            .get(&key("ns", "a"))
            .await
            .unwrap()
            .capacity_reservations
            .len(),
        2
    );
    assert!(matches!(
        r.batcher.submit(&event("a", 1), None),
        Err(IntakeError::ShuttingDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_events_queued_behind_a_running_apply() {
    let r = rig(&["a"], Duration::from_secs(2), 8, Duration::from_secs(30));
    submit(&r, "a", &[1]);
    tokio::time::sleep(Duration::from_millis(1500)).await; // first apply running
    submit(&r, "a", &[1, 1]);
    r.stop.cancel();
    r.run.await.unwrap();
    assert_eq!(
        r.store
            .get(&key("ns", "a"))
            .await
            .unwrap()
            .capacity_reservations
            .len(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_grace_ends_retrying() {
    let r = rig(&["a"], Duration::ZERO, 8, Duration::from_secs(3));
    r.store
        .inner
        .fail_next_writes(&key("ns", "a"), 20, StoreError::transient("down"));
    let mut sub = watch(&r.hub);
    submit(&r, "a", &[1]);
    let started = Instant::now();
    r.stop.cancel();
    r.run.await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    let mut last = next(&mut sub, 1).await;
    while last.outcome == Outcome::Retrying {
        last = next(&mut sub, 1).await;
    }
    assert_eq!(last.outcome, Outcome::Failed);
    assert!(last.error.as_deref().unwrap().contains("shutting down"));
}

#[tokio::test(start_paused = true)]
async fn events_for_a_retrying_hra_fold_into_its_next_attempt_in_order() {
    let r = rig(&["a"], Duration::ZERO, 8, WINDOW);
    let k = key("ns", "a");
    r.store
        .inner
        .fail_next_writes(&k, 2, StoreError::transient("503"));
    let mut sub = watch(&r.hub);
    submit(&r, "a", &[2]);
    let first = next(&mut sub, 5).await; // attempt 1 failed at 1 s; next at 2 s
    assert_eq!((first.outcome, first.events), (Outcome::Retrying, 1));
    submit(&r, "a", &[-1, 1]);
    let (tx, rx) = oneshot::channel();
    r.batcher.submit(&event("a", 1), Some(tx)).unwrap();
    let second = next(&mut sub, 5).await;
    assert_eq!(
        (second.outcome, second.attempt, second.events),
        (Outcome::Retrying, 2, 4)
    );
    let done = next(&mut sub, 5).await;
    assert_eq!(
        (done.outcome, done.attempt, done.events),
        (Outcome::Applied, 3, 4)
    );
    assert_eq!(
        (done.counts.added, done.counts.completed, done.counts.after),
        (4, 1, 3)
    );
    assert_eq!(done.batch_id, first.batch_id);
    assert_eq!(
        rx.await.unwrap().batch_id,
        first.batch_id,
        "the waiter moved with its event"
    );
    assert_eq!(r.store.inner.writes(), 3);
    tokio::time::sleep(WINDOW * 3).await;
    assert!(
        sub.live.try_recv().is_err(),
        "nothing left for another batch"
    );
}
