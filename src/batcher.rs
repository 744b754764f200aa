//! Groups events per HRA over a window and hands each HRA's batch to the applier.
//!
//! An HRA's window opens with the first event that finds nothing pending for it, so a burst
//! is never split by a global tick and no event waits longer than one window (plus any apply
//! still running for its HRA). Intake only takes a short lock: it never waits for a write.
//! At most one apply runs per HRA; events arriving meanwhile wait for that HRA's next batch,
//! in order. Applies of different HRAs run concurrently, bounded by a fair semaphore.

use crate::{
    applier::{Applier, Batch},
    error::ApiError,
    event::ScaleEvent,
    expiring::ExpiringSet,
    metrics::Metrics,
    model::HraKey,
    planner::Fold,
    results::{BatchReport, Outcome},
};
use rustc_hash::FxHashMap;
use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    sync::{Notify, Semaphore, oneshot},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Receives the final outcome of the batch that held an event.
pub type Waiter = oneshot::Sender<Arc<BatchReport>>;

/// Whether an event was queued or dropped as a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for its HRA's next batch.
    Queued,
    /// Its `event_id` was seen within the dedupe TTL: not queued.
    Duplicate,
}

/// What follows a batch's events to its outcome: callers waiting for it, and the event ids
/// to forget if it fails (so a producer's retry is applied, not taken for a duplicate).
#[derive(Default)]
struct Riders {
    waiters: Vec<Waiter>,
    event_ids: Vec<String>,
}

impl Riders {
    fn extend(&mut self, other: Riders) {
        self.waiters.extend(other.waiters);
        self.event_ids.extend(other.event_ids);
    }
}

struct Pending {
    /// Folded as they arrive (O(job events), not O(events)).
    events: Fold,
    /// Producer events these stand for.
    count: u64,
    riders: Riders,
    /// When the first of these events was accepted.
    since: Instant,
    /// When this HRA's window closes.
    due: Instant,
}

#[derive(Default)]
struct State {
    /// Fx-hashed: keys are our own validated names, and this map is on the intake hot path.
    pending: FxHashMap<HraKey, Pending>,
    /// Window ends in the order they were opened, which is also the order of their times.
    windows: VecDeque<(Instant, HraKey)>,
    in_flight: HashSet<HraKey>,
    closed: bool,
}

impl State {
    /// Takes the batch of `key` if it may start now: events pending, no apply in flight, and
    /// its window closed (or `closed` set).
    fn take_ready(&mut self, key: &HraKey, now: Instant) -> Option<(Batch, Riders)> {
        if self.in_flight.contains(key) {
            return None;
        }
        let due = self.pending.get(key)?.due;
        if due > now && !self.closed {
            return None;
        }
        let pending = self.pending.remove(key)?;
        self.in_flight.insert(key.clone());
        let batch = Batch {
            id: uuid::Uuid::new_v4().simple().to_string(),
            event_count: pending.count,
            since: pending.since,
            key: key.clone(),
            events: pending.events.into_events(),
        };
        Some((batch, pending.riders))
    }
}

/// The windowed batcher.
pub struct Batcher {
    state: Mutex<State>,
    applier: Arc<Applier>,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
    window: Duration,
    /// Wakes the window loop (first window opened) or the drain (an apply finished).
    wake: Notify,
    abort: CancellationToken,
    dedupe: ExpiringSet<String>,
    metrics: Arc<Metrics>,
}

/// How long event ids are remembered by default.
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(3600);
/// How many event ids are remembered at most by default.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 100_000;

impl Batcher {
    /// A batcher with windows of `window`, applying through `applier`, at most
    /// `max_concurrent` applies at once.
    pub fn new(applier: Arc<Applier>, window: Duration, max_concurrent: usize) -> Self {
        Self {
            state: Mutex::default(),
            applier,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            tasks: TaskTracker::new(),
            window,
            wake: Notify::new(),
            abort: CancellationToken::new(),
            dedupe: ExpiringSet::new(DEFAULT_DEDUPE_TTL, DEFAULT_DEDUPE_CAPACITY),
            metrics: Arc::default(),
        }
    }

    /// Remembers event ids for `ttl`, at most `capacity` of them (oldest evicted first).
    pub fn with_dedupe(mut self, ttl: Duration, capacity: usize) -> Self {
        self.dedupe = ExpiringSet::new(ttl, capacity);
        self
    }

    /// Records into `metrics` instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Queues one event for its HRA's next batch, unless its `event_id` was seen within the
    /// dedupe TTL; `waiter` gets that batch's final outcome.
    pub fn submit(
        &self,
        event: &ScaleEvent,
        waiter: Option<Waiter>,
    ) -> Result<Submitted, ApiError> {
        let mut state = self.state.lock().expect("batcher lock");
        self.submit_locked(&mut state, event, waiter)
    }

