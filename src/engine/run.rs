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
use crate::{domain::report::Outcome, ops::traces};
use futures::FutureExt as _;
use parking_lot::Mutex;
use std::panic::AssertUnwindSafe;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

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
    /// The batch's own trace (traces exported only), linked to the span each of its events
    /// arrived in, so that every job's trace reaches the write that applied it.
    fn span(&self) -> tracing::Span {
        if !traces::on() {
            return tracing::Span::none();
        }
        let b = &self.batch;
        let span = tracing::info_span!(
            parent: None,
            "batch",
            otel.name = "batch",
            batch_scaler.batch_id = %b.id,
            batch_scaler.hra = %b.key,
            k8s.namespace.name = %b.key.namespace,
            batch_scaler.events = b.event_count,
            batch_scaler.recovered = b.provenance.recovered,
            batch_scaler.verified = b.provenance.verified,
            batch_scaler.outcome = tracing::field::Empty,
            batch_scaler.attempts = tracing::field::Empty,
            batch_scaler.before = tracing::field::Empty,
            batch_scaler.expired = tracing::field::Empty,
            batch_scaler.added = tracing::field::Empty,
            batch_scaler.completed = tracing::field::Empty,
            batch_scaler.after = tracing::field::Empty,
            batch_scaler.error = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        for trace in &b.provenance.traces {
            span.add_link(trace.clone());
        }
        span
    }

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
        let span = self.span();
        let mut number = 1u32;
        let troubled = shared.queues.lock().is_troubled(&self.batch.key);
        loop {
            let joining = if number > 1 {
                shared.queues.lock().take_joining(&self.batch.key)
            } else {
                None
            };
            if let Some(j) = &joining {
                for trace in &j.provenance.traces {
                    span.add_link(trace.clone());
                }
            }
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
            let attempt_span = if span.is_disabled() {
                tracing::Span::none()
            } else {
                tracing::info_span!(parent: &span, "apply", otel.name = "apply", batch_scaler.attempt = number,
                    batch_scaler.conflicts = tracing::field::Empty, error.type = tracing::field::Empty)
            };
            let verdict = {
                let _slot = shared.slots.acquire(number > 1 || troubled).await;
                AssertUnwindSafe(shared.applier.attempt(&self.batch, late, attempt))
                    .catch_unwind()
                    .instrument(attempt_span.clone())
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
                (_, Some(joining)) => self.batch.absorb(joining, &mut self.promises),
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
                Verdict::Split { keep_jobs, error } => {
                    // The events that did not fit fail now, reported as a batch of their own;
                    // the earlier ones are attempted again at once.
                    let (overflow, promises) = self.batch.split_off(keep_jobs, &mut self.promises);
                    shared.sink.too_large(overflow.event_count);
                    let answered = span.in_scope(|| {
                        shared.sink.settle(
                            &overflow,
                            promises,
                            Outcome::Failed,
                            None,
                            number,
                            Some(error),
                        )
                    });
                    let mut queues = shared.queues.lock();
                    for (key, n) in answered {
                        queues.release_joined(&key, n);
                    }
                    continue;
                }
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
                    attempt_span.record("error.type", error.class());
                    self.planned = planned.or(self.planned.take());
                    let error = Some(error.to_string());
                    // Logged within the batch's span: JSON lines carry its trace id.
                    span.in_scope(|| {
                        shared.sink.report(
                            &self.batch,
                            Outcome::Retrying,
                            self.planned.as_ref(),
                            number,
                            error,
                        )
                    });
                    tokio::select! {
                        () = tokio::time::sleep(after) => {}
                        () = shared.abort.cancelled() => {}
                    }
                    number += 1;
                    continue;
                }
            };
            if let Some(error) = &error {
                attempt_span.record("error.type", "failed");
                span.record("batch_scaler.error", error.as_str());
                span.record("otel.status_code", "ERROR");
            }
            let counts = self.planned.as_ref().map(|p| p.counts).unwrap_or_default();
            span.record("batch_scaler.outcome", outcome.as_str());
            span.record("batch_scaler.attempts", number);
            span.record("batch_scaler.before", counts.before);
            span.record("batch_scaler.expired", counts.expired);
            span.record("batch_scaler.added", counts.added);
            span.record("batch_scaler.completed", counts.completed);
            span.record("batch_scaler.after", counts.after);
            let answered = span.in_scope(|| {
                shared.sink.settle(
                    &self.batch,
                    self.promises,
                    outcome,
                    self.planned.as_ref(),
                    number,
                    error,
                )
            });
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
