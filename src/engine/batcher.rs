//! Intake and windows: groups events per HRA over a window and starts each HRA's batches,
//! one at a time per HRA ([`super::run::BatchRun`] owns a batch from then on).
//!
//! An HRA's window opens with the first event that finds nothing pending for it, so a burst
//! is never split by a global tick and no event waits longer than one window (plus any batch
//! still running for its HRA). Intake only takes a short lock: it never waits for a write.
//! Batches of different HRAs run concurrently; their attempts share the write slots.

use super::{
    applier::Applier,
    idempotency::{Idempotency, Sighting},
    ledgers::Ledgers,
    queue::{Bounds, Exhausted, Queues, Source, Waiter, weight},
    run::{BatchRun, Shared},
    sink::OutcomeSink,
    slots::WriteSlots,
    warm::Forecasts,
};
use crate::{
    domain::{event::ScaleEvent, hra::HraKey},
    ops::traces,
};
use futures::FutureExt as _;
use opentelemetry::trace::SpanContext;
use parking_lot::Mutex;
use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};
use tokio::{sync::Notify, time::Instant};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Whether an event was queued or dropped as a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for its HRA's next batch.
    Queued,
    /// Its `event_id` is held: its batch applied, or (for a caller that does not wait) it is
    /// pending still. Not queued.
    Duplicate,
    /// Its `event_id` belongs to an event whose batch is not final yet: not queued, and the
    /// waiter gets that batch's final outcome.
    Joined,
}

/// Why intake refused an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The service is shutting down and takes no new events.
    #[error("shutting down: no new events are accepted")]
    ShuttingDown,
    /// A bound on pending events is reached.
    #[error(transparent)]
    Exhausted(#[from] Exhausted),
}

/// The windowed batcher.
pub struct Batcher {
    shared: Arc<Shared>,
    idempotency: Arc<Idempotency>,
    ledgers: Arc<Ledgers>,
    forecasts: Option<Arc<Forecasts>>,
    tasks: TaskTracker,
    window: Duration,
    /// Wakes the window loop (first window opened) or the drain (a batch ended).
    wake: Notify,
}

