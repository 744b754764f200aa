//! Applies one batch to its HRA: read → plan (one `now`) → conditional write, re-planning on
//! conflicts, backing off on transient errors until the retry deadline, and reporting every
//! outcome.

use crate::{
    error::StoreError,
    expiring::ExpiringSet,
    metrics::Metrics,
    model::{HraKey, record_batch},
    planner::{self, Counts, Plan, PlanEvent},
    results::{BatchReport, Outcome, ResultHub},
    store::{HraStore, Write},
};
use chrono::{DateTime, Utc};
use std::{borrow::Cow, sync::Arc, time::Duration};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many times one attempt re-reads and re-plans after a conflict before it backs off.
pub const MAX_CONFLICT_REPLANS: u32 = 5;

/// Where the planner's `now` comes from (tests may pin it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Back-off for transient errors: `first`, doubling up to `max`, until `deadline` has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub first: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Give up once the next attempt would start later than this after the first.
    pub deadline: Duration,
}

impl RetryPolicy {
    /// The documented schedule (1, 2, 4, 8, 16, 16, … s) with the given deadline.
    pub fn with_deadline(deadline: Duration) -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(16),
            deadline,
        }
    }

    /// Delay before attempt `failures + 1`, after `failures` failed attempts (≥ 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// One batch: the events of one HRA taken from one window, in arrival order.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Unique id, stable across attempts, recorded on the HRA when written.
    pub id: String,
    /// The HRA.
    pub key: HraKey,
    /// The events in arrival order.
    pub events: Vec<PlanEvent>,
    /// How many producer events these stand for.
    pub event_count: u64,
    /// When the oldest of them was accepted.
    pub since: Instant,
}

/// Applies batches to a store and reports their outcomes.
pub struct Applier {
    store: Arc<dyn HraStore>,
    results: Arc<ResultHub>,
    retry: RetryPolicy,
    dry_run: bool,
    clock: Clock,
    metrics: Arc<Metrics>,
    finished_jobs: Tombstones,
}

/// Jobs whose completion was applied, per HRA: a later `+1` for them adds nothing.
pub type Tombstones = ExpiringSet<(HraKey, Arc<str>)>;

/// How long finished jobs are remembered by default.
pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(3600);
/// How many finished jobs are remembered at most by default.
pub const DEFAULT_TOMBSTONE_CAPACITY: usize = 100_000;

