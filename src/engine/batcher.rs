//! Groups events per HRA over a window and runs each HRA's batches, one at a time.
//!
//! An HRA's window opens with the first event that finds nothing pending for it, so a burst
//! is never split by a global tick and no event waits longer than one window (plus any apply
//! still running for its HRA). Intake only takes a short lock: it never waits for a write.
//! At most one batch runs per HRA; events arriving meanwhile wait in its queue, in order.
//! When an attempt must be retried, the batcher sleeps the applier's delay and hands the
//! queued events to the next attempt (the applier never reaches back into the queues).
//! Batches of different HRAs run concurrently, bounded by a fair semaphore.

use super::{
    applier::{Applier, AttemptNo, Planned, Verdict},
    idempotency::{Idempotency, Sighting},
    queue::{Batch, Bounds, Exhausted, Queues, Riders, Waiter},
    sink::OutcomeSink,
};
use crate::domain::{event::ScaleEvent, hra::HraKey, report::Outcome};
use parking_lot::Mutex;
use std::{sync::Arc, time::Duration};
use tokio::{
    sync::{Notify, Semaphore},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Whether an event was queued or dropped as a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for its HRA's next batch.
    Queued,
    /// Its `event_id` was seen within the dedupe TTL and its batch applied: not queued.
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
    queues: Mutex<Queues>,
    applier: Arc<Applier>,
    sink: Arc<OutcomeSink>,
    idempotency: Arc<Idempotency>,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
    window: Duration,
    /// Wakes the window loop (first window opened) or the drain (an apply finished).
    wake: Notify,
    abort: CancellationToken,
}

impl Batcher {
    /// A batcher with windows of `window`, applying through `applier` at most
    /// `max_concurrent` batches at once, reporting to `sink`.
    pub fn new(
        applier: Arc<Applier>,
        sink: Arc<OutcomeSink>,
        idempotency: Arc<Idempotency>,
        window: Duration,
        max_concurrent: usize,
        bounds: Bounds,
    ) -> Self {
        Self {
            queues: Mutex::new(Queues::new(bounds)),
            applier,
            sink,
            idempotency,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            tasks: TaskTracker::new(),
            window,
            wake: Notify::new(),
            abort: CancellationToken::new(),
        }
    }

    /// Queues one event for its HRA's next batch, unless its `event_id` was seen within the
    /// dedupe TTL; `waiter` gets that batch's final outcome.
    pub fn submit(
        &self,
        event: &ScaleEvent,
        waiter: Option<Waiter>,
    ) -> Result<Submitted, IntakeError> {
        let mut queues = self.queues.lock();
        self.submit_locked(&mut queues, event, waiter)
    }

