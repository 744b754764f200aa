//! One apply attempt of a batch: read → plan (one `now`) → conditional write, re-planning at
//! once on conflicts, then a verdict: written, already landed, retry after a delay (transient
//! errors, within the retry deadline) or failed. The applier keeps no state between attempts
//! and never reaches back into the batcher: the batcher owns each HRA's queue, hands the
//! events that arrived meanwhile to the next attempt, and sleeps the delay.

mod fit;
mod verdict;

pub use verdict::{Attempt, Late, Planned, RetryPolicy, Verdict};

use super::{batch::Batch, warm::Forecasts};
use crate::{
    domain::{
        duration::saturating_delta,
        hra::{Hra, record_batch},
        ledger::{Profile, Written},
        planner::{self, PlanEvent, ReservationClock, Rules},
        tombstones::{self, TombstoneLimits},
        warm::{is_warm, plan_topped_up},
    },
    ops::metrics::Metrics,
    store::{HraStore, StoreError, Write, resource::finished_jobs_changes},
};
use chrono::{DateTime, TimeDelta, Utc};
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;

/// How many times one attempt re-reads and re-plans after a conflict before it backs off.
pub const MAX_CONFLICT_REPLANS: u32 = 5;

/// Where the planner's `now` comes from (tests may pin it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// How long a write's id stays in the applied-batches annotation beyond the retry deadline,
/// so every retry of its batch (shutdown grace included) still finds it.
const APPLIED_KEPT_BEYOND_DEADLINE: Duration = Duration::from_secs(300);

/// How the applier plans and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Back-off and deadline for transient errors.
    pub retry: RetryPolicy,
    /// Plan and validate only, never write.
    pub dry_run: bool,
    /// Life of reservations whose event gives none, on HRAs without a trigger duration.
    pub default_life: TimeDelta,
    /// How long and how many finished jobs each HRA remembers.
    pub tombstones: TombstoneLimits,
    /// Largest HRA object (compact JSON bytes) a write may produce, unless it shrinks it.
    pub max_hra_bytes: usize,
    /// When a job's reservation starts to age.
    pub reservation_clock: ReservationClock,
}

/// Why an attempt stopped without writing.
#[derive(Debug)]
enum Stop {
    Store(StoreError),
    TooLarge {
        projected: usize,
        limit: usize,
    },
    /// Only the events before job event number `keep_jobs` of the batch fit.
    Split {
        keep_jobs: u32,
        projected: usize,
        limit: usize,
    },
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a write carries beside its reservations: the finished jobs, the jobs' repositories
/// and the applied batch ids, each as the HRA's annotation will hold it, and the size the
/// object would have with them.
struct Annotations {
    /// Finished-jobs buckets to set or remove, by annotation name.
    finished_jobs: Vec<(String, Option<String>)>,
    /// Finished jobs forgotten before their TTL to stay within the capacity.
    forgotten: u64,
    job_repos: crate::domain::job_repos::JobRepos,
    job_repositories: String,
    applied_batches: String,
    projected: usize,
}

/// Applies batches to a store.
pub struct Applier {
    store: Arc<dyn HraStore>,
    policy: Policy,
    clock: Clock,
    metrics: Arc<Metrics>,
    warm: Option<Arc<Forecasts>>,
}

impl Applier {
    /// An applier writing to `store` as `policy` says.
    pub fn new(
        store: Arc<dyn HraStore>,
        policy: Policy,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            policy,
            clock,
            metrics,
            warm: None,
        }
    }

    /// Tops each batch's warm reservations up to what `forecasts` expects.
    pub fn with_warm(mut self, forecasts: Option<Arc<Forecasts>>) -> Self {
        self.warm = forecasts;
        self
    }

    /// True if writes are only validated.
    pub fn dry_run(&self) -> bool {
        self.policy.dry_run
    }