impl Applier {
    /// An applier writing to `store` and reporting to `results`.
    pub fn new(
        store: Arc<dyn HraStore>,
        results: Arc<ResultHub>,
        retry: RetryPolicy,
        dry_run: bool,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            results,
            retry,
            dry_run,
            clock,
            metrics: Arc::default(),
            finished_jobs: ExpiringSet::new(DEFAULT_TOMBSTONE_TTL, DEFAULT_TOMBSTONE_CAPACITY),
        }
    }

    /// Remembers finished jobs for `ttl` (`--tombstone-ttl`).
    pub fn with_tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.finished_jobs = ExpiringSet::new(ttl, DEFAULT_TOMBSTONE_CAPACITY);
        self
    }

    /// Records into `metrics` instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Applies `batch` until it has a final outcome, which it returns. Before each retry,
    /// `refill` may append events that arrived meanwhile. Once `abort` fires, no further
    /// retry is started.
    pub async fn apply(
        &self,
        batch: &mut Batch,
        refill: &mut (dyn FnMut(&mut Batch) + Send),
        abort: &CancellationToken,
    ) -> Arc<BatchReport> {
        let started = Instant::now();
        let mut attempt = 1u32;
        let mut planned: Option<Plan> = None;
        let counts = |p: &Option<Plan>| p.as_ref().map(|p| p.counts).unwrap_or_default();
        loop {
            let error = match self.attempt(batch, refill, attempt, &mut planned).await {
                Ok(()) => {
                    let outcome = if self.dry_run {
                        Outcome::DryRun
                    } else {
                        self.remember_finished_jobs(&batch.key, planned.as_ref());
                        Outcome::Applied
                    };
                    return self.report(batch, outcome, counts(&planned), attempt, None);
                }
                Err(e) if e.is_terminal() => e.to_string(),
                Err(e) => {
                    let delay = self.retry.delay(attempt);
                    if started.elapsed() + delay > self.retry.deadline {
                        format!(
                            "retry deadline of {:?} passed; last error: {e}",
                            self.retry.deadline
                        )
                    } else if abort.is_cancelled() {
                        format!("shutting down; last error: {e}")
                    } else {
                        self.report(
                            batch,
                            Outcome::Retrying,
                            counts(&planned),
                            attempt,
                            Some(e.to_string()),
                        );
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = abort.cancelled() => {}
                        }
                        attempt += 1;
                        continue;
                    }
                }
            };
            return self.report(
                batch,
                Outcome::Failed,
                counts(&planned),
                attempt,
                Some(error),
            );
        }
    }

    /// One attempt: read, plan, write, re-planning at once on conflicts.
    async fn attempt(
        &self,
        batch: &mut Batch,
        refill: &mut (dyn FnMut(&mut Batch) + Send),
        attempt: u32,
        planned: &mut Option<Plan>,
    ) -> Result<(), StoreError> {
        for replan in 0..MAX_CONFLICT_REPLANS {
            // Only the first read may come from a cache: after a conflict or a failure the
            // backend itself must answer.
            let hra = if attempt == 1 && replan == 0 {
                self.store.get(&batch.key).await?
            } else {
                self.store.get_fresh(&batch.key).await?
            };
            // An earlier attempt may have landed although its answer was lost.
            if planned.is_some() && attempt > 1 && hra.applied_batches.contains(&batch.id) {
                return Ok(());
            }
            // Not landed: events that came while we backed off join this attempt.
            if attempt > 1 && replan == 0 {
                refill(batch);
            }
            let events = self.without_finished_jobs(&batch.key, &batch.events);
            let plan = planned.insert(planner::plan(&hra, &events, (self.clock)()));
            let write = Write {
                key: &batch.key,
                resource_version: &hra.resource_version,
                reservations: &plan.reservations,
                applied_batches: &record_batch(&hra.applied_batches, &batch.id),
                dry_run: self.dry_run,
            };
            let started = Instant::now();
            let written = self.store.write(write).await;
            let conflict = matches!(written, Err(StoreError::Conflict(_)));
            self.metrics.write(started.elapsed(), conflict);
            match written {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(why)) => {
                    tracing::debug!(hra = %batch.key, batch_id = %batch.id, %why, "conflict, re-planning");
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Transient(format!(
            "still conflicting after {MAX_CONFLICT_REPLANS} re-plans"
        )))
    }

    /// The events minus `+1`s of jobs that finished in an earlier batch.
    fn without_finished_jobs<'a>(
        &self,
        key: &HraKey,
        events: &'a [PlanEvent],
    ) -> Cow<'a, [PlanEvent]> {
        let finished = |e: &PlanEvent| {
            e.amount > 0
                && e.job
                    .as_ref()
                    .is_some_and(|j| self.finished_jobs.contains(&(key.clone(), j.clone())))
        };
        if events.iter().any(finished) {
            Cow::Owned(events.iter().filter(|e| !finished(e)).cloned().collect())
        } else {
            Cow::Borrowed(events)
        }
    }

    fn remember_finished_jobs(&self, key: &HraKey, plan: Option<&Plan>) {
        for job in plan.map(|p| p.finished_jobs.as_slice()).unwrap_or_default() {
            self.finished_jobs.insert((key.clone(), job.clone()));
        }
    }

    fn report(
        &self,
        batch: &Batch,
        outcome: Outcome,
        counts: Counts,
        attempt: u32,
        error: Option<String>,
    ) -> Arc<BatchReport> {
        let report = Arc::new(BatchReport {
            key: batch.key.clone(),
            outcome,
            counts,
            events: batch.event_count,
            attempt,
            error,
            at: Utc::now(),
            batch_id: batch.id.clone(),
        });
        log(&report);
        self.metrics.batch(outcome.as_str());
        if matches!(outcome, Outcome::Applied | Outcome::DryRun) {
            self.metrics.event_age(batch.since.elapsed());
        }
        self.results.publish(report.clone());
        report
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
    } = r.counts;
    let error = r.error.as_deref().unwrap_or("");
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                namespace = %r.key.namespace, name = %r.key.name, outcome = r.outcome.as_str(),
                batch_id = %r.batch_id, attempt = r.attempt, events = r.events,
                before, expired, added, completed, after, error, "batch {}", r.outcome.as_str()
            )
        };
    }
    match r.outcome {
        Outcome::Applied | Outcome::DryRun => line!(info),
        Outcome::Retrying | Outcome::Failed => line!(warn),
    }
}
