//! When a batch's events do not fit the HRA (`--max-hra-bytes`): the largest prefix of them,
//! in arrival order and cut before a job event, that does. Events that arrived earlier are
//! never failed by ones that arrived after them.

use super::{Applier, Attempt, Stop};
use crate::{
    domain::{hra::Hra, planner::PlanEvent},
    engine::batch::Batch,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;

impl Applier {
    /// What a write of `events` to `hra` would make of its object, in bytes.
    pub(super) fn projected_bytes(
        &self,
        hra: &Hra,
        events: &[PlanEvent],
        now: DateTime<Utc>,
        at: &Attempt,
        repositories: &[(Arc<str>, Arc<str>)],
    ) -> usize {
        let runs = self.plan(hra, events, now, repositories);
        let floor = hra.size_floor(runs.len());
        if floor > self.policy.max_hra_bytes as u64 {
            return usize::try_from(floor).unwrap_or(usize::MAX);
        }
        let plan = runs.materialize();
        self.annotations(hra, &plan, now, at, repositories)
            .projected
    }

    /// The batch's events do not fit: the largest prefix in arrival order, cut before a job
    /// event, that does (and holds an event) is kept and the rest fail (`Split`); if none
    /// does, the whole batch fails (`TooLarge`). Events that arrived earlier are never failed
    /// by ones that arrived after them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn split_or_too_large(
        &self,
        batch: &Batch,
        hra: &Hra,
        landed: usize,
        all: &[PlanEvent],
        now: DateTime<Utc>,
        at: &Attempt,
        repositories: &[(Arc<str>, Arc<str>)],
        projected: usize,
    ) -> Stop {
        let limit = self.policy.max_hra_bytes;
        let job_at: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, e)| e.job.is_some())
            .map(|(i, _)| i)
            .collect();
        let fits = |jobs: usize| {
            let cut = job_at.get(jobs).copied().unwrap_or(all.len());
            cut > 0 && self.projected_bytes(hra, &all[..cut], now, at, repositories) <= limit
        };
        // The largest number of job events kept whose prefix fits (fewer kept, smaller); an
        // empty prefix is no split.
        let mut lo = usize::from(job_at.first() == Some(&0));
        let mut hi = job_at.len();
        if lo >= hi || !fits(lo) {
            return Stop::TooLarge { projected, limit };
        }
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid) { lo = mid } else { hi = mid - 1 }
        }
        if lo >= job_at.len() {
            return Stop::TooLarge { projected, limit };
        }
        let before = batch.events[..landed.min(batch.events.len())]
            .iter()
            .filter(|e| e.job.is_some())
            .count();
        Stop::Split {
            keep_jobs: u32::try_from(before + lo).unwrap_or(u32::MAX),
            projected,
            limit,
        }
    }
}
