//! Groups events per HRA over a window and hands each HRA's batch to the applier.
//!
//! Intake only takes a short lock: it never waits for a write. At most one apply runs per
//! HRA; events arriving meanwhile wait for that HRA's next batch, in order. Applies of
//! different HRAs run concurrently, bounded by a fair semaphore.

use crate::{
    applier::{Applier, Batch},
    error::ApiError,
    event::ScaleEvent,
    model::HraKey,
    planner::PlanEvent,
    results::BatchReport,
};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Receives the final outcome of the batch that held an event.
pub type Waiter = oneshot::Sender<Arc<BatchReport>>;

#[derive(Default)]
struct Pending {
    events: Vec<PlanEvent>,
    waiters: Vec<Waiter>,
}

#[derive(Default)]
struct State {
    pending: HashMap<HraKey, Pending>,
    in_flight: HashSet<HraKey>,
    closed: bool,
}

/// The windowed batcher.
pub struct Batcher {
    state: Mutex<State>,
    applier: Arc<Applier>,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
    finished: Notify,
    abort: CancellationToken,
}

impl Batcher {
    /// A batcher applying through `applier`, at most `max_concurrent` applies at once.
    pub fn new(applier: Arc<Applier>, max_concurrent: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            applier,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            tasks: TaskTracker::new(),
            finished: Notify::new(),
            abort: CancellationToken::new(),
        })
    }

    /// Queues one event for its HRA's next batch; `waiter` gets that batch's final outcome.
    pub fn submit(&self, event: &ScaleEvent, waiter: Option<Waiter>) -> Result<(), ApiError> {
        let mut state = self.state.lock().expect("batcher lock");
        if state.closed {
            return Err(ApiError::ShuttingDown);
        }
        let pending = state.pending.entry(event.key.clone()).or_default();
        pending.events.push(event.plan_event());
        pending.waiters.extend(waiter);
        Ok(())
    }

    /// HRAs with events waiting for a batch.
    pub fn pending_hras(&self) -> usize {
        self.state.lock().expect("batcher lock").pending.len()
    }

    /// Applies in flight.
    pub fn in_flight(&self) -> usize {
        self.state.lock().expect("batcher lock").in_flight.len()
    }

    /// Runs window after window until `shutdown`; then closes intake, applies what is
    /// pending at once, and returns when every batch has its final outcome. Retries stop
    /// being started `grace` after shutdown.
    pub async fn run(
        self: Arc<Self>,
        window: Duration,
        shutdown: CancellationToken,
        grace: Duration,
    ) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.dispatch(),
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
            let finished = self.finished.notified();
            self.dispatch();
            {
                let state = self.state.lock().expect("batcher lock");
                if state.pending.is_empty() && state.in_flight.is_empty() {
                    break;
                }
            }
            finished.await;
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Starts one apply for every HRA that has events and none in flight.
    fn dispatch(self: &Arc<Self>) {
        let batches: Vec<(Batch, Vec<Waiter>)> = {
            let mut state = self.state.lock().expect("batcher lock");
            let ready: Vec<HraKey> = state
                .pending
                .keys()
                .filter(|k| !state.in_flight.contains(*k))
                .cloned()
                .collect();
            ready
                .into_iter()
                .map(|key| {
                    let pending = state.pending.remove(&key).unwrap_or_default();
                    state.in_flight.insert(key.clone());
                    let batch = Batch {
                        id: uuid::Uuid::new_v4().simple().to_string(),
                        event_count: pending.events.len() as u64,
                        key,
                        events: pending.events,
                    };
                    (batch, pending.waiters)
                })
                .collect()
        };
        for (batch, waiters) in batches {
            let applier = self.applier.clone();
            let permits = self.permits.clone();
            let abort = self.abort.clone();
            let this = self.clone();
            self.tasks.spawn(async move {
                let report = {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .expect("semaphore never closed");
                    applier.apply(&batch, &abort).await
                };
                for waiter in waiters {
                    let _ = waiter.send(report.clone());
                }
                this.state
                    .lock()
                    .expect("batcher lock")
                    .in_flight
                    .remove(&batch.key);
                this.finished.notify_one();
            });
        }
    }
}