    /// Queues several events under one lock, stopping at the first refused; returns how many
    /// were queued and how many were duplicates before it, and why it was refused.
    pub fn submit_all(&self, events: &[ScaleEvent]) -> (u64, u64, Option<IntakeError>) {
        let mut queues = self.queues.lock();
        let (mut queued, mut duplicates) = (0, 0);
        for event in events {
            match self.submit_locked(&mut queues, event, None) {
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
    ) -> Result<Submitted, IntakeError> {
        if queues.closed {
            return Err(IntakeError::ShuttingDown);
        }
        let waiter = match &event.event_id {
            Some(id) => match self.idempotency.sighting(id, waiter) {
                Sighting::First(waiter) => waiter,
                Sighting::Duplicate => return Ok(Submitted::Duplicate),
                Sighting::Joined => return Ok(Submitted::Joined),
            },
            None => waiter,
        };
        let pushed = queues.push(
            &event.key,
            event.plan_event(),
            waiter,
            event.event_id.as_ref(),
            self.window,
        );
        // Refused, not seen: the producer's retry must not count as a duplicate.
        let first = pushed.inspect_err(|_| self.idempotency.forget_events(&event.event_id))?;
        if first {
            self.wake.notify_one();
        }
        Ok(Submitted::Queued)
    }

    /// HRAs with events waiting for a batch.
    pub fn pending_hras(&self) -> usize {
        self.queues.lock().pending_hras()
    }

    /// Events held: queued, and in batches not yet final.
    pub fn held_events(&self) -> u64 {
        self.queues.lock().held()
    }

    /// Applies in flight.
    pub fn in_flight(&self) -> usize {
        self.queues.lock().in_flight()
    }

    /// Closes windows as they come due until `shutdown`; then closes intake, applies what
    /// is pending at once, and returns when every batch has its final outcome. Retries stop
    /// being started `grace` after shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        loop {
            let next_due = self.queues.lock().next_due();
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
        self.queues.lock().closed = true;
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
            let Some(keys) = self.queues.lock().busy_keys() else {
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
        let due = self.queues.lock().due(Instant::now());
        for key in due {
            self.start(&key);
        }
    }

    /// Starts `key`'s batch if it is ready; when it ends, starts the next one if that is due.
    fn start(self: &Arc<Self>, key: &HraKey) {
        let Some((batch, riders)) = self.queues.lock().take_ready(key, Instant::now()) else {
            return;
        };
        let this = self.clone();
        self.tasks.spawn(async move {
            let key = batch.key.clone();
            {
                // The semaphore is never closed, so a permit always comes.
                let _permit = this.permits.acquire().await.ok();
                this.run_batch(batch, riders).await;
            }
            this.queues.lock().finish(&key);
            // Events that came while this batch ran may be due already.
            this.start(&key);
            this.wake.notify_one();
        });
    }

    /// Attempts `batch` until it has a final outcome, reporting every attempt.
    async fn run_batch(&self, mut batch: Batch, mut riders: Riders) {
        let started = Instant::now();
        let mut last: Option<Planned> = None;
        let mut number = 1u32;
        loop {
            let late = if number > 1 {
                self.queues.lock().take_late(&batch.key)
            } else {
                None
            };
            let late_events = late.as_ref().map(|l| l.events.as_slice()).unwrap_or(&[]);
            let write_id = batch.write_id(late_events.len());
            let at = AttemptNo {
                number,
                started,
                write_id: write_id.clone(),
                aborted: self.abort.is_cancelled(),
            };
            let verdict = self.applier.attempt(&batch, late_events, at).await;
            match (&verdict, late) {
                (Verdict::AlreadyLanded, Some(late)) => {
                    self.queues.lock().restore(&batch.key, late);
                }
                (_, Some(late)) => riders.extend(batch.absorb(late)),
                (_, None) => {}
            }
            let wrote = match &verdict {
                Verdict::Written(_) => true,
                Verdict::Retry { planned, .. } | Verdict::Failed { planned, .. } => {
                    planned.is_some()
                }
                Verdict::AlreadyLanded => false,
            };
            if wrote {
                batch.record_write(write_id);
            }
            let (outcome, error) = match verdict {
                Verdict::Written(planned) => {
                    last = Some(planned);
                    let written = if self.applier.dry_run() {
                        Outcome::DryRun
                    } else {
                        Outcome::Applied
                    };
                    (written, None)
                }
                Verdict::AlreadyLanded => (Outcome::Applied, None),
                Verdict::Failed {
                    error,
                    planned,
                    too_large,
                } => {
                    last = planned.or(last);
                    if too_large {
                        self.sink.too_large(batch.event_count);
                    }
                    (Outcome::Failed, Some(error))
                }
                Verdict::Retry {
                    after,
                    error,
                    planned,
                } => {
                    last = planned.or(last);
                    let counts = last.as_ref().map(|p| p.counts).unwrap_or_default();
                    let error = Some(error.to_string());
                    self.sink
                        .report(&batch, Outcome::Retrying, counts, number, error);
                    tokio::select! {
                        () = tokio::time::sleep(after) => {}
                        () = self.abort.cancelled() => {}
                    }
                    number += 1;
                    continue;
                }
            };
            self.sink
                .finish(&batch, riders, outcome, last.as_ref(), number, error);
            return;
        }
    }
}
