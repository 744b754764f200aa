//! The life of one batch, owned by one value: its attempts (each in a write slot), the events
//! that join it between attempts, the writes it sent, the promises made for its events, and
//! its report after every attempt. The applier makes one attempt; this decides what follows.

use super::{
    applier::{Applier, Attempt, Late, Planned, Verdict},
    batch::{Batch, Promises},
    queue::Queues,
    sink::OutcomeSink,
    slots::WriteSlots,
};
use crate::domain::report::Outcome;
use futures::FutureExt as _;
use parking_lot::Mutex;
use std::panic::AssertUnwindSafe;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What every running batch shares.
pub struct Shared {
    /// Every HRA's queue (events that arrive while a batch runs wait there to join it).
    pub queues: Mutex<Queues>,
    /// Makes one attempt.
    pub applier: Applier,
    /// Where every outcome goes.
    pub sink: OutcomeSink,
    /// Bounds attempts in flight.
    pub slots: WriteSlots,
    /// Set once no further retry may start (shutdown grace over).
    pub abort: CancellationToken,
}

/// A batch on its way to its final outcome.
pub struct BatchRun {
    batch: Batch,
    promises: Promises,
    started: Instant,
    /// The last plan made, for the counters of reports without one.
    planned: Option<Planned>,
}

/// What a panic while applying says.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl BatchRun {
    /// A batch about to make its first attempt.
    pub fn new(batch: Batch, promises: Promises) -> Self {
        Self {
            batch,
            promises,
            started: Instant::now(),
            planned: None,
        }
    }

    /// Attempts until the outcome is final, reporting every attempt and settling the
    /// promises at the end. A panic inside an attempt ends the batch `FAILED`.
    pub async fn run(mut self, shared: &Shared) {
        let mut number = 1u32;
        let troubled = shared.queues.lock().is_troubled(&self.batch.key);
        loop {
            let joining = if number > 1 {
                shared.queues.lock().take_joining(&self.batch.key)
            } else {
                None
            };
            let late = joining.as_ref().map_or(Late::default(), |j| Late {
                events: &j.events,
                repositories: &j.provenance.repositories,
            });
            let write_id = self.batch.write_id(late.events.len());
            let attempt = Attempt {
                number,
                started: self.started,
                write_id: write_id.clone(),
                last: shared.abort.is_cancelled(),
            };
            let verdict = {
                let _slot = shared.slots.acquire(number > 1 || troubled).await;
                AssertUnwindSafe(shared.applier.attempt(&self.batch, late, attempt))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        let error =
                            format!("internal error while applying: {}", panic_message(&*panic));
                        tracing::error!(hra = %self.batch.key, batch_id = %self.batch.id, %error);
                        Verdict::Failed {
                            error,
                            planned: None,
                            too_large: false,
                        }
                    })
            };
            match (&verdict, joining) {
                // The events had not been used: back to the front of the queue.
                (Verdict::AlreadyLanded, Some(joining)) => {
                    shared.queues.lock().restore(&self.batch.key, joining)
                }
                (_, Some(joining)) => self.promises.extend(self.batch.absorb(joining)),
                (_, None) => {}
            }
            if verdict.wrote() {
                self.batch.record_write(write_id);
            }
            let (outcome, error) = match verdict {
                Verdict::Written(planned) => {
                    self.planned = Some(planned);
                    let written = if shared.applier.dry_run() {
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
                    self.planned = planned.or(self.planned.take());
                    if too_large {
                        shared.sink.too_large(self.batch.event_count);
                    }
                    (Outcome::Failed, Some(error))
                }
                Verdict::Retry {
                    after,
                    error,
                    planned,
                } => {
                    self.planned = planned.or(self.planned.take());
                    let counts = self.planned.as_ref().map(|p| p.counts).unwrap_or_default();
                    let error = Some(error.to_string());
                    shared
                        .sink
                        .report(&self.batch, Outcome::Retrying, counts, number, error);
                    tokio::select! {
                        () = tokio::time::sleep(after) => {}
                        () = shared.abort.cancelled() => {}
                    }
                    number += 1;
                    continue;
                }
            };
            let answered = shared.sink.settle(
                &self.batch,
                self.promises,
                outcome,
                self.planned.as_ref(),
                number,
                error,
            );
            let mut queues = shared.queues.lock();
            let clean = outcome != Outcome::Failed && number == 1;
            queues.set_troubled(&self.batch.key, !clean);
            for (key, n) in answered {
                queues.release_joined(&key, n);
            }
            return;
        }
    }
}
