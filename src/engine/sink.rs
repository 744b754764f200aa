//! The one place an outcome goes: every attempt's report is logged, counted and published to
//! the hub (an applied write also tells the HRA's job ledger); a batch's final report also
//! answers its waiters and settles its event ids (forgotten if it failed, so a producer's
//! retry is applied).

use super::{
    applier::Planned,
    batch::{Batch, Promises},
    hub::ResultHub,
    idempotency::Idempotency,
    ledgers::Ledgers,
};
use crate::{
    domain::{
        hra::HraKey,
        planner::Counts,
        report::{BatchReport, Outcome},
    },
    ops::metrics::Metrics,
};
use chrono::Utc;
use std::sync::Arc;

/// Fans outcomes out to the hub, waiters, idempotency memory, metrics and logs.
pub struct OutcomeSink {
    hub: Arc<ResultHub>,
    idempotency: Arc<Idempotency>,
    metrics: Arc<Metrics>,
    ledgers: Arc<Ledgers>,
}

impl OutcomeSink {
    /// A sink publishing to `hub`, telling `ledgers` of applied writes.
    pub fn new(
        hub: Arc<ResultHub>,
        idempotency: Arc<Idempotency>,
        metrics: Arc<Metrics>,
        ledgers: Arc<Ledgers>,
    ) -> Self {
        Self {
            hub,
            idempotency,
            metrics,
            ledgers,
        }
    }

    /// Reports one attempt's outcome (log line, metrics, hub).
    pub fn report(
        &self,
        batch: &Batch,
        outcome: Outcome,
        planned: Option<&Planned>,
        attempt: u32,
        error: Option<String>,
    ) -> Arc<BatchReport> {
        let report = Arc::new(BatchReport {
            key: batch.key.clone(),
            outcome,
            counts: planned.map(|p| p.counts).unwrap_or_default(),
            finished_jobs_forgotten: planned.map_or(0, |p| p.forgotten),
            events: batch.event_count,
            attempt,
            error,
            at: Utc::now(),
            batch_id: batch.id.clone(),
            recovered: batch.provenance.recovered,
            verified: batch.provenance.verified,
            failed_jobs: if outcome == Outcome::Failed {
                batch
                    .events
                    .iter()
                    .filter_map(|e| e.job.clone())
                    .take(crate::domain::report::FAILED_JOBS_REPORTED)
                    .collect()
            } else {
                Vec::new()
            },
        });
        log(&report);
        self.metrics.batch(outcome.as_str());
        if matches!(outcome, Outcome::Applied | Outcome::DryRun) {
            self.metrics.event_age(batch.since.elapsed());
        }
        // An attempt that found its write landed already planned nothing: no figure.
        if let (Outcome::Applied, Some(planned)) = (outcome, planned) {
            self.metrics
                .hras
                .reservation_units(report.key.parts(), planned.counts.after);
            let c = &planned.counts;
            self.metrics.hras.warm(
                report.key.parts(),
                [c.warm_added, c.warm_claimed, c.warm_expired],
            );
            if let Some(written) = &planned.written {
                self.ledgers.written(&report.key, written);
            }
        }
        self.hub.publish(report.clone());
        report
    }

    /// Counts the events of a batch failed because the HRA would grow past its size limit.
    pub fn too_large(&self, events: u64) {
        self.metrics.too_large(events);
    }

    /// Reports a batch's final outcome and keeps its promises: waiters answered, event ids
    /// remembered (applied) or forgotten (failed), callers waiting on repeats of them
    /// answered too; returns how many of those there were, per HRA.
    pub fn settle(
        &self,
        batch: &Batch,
        promises: Promises,
        outcome: Outcome,
        planned: Option<&Planned>,
        attempt: u32,
        error: Option<String>,
    ) -> Vec<(HraKey, u64)> {
        let report = self.report(batch, outcome, planned, attempt, error);
        let answered = self.idempotency.settle(&promises.event_ids, &report);
        for waiter in promises.waiters {
            let _ = waiter.send(report.clone());
        }
        answered
    }
}

/// One structured line per outcome, with the same fields as the wire result.
fn log(r: &BatchReport) {
    let Counts {
        before,
        expired,
        added,
        completed,
        after,
        ignored_finished,
        started,
        ..
    } = r.counts;
    let error = r.error.as_deref().unwrap_or("");
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                namespace = %r.key.namespace, name = %r.key.name, outcome = r.outcome.as_str(),
                batch_id = %r.batch_id, attempt = r.attempt, events = r.events,
                before, expired, added, completed, after, ignored_finished, started, error,
                "batch {}", r.outcome.as_str()
            )
        };
    }
    match r.outcome {
        Outcome::Applied | Outcome::DryRun => line!(info),
        Outcome::Retrying | Outcome::Failed => line!(warn),
    }
}