    /// One attempt of `batch`, with `late` (events that arrived since the last attempt)
    /// appended, unless an earlier write of every event of the batch turns out to have landed
    /// (then nothing is written and `late` is not used).
    pub async fn attempt(&self, batch: &Batch, late: Late<'_>, at: Attempt) -> Verdict {
        let mut planned = None;
        let error = match self.try_write(batch, late, &at, &mut planned).await {
            Ok(true) => return Verdict::Written(planned.unwrap_or_default()),
            Ok(false) => return Verdict::AlreadyLanded,
            Err(Stop::Store(e)) => e,
            Err(Stop::Split {
                keep_jobs,
                projected,
                limit,
            }) => {
                return Verdict::Split {
                    keep_jobs,
                    error: format!(
                        "these events did not fit: with them the HRA object would grow to \
                         {projected} bytes, over --max-hra-bytes ({limit}); the events that \
                         arrived before them were applied (too many reservations: raise \
                         maxReplicas or shorten durations)"
                    ),
                };
            }
            Err(Stop::TooLarge { projected, limit }) => {
                return Verdict::Failed {
                    error: format!(
                        "the HRA object would grow to {projected} bytes, over --max-hra-bytes \
                         ({limit}); nothing was written (too many reservations: raise maxReplicas \
                         or shorten durations)"
                    ),
                    planned,
                    too_large: true,
                };
            }
        };
        if error.is_terminal() {
            return Verdict::Failed {
                error: error.to_string(),
                planned,
                too_large: false,
            };
        }
        let retry = self.policy.retry;
        let after = retry.delay(at.number);
        let error = if at.started.elapsed() + after > retry.deadline {
            format!(
                "retry deadline of {:?} passed; last error: {error}",
                retry.deadline
            )
        } else if at.last {
            format!("shutting down; last error: {error}")
        } else {
            return Verdict::Retry {
                after,
                error,
                planned,
            };
        };
        Verdict::Failed {
            error,
            planned,
            too_large: false,
        }
    }

    /// Plans `events` on `hra` at `now`.
    pub(super) fn plan(
        &self,
        hra: &Hra,
        events: &[PlanEvent],
        now: DateTime<Utc>,
        repositories: &[(Arc<str>, Arc<str>)],
    ) -> planner::RunPlan {
        let rules = Rules {
            clock: self.policy.reservation_clock,
            ..Rules::new(self.policy.default_life)
        };
        match self
            .warm
            .as_ref()
            .and_then(|f| Some((f.target(hra, now)?, f.life())))
        {
            Some((target, life)) => {
                plan_topped_up(hra, events, now, repositories, rules, target, life)
            }
            None => planner::plan_grouped(hra, events, now, repositories, rules),
        }
    }

    /// The annotations a write of `plan` to `hra` carries, and the object's projected size.
    fn annotations(
        &self,
        hra: &Hra,
        plan: &planner::Plan,
        now: DateTime<Utc>,
        at: &Attempt,
        repositories: &[(Arc<str>, Arc<str>)],
    ) -> Annotations {
        let finished = tombstones::next(
            &hra.finished_jobs,
            &plan.finished_jobs,
            now,
            self.policy.tombstones,
        );
        let promoted;
        let repositories = if plan.promoted_repositories.is_empty() {
            repositories
        } else {
            promoted = [&plan.promoted_repositories[..], repositories].concat();
            &promoted[..]
        };
        let job_repos = hra.job_repositories.next(
            repositories,
            plan.reservations.iter().map(|r| r.name.as_str()),
        );
        let job_repositories = job_repos.format();
        let keep_for = self
            .policy
            .retry
            .deadline
            .saturating_add(APPLIED_KEPT_BEYOND_DEADLINE);
        let applied_batches = record_batch(
            &hra.applied_batches,
            &at.write_id,
            now,
            saturating_delta(keep_for),
        );
        let projected = hra.projected_bytes(
            &plan.reservations,
            &applied_batches,
            &finished,
            &job_repositories,
        );
        Annotations {
            forgotten: finished.dropped,
            finished_jobs: finished_jobs_changes(finished),
            job_repos,
            job_repositories,
            applied_batches,
            projected,
        }
    }