    /// Queues several events under one lock; returns how many were queued and how many were
    /// duplicates.
    pub fn submit_all(&self, events: &[ScaleEvent]) -> Result<(u64, u64), ApiError> {
        let mut state = self.state.lock().expect("batcher lock");
        let (mut queued, mut duplicates) = (0, 0);
        for event in events {
            match self.submit_locked(&mut state, event, None)? {
                Submitted::Queued => queued += 1,
                Submitted::Duplicate => duplicates += 1,
            }
        }
        Ok((queued, duplicates))
    }

    fn submit_locked(
        &self,
        state: &mut State,
        event: &ScaleEvent,
        waiter: Option<Waiter>,
    ) -> Result<Submitted, ApiError> {
        if state.closed {
            return Err(ApiError::ShuttingDown);
        }
        if let Some(id) = &event.event_id {
            let (new, evicted) = self.dedupe.insert(id.clone());
            self.metrics.dedupe(u64::from(!new), evicted);
            if !new {
                return Ok(Submitted::Duplicate);
            }
        }
        // One lookup on the hot path; the key is cloned only when a window opens.
        let pending = match state.pending.get_mut(&event.key) {
            Some(pending) => pending,
            None => {
                let since = Instant::now();
                let due = since + self.window;
                if state.windows.is_empty() {
                    self.wake.notify_one();
                }
                state.windows.push_back((due, event.key.clone()));
                let fresh = Pending {
                    events: Fold::default(),
                    count: 0,
                    riders: Riders::default(),
                    since,
                    due,
                };
                state.pending.entry(event.key.clone()).or_insert(fresh)
            }
        };
        pending.events.push(event.plan_event());
        pending.count += 1;
        pending.riders.waiters.extend(waiter);
        pending.riders.event_ids.extend(event.event_id.clone());
        Ok(Submitted::Queued)
    }

    /// HRAs with events waiting for a batch.
    pub fn pending_hras(&self) -> usize {
        self.state.lock().expect("batcher lock").pending.len()
    }

    /// Applies in flight.
    pub fn in_flight(&self) -> usize {
        self.state.lock().expect("batcher lock").in_flight.len()
    }

    /// Closes windows as they come due until `shutdown`; then closes intake, applies what
    /// is pending at once, and returns when every batch has its final outcome. Retries stop
    /// being started `grace` after shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        loop {
            let next_due = self
                .state
                .lock()
                .expect("batcher lock")
                .windows
                .front()
                .map(|w| w.0);
            let due = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = due => self.dispatch_due(),
                () = self.wake.notified() => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.state.lock().expect("batcher lock").closed = true;
        let drain = self.drain();
        tokio::pin!(drain);
        tokio::select! {
            () = &mut drain => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!(?grace, "shutdown grace period over: no further retries");
                self.abort.cancel();
                drain.await;
            }
        }
    }

    /// Dispatches until nothing is pending or in flight.
    async fn drain(self: &Arc<Self>) {
        loop {
            let finished = self.wake.notified();
            let keys: Vec<HraKey> = {
                let state = self.state.lock().expect("batcher lock");
                if state.pending.is_empty() && state.in_flight.is_empty() {
                    break;
                }
                state.pending.keys().cloned().collect()
            };
            for key in keys {
                self.start(&key);
            }
            finished.await;
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Starts the batches of every window that has closed.
    fn dispatch_due(self: &Arc<Self>) {
        let now = Instant::now();
        let due: Vec<HraKey> = {
            let mut state = self.state.lock().expect("batcher lock");
            let mut due = Vec::new();
            while state.windows.front().is_some_and(|w| w.0 <= now) {
                due.extend(state.windows.pop_front().map(|w| w.1));
            }
            due
        };
        for key in due {
            self.start(&key);
        }
    }

    /// Moves the events pending for a batch's HRA into that batch (between its attempts).
    fn refill(&self, batch: &mut Batch, riders: &mut Riders) {
        let Some(pending) = self
            .state
            .lock()
            .expect("batcher lock")
            .pending
            .remove(&batch.key)
        else {
            return;
        };
        batch.event_count += pending.count;
        batch.events.extend(pending.events.into_events());
        riders.extend(pending.riders);
    }

    /// Starts `key`'s batch if it is ready; when it ends, starts the next one if that is due.
    fn start(self: &Arc<Self>, key: &HraKey) {
        let Some((mut batch, mut riders)) = self
            .state
            .lock()
            .expect("batcher lock")
            .take_ready(key, Instant::now())
        else {
            return;
        };
        let this = self.clone();
        self.tasks.spawn(async move {
            let report = {
                let _permit = this
                    .permits
                    .acquire()
                    .await
                    .expect("semaphore never closed");
                let mut refill = |batch: &mut Batch| this.refill(batch, &mut riders);
                this.applier
                    .apply(&mut batch, &mut refill, &this.abort)
                    .await
            };
            if report.outcome == Outcome::Failed {
                for id in &riders.event_ids {
                    this.dedupe.remove(id);
                }
            }
            for waiter in riders.waiters {
                let _ = waiter.send(report.clone());
            }
            this.state
                .lock()
                .expect("batcher lock")
                .in_flight
                .remove(&batch.key);
            // Events that came while this batch ran may be due already.
            this.start(&batch.key);
            this.wake.notify_one();
        });
    }
}