impl Batcher {
    /// A batcher with windows of `window`, applying through `applier` at most
    /// `max_concurrent` attempts at once, reporting to `sink`.
    pub fn new(
        applier: Applier,
        sink: OutcomeSink,
        idempotency: Arc<Idempotency>,
        window: Duration,
        max_concurrent: usize,
        bounds: Bounds,
        ledgers: Arc<Ledgers>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                queues: Mutex::new(Queues::new(bounds)),
                applier,
                sink,
                slots: WriteSlots::new(max_concurrent),
                abort: CancellationToken::new(),
            }),
            idempotency,
            ledgers,
            forecasts: None,
            tasks: TaskTracker::new(),
            window,
            wake: Notify::new(),
        }
    }

    /// Teaches each queued job's arrival to `forecasts` (`--warm-runners forecast`).
    pub fn with_forecasts(mut self, forecasts: Option<Arc<Forecasts>>) -> Self {
        self.forecasts = forecasts;
        self
    }

    /// Queues one event for its HRA's next batch, unless its `event_id` is held; `waiter`
    /// gets that batch's final outcome.
    pub fn submit(
        &self,
        event: &ScaleEvent,
        waiter: Option<Waiter>,
    ) -> Result<Submitted, IntakeError> {
        // The span the event arrived in: its batch's span links to it.
        let trace = traces::current();
        let mut queues = self.shared.queues.lock();
        self.submit_locked(&mut queues, event, waiter, trace.as_ref())
    }

    /// Queues several events under one lock, stopping at the first refused; returns how many
    /// were queued and how many were duplicates before it, and why it was refused.
    pub fn submit_all(&self, events: &[ScaleEvent]) -> (u64, u64, Option<IntakeError>) {
        let trace = traces::current();
        let mut queues = self.shared.queues.lock();
        let (mut queued, mut duplicates) = (0, 0);
        for event in events {
            match self.submit_locked(&mut queues, event, None, trace.as_ref()) {
                Ok(Submitted::Queued) => queued += 1,
                Ok(Submitted::Duplicate | Submitted::Joined) => duplicates += 1,
                Err(e) => return (queued, duplicates, Some(e)),
            }
        }
        (queued, duplicates, None)
    }

    fn submit_locked(
        &self,
        queues: &mut Queues,
        event: &ScaleEvent,
        waiter: Option<Waiter>,
        trace: Option<&SpanContext>,
    ) -> Result<Submitted, IntakeError> {
        if queues.closed {
            return Err(IntakeError::ShuttingDown);
        }
        if event.is_record_only() {
            // A job's times alone: its ledger takes them; no batch does.
            self.ledgers.record(event);
            return Ok(Submitted::Queued);
        }
        let waiter = match &event.event_id {
            Some(id) => {
                if waiter.is_some() {
                    // A waiting repeat holds room like an event: make sure there is some
                    // (dropping waiters whose callers left first).
                    if queues.check_room(&event.key, 1).is_err() {
                        for (key, gone) in self.idempotency.drop_gone() {
                            queues.release_joined(&key, gone);
                        }
                    }
                    queues.check_room(&event.key, weight(i64::from(event.amount)))?;
                }
                match self.idempotency.sighting(id, &event.key, waiter) {
                    Sighting::First(waiter) => waiter,
                    Sighting::Duplicate => return Ok(Submitted::Duplicate),
                    Sighting::Joined { gone } => {
                        queues.release_joined(&event.key, gone);
                        queues.hold_joined(&event.key, 1);
                        return Ok(Submitted::Joined);
                    }
                }
            }
            None => waiter,
        };
        let pushed = queues.push(
            &event.key,
            event.plan_event(),
            waiter,
            event.event_id.as_ref(),
            Source {
                origin: event.origin,
                repository: event.repository.as_ref(),
                trace,
            },
            self.window,
        );
        // Refused, not seen: the producer's retry must not count as a duplicate.
        let first = pushed.inspect_err(|_| self.idempotency.forget_events(&event.event_id))?;
        if first {
            self.wake.notify_one();
        }
        self.ledgers.record(event);
        if let Some(forecasts) = &self.forecasts {
            forecasts.observe(event);
        }
        Ok(Submitted::Queued)
    }

    /// HRAs with events waiting for a batch.
    pub fn pending_hras(&self) -> usize {
        self.shared.queues.lock().pending_hras()
    }

    /// What is held against the bounds: replicas queued and in batches not yet final, and
    /// callers waiting on repeats.
    pub fn held_events(&self) -> u64 {
        self.shared.queues.lock().held()
    }

    /// Batches not final yet (attempting, or waiting to retry).
    pub fn in_flight(&self) -> usize {
        self.shared.queues.lock().running()
    }

    /// Attempts holding a write slot now.
    pub fn writing(&self) -> usize {
        self.shared.slots.in_use()
    }

    /// Closes windows as they come due until `shutdown`; then closes intake, applies what
    /// is pending at once, and returns when every batch has its final outcome. Retries stop
    /// being started `grace` after shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        loop {
            let next_due = self.shared.queues.lock().next_due();
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
        self.shared.queues.lock().closed = true;
        let drain = self.drain();
        tokio::pin!(drain);
        tokio::select! {
            () = &mut drain => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!(?grace, "shutdown grace period over: no further retries");
                self.shared.abort.cancel();
                drain.await;
            }
        }
    }

    /// Starts batches until nothing is pending or running.
    async fn drain(self: &Arc<Self>) {
        loop {
            let finished = self.wake.notified();
            let Some(keys) = self.shared.queues.lock().busy_keys() else {
                break;
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
        let due = self.shared.queues.lock().due(Instant::now());
        for key in due {
            self.start(&key);
        }
    }

    /// Starts `key`'s batch if it is ready; when it ends, starts the next one if that is due.
    fn start(self: &Arc<Self>, key: &HraKey) {
        let Some((batch, promises)) = self.shared.queues.lock().take_ready(key, Instant::now())
        else {
            return;
        };
        let this = self.clone();
        let key = key.clone();
        self.tasks.spawn(async move {
            let run = BatchRun::new(batch, promises).run(&this.shared);
            // A panic outside an attempt (the applier's are caught there) still ends the
            // batch, so its HRA goes on and shutdown's drain is not left waiting.
            if AssertUnwindSafe(run).catch_unwind().await.is_err() {
                tracing::error!(hra = %key, "a batch ended in a panic; its callers get UNAVAILABLE");
            }
            this.shared.queues.lock().release(&key);
            // Events that came while this batch ran may be due already.
            this.start(&key);
            this.wake.notify_one();
        });
    }
}