    /// Reads, plans and writes, re-planning at once on conflicts. `Ok(false)`: an earlier
    /// attempt had landed.
    async fn try_write(
        &self,
        batch: &Batch,
        late: Late<'_>,
        at: &Attempt,
        planned: &mut Option<Planned>,
    ) -> Result<bool, Stop> {
        let late_repos;
        let repositories: &[(Arc<str>, Arc<str>)] = if late.repositories.is_empty() {
            &batch.provenance.repositories
        } else {
            late_repos = [&batch.provenance.repositories[..], late.repositories].concat();
            &late_repos
        };
        let late = late.events;
        for replan in 0..MAX_CONFLICT_REPLANS {
            // Only the first read may come from a cache: after a conflict or a failure the
            // backend itself must answer.
            let hra = if at.number == 1 && replan == 0 {
                self.store.get(&batch.key).await?
            } else {
                self.store.get_fresh(&batch.key).await?
            };
            // An earlier write may have landed although its answer was lost: what it held
            // is applied, and only the rest (with the late events) is planned now.
            let landed = batch.landed(&hra.applied_batches).unwrap_or(0);
            if landed > 0 && landed >= batch.events.len() {
                return Ok(false);
            }
            let events: Vec<PlanEvent>;
            let all: &[PlanEvent] = if late.is_empty() {
                &batch.events[landed..]
            } else {
                events = batch.events[landed..].iter().chain(late).cloned().collect();
                &events
            };
            let now = (self.clock)();
            let mut runs = self.plan(&hra, all, now, repositories);
            *planned = Some(Planned {
                counts: runs.counts,
                forgotten: 0,
                written: None,
            });
            // Warm reservations that expire are no job's: the ledger counts jobs only.
            let mut expired = std::mem::take(&mut runs.expired_jobs);
            expired.retain(|(job, _)| !is_warm(job));
            // Counted before anything is written out: no batch allocates much more than the
            // largest HRA it may write.
            let limit = self.policy.max_hra_bytes;
            let split = |projected| {
                self.split_or_too_large(batch, &hra, landed, all, now, at, repositories, projected)
            };
            let floor = hra.size_floor(runs.len());
            if floor > limit as u64 && floor > hra.object_bytes as u64 {
                return Err(split(usize::try_from(floor).unwrap_or(usize::MAX)));
            }
            let plan = runs.materialize();
            let Annotations {
                finished_jobs,
                forgotten,
                job_repos,
                job_repositories,
                applied_batches,
                projected,
            } = self.annotations(&hra, &plan, now, at, repositories);
            if projected > limit && projected > hra.object_bytes {
                return Err(split(projected));
            }
            if let Some(planned) = planned.as_mut() {
                planned.forgotten = forgotten;
                let ends = plan
                    .reservations
                    .iter()
                    .map(|r| (r.expiration_time, u64::try_from(r.replicas).unwrap_or(0)))
                    .collect();
                planned.written = Some(Arc::new(Written {
                    at: now,
                    profile: Profile::new(now, hra.max_replicas, ends),
                    expired: expired.clone(),
                    warm: (plan.counts.warm_claimed, plan.counts.warm_expired),
                }));
            }
            let warm_profile = self.warm.as_ref().and_then(|f| f.persist(&hra, now));
            let write = Write {
                key: &batch.key,
                resource_version: &hra.resource_version,
                reservations: &plan.reservations,
                applied_batches: &applied_batches,
                finished_jobs: &finished_jobs,
                job_repositories: (job_repos != hra.job_repositories).then_some(&*job_repositories),
                warm_profile: warm_profile.as_deref(),
                dry_run: self.policy.dry_run,
            };
            let started = Instant::now();
            let written = self.store.write(write).await;
            let conflict = matches!(written, Err(StoreError::Conflict { .. }));
            self.metrics.write(started.elapsed(), conflict);
            if conflict {
                // On the attempt's span, when traced.
                tracing::Span::current().record("batch_scaler.conflicts", true);
            }
            match written {
                Ok(_) => {
                    if !self.policy.dry_run {
                        self.metrics.tombstones_dropped(forgotten);
                    }
                    return Ok(true);
                }
                Err(StoreError::Conflict { message, .. }) => {
                    tracing::debug!(hra = %batch.key, batch_id = %batch.id, %message, "conflict, re-planning");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::transient(format!(
            "still conflicting after {MAX_CONFLICT_REPLANS} re-plans"
        ))
        .into())
    }
}
