//! Promises that used to break at their edges, each proven through the engine as it runs in
//! the service (memory store, paused time): no double apply however many other writes land
//! during a back-off; a panic while applying ends its batch and nothing else; callers
//! waiting on repeats count toward the bounds and are dropped once gone; a pending event id
//! is never forgotten, however small the dedupe capacity.

mod common;

use async_trait::async_trait;
use batch_scaler::{
    config::Settings,
    domain::{
        event::ScaleEvent,
        hra::{Hra, HraKey},
        report::{BatchReport, Outcome},
    },
    engine::{
        Engine,
        applier::RetryPolicy,
        batcher::{IntakeError, Submitted},
    },
    store::{HraStore, StoreError, Write},
};
use chrono::TimeDelta;
use common::*;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

fn engine_on(
    store: Arc<dyn HraStore>,
    tune: impl FnOnce(&mut Settings),
) -> (Engine, CancellationToken) {
    let mut settings = Settings::default();
    settings.engine.window = Duration::ZERO;
    settings.engine.retry = RetryPolicy::with_deadline(Duration::from_secs(600));
    tune(&mut settings);
    let engine = Engine::new(store, &settings.engine, Arc::default());
    let stop = CancellationToken::new();
    tokio::spawn(
        engine
            .batcher
            .clone()
            .run(stop.clone(), Duration::from_secs(60)),
    );
    (engine, stop)
}

fn event(name: &str, amount: i32, event_id: Option<&str>) -> ScaleEvent {
    ScaleEvent {
        key: key("ns", name),
        amount,
        duration: Some(TimeDelta::minutes(5)),
        event_id: event_id.map(str::to_owned),
        job_id: None,
        repository: None,
        origin: Default::default(),
        started: None,
        times: None,
    }
}

async fn applied(engine: &Engine, event: &ScaleEvent) -> Arc<BatchReport> {
    let (tx, rx) = oneshot::channel();
    engine.batcher.submit(event, Some(tx)).unwrap();
    rx.await.expect("a final outcome")
}

#[tokio::test(start_paused = true)]
async fn forty_other_writes_during_a_back_off_do_not_reapply_job_less_events() {
    let store = Arc::new(FaultyStore::with_objects([hra_object("ns", "a", None)]).unwrap());
    let (ours, _stop) = engine_on(store.clone(), |_| {});
    let (theirs, _stop2) = engine_on(store.clone(), |_| {});
    let k = key("ns", "a");
    store.fault_next_write(
        &k,
        WriteFault::ApplyThenFail(StoreError::unknown("connection reset")),
    );
    let mut sub = watch(&ours.hub);
    let (tx, rx) = oneshot::channel();
    ours.batcher.submit(&event("a", 3, None), Some(tx)).unwrap();
    assert_eq!(next(&mut sub, 5).await.outcome, Outcome::Retrying);
    // Another replica writes forty batches to the same HRA while ours backs off.
    for _ in 0..40 {
        let r = applied(&theirs, &event("a", 0, None)).await;
        assert_eq!(r.outcome, Outcome::Applied);
    }
    let report = rx.await.unwrap();
    assert_eq!((report.outcome, report.attempt), (Outcome::Applied, 2));
    assert_eq!(
        store.get(&k).await.unwrap().capacity_reservations.len(),
        3,
        "the three reservations were written once"
    );
}

/// A memory store whose next write of an HRA panics.
struct PanickyStore {
    inner: FaultyStore,
    armed: AtomicBool,
}

#[async_trait]
impl HraStore for PanickyStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        self.inner.list(namespace).await
    }
    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected fault in a write");
        }
        self.inner.write(write).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_while_applying_fails_its_batch_and_the_hra_goes_on() {
    let store = Arc::new(PanickyStore {
        inner: FaultyStore::with_objects([hra_object("ns", "a", None)]).unwrap(),
        armed: AtomicBool::new(true),
    });
    let (engine, stop) = engine_on(store.clone(), |_| {});
    let failed = applied(&engine, &event("a", 1, Some("d1"))).await;
    assert_eq!(failed.outcome, Outcome::Failed);
    let error = failed.error.as_deref().unwrap_or("");
    assert!(
        error.contains("internal error while applying: injected fault in a write"),
        "{error}"
    );
    // The HRA goes on, the failed event's id is forgotten (a retry is applied), and
    // shutdown's drain is not left waiting.
    let next = applied(&engine, &event("a", 1, Some("d1"))).await;
    assert_eq!(next.outcome, Outcome::Applied);
    assert_eq!(
        store
            .get(&key("ns", "a"))
            .await
            .unwrap()
            .capacity_reservations
            .len(),
        1
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), async {
        while engine.batcher.in_flight() > 0 || engine.batcher.pending_hras() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("nothing left running");
}

#[tokio::test(start_paused = true)]
async fn callers_waiting_on_repeats_count_toward_the_bounds_until_they_leave() {
    let store = Arc::new(FaultyStore::with_objects([hra_object("ns", "a", None)]).unwrap());
    store.fail_next_writes(&key("ns", "a"), 1000, StoreError::transient("503"));
    let (engine, _stop) = engine_on(store.clone(), |s| s.engine.bounds.per_hra = 5);
    let original = event("a", 1, Some("d"));
    let (tx, _original_rx) = oneshot::channel();
    assert_eq!(
        engine.batcher.submit(&original, Some(tx)),
        Ok(Submitted::Queued)
    );
    // A producer retrying after each DEADLINE_EXCEEDED: four more callers wait on "d".
    let mut repeats = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = oneshot::channel();
        assert_eq!(
            engine.batcher.submit(&original, Some(tx)),
            Ok(Submitted::Joined)
        );
        repeats.push(rx);
    }
    assert_eq!(engine.batcher.held_events(), 5);
    let (tx, _rx) = oneshot::channel();
    let full = engine.batcher.submit(&original, Some(tx));
    assert!(matches!(full, Err(IntakeError::Exhausted(_))), "{full:?}");
    // Those callers give up: their room is free again.
    drop(repeats);
    let (tx, _rx) = oneshot::channel();
    assert_eq!(
        engine.batcher.submit(&original, Some(tx)),
        Ok(Submitted::Joined)
    );
    assert_eq!(engine.batcher.held_events(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_pending_event_id_is_never_forgotten_however_small_the_dedupe_capacity() {
    let store = Arc::new(FaultyStore::with_objects([hra_object("ns", "a", None)]).unwrap());
    store.fail_next_writes(&key("ns", "a"), 3, StoreError::transient("503"));
    let (engine, _stop) = engine_on(store.clone(), |s| {
        s.engine.idempotency.dedupe_capacity = 2;
    });
    let mut waiters = Vec::new();
    for id in ["d1", "d2", "d3", "d4"] {
        let (tx, rx) = oneshot::channel();
        engine
            .batcher
            .submit(&event("a", 1, Some(id)), Some(tx))
            .unwrap();
        waiters.push(rx);
    }
    // Redelivered while still pending: duplicates, queued nowhere.
    for id in ["d1", "d2"] {
        assert_eq!(
            engine.batcher.submit(&event("a", 1, Some(id)), None),
            Ok(Submitted::Duplicate),
            "{id}"
        );
    }
    for rx in waiters {
        assert_eq!(rx.await.unwrap().outcome, Outcome::Applied);
    }
    assert_eq!(
        store
            .get(&key("ns", "a"))
            .await
            .unwrap()
            .capacity_reservations
            .len(),
        4,
        "four deliveries, four reservations"
    );
}
