//! One HRA during a replay: the object as the service would have written it, its runners,
//! its open batch, and what it learned of its arrivals.

use super::{Settings, fleet::Fleet, jobs::Ms};
use crate::domain::{
    forecast::Profile,
    hra::Hra,
    planner::{Counts, PlanEvent, plan_grouped},
    tombstones,
    warm::{self, plan_topped_up},
};
use chrono::{DateTime, Utc};

/// A replay time as the planner's.
pub fn at(t: Ms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

/// Warm reservations asked for, and what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmCounts {
    /// Warm reservations added.
    pub added: u64,
    /// Claimed by a queued job.
    pub claimed: u64,
}

/// One HRA's replay state.
pub struct HraState {
    /// The HRA as last written.
    pub hra: Hra,
    /// Its runners and waiting jobs.
    pub fleet: Fleet,
    /// Events of the open batch, in arrival order.
    pub pending: Vec<PlanEvent>,
    /// A batch window is open (its close is scheduled).
    pub open: bool,
    /// Arrivals learned (`--warm-runners forecast`).
    pub profile: Option<Profile>,
    /// Warm reservations so far.
    pub warm: WarmCounts,
    /// Batches written.
    pub batches: u64,
    /// The scale-down check already scheduled.
    pub check_at: Option<Ms>,
}

impl HraState {
    /// The state before the trace: the seed's HRA, with the run's overrides.
    pub fn new(mut hra: Hra, settings: &Settings) -> Self {
        if let Some(min) = settings.min_replicas {
            hra.min_replicas = Some(min);
        }
        Self {
            hra,
            fleet: Fleet::default(),
            pending: Vec::new(),
            open: false,
            profile: settings.warm.then(Profile::new),
            warm: WarmCounts::default(),
            batches: 0,
            check_at: None,
        }
    }

    /// Runners ARC wants at `t`: min(maxReplicas, minReplicas + Σ unexpired reservations).
    pub fn desired(&self, t: Ms) -> u32 {
        let min = u32::try_from(self.hra.min_replicas.unwrap_or(0).max(0)).unwrap_or(0);
        let sum = min.saturating_add(self.hra.reserved_replicas(at(t)));
        match self.hra.max_replicas {
            Some(max) => sum.min(u32::try_from(max.max(0)).unwrap_or(0)),
            None => sum,
        }
    }

    /// The earliest expiry after `t`, when ARC's desired count next changes by itself.
    pub fn next_expiry(&self, t: Ms) -> Option<Ms> {
        let now = at(t);
        self.hra
            .capacity_reservations
            .iter()
            .map(|r| r.expiration_time)
            .filter(|e| *e > now)
            .min()
            .map(|e| e.timestamp_millis())
    }

    /// Warm reservations the forecast wants held at `t` (`None` without a forecast).
    fn warm_target(&mut self, t: Ms, settings: &Settings) -> Option<u32> {
        let profile = self.profile.as_mut()?;
        let start = settings.runner_start;
        Some(warm::wanted(
            profile,
            &self.hra,
            at(t),
            start,
            settings.warm_max,
        ))
    }

    /// Warm reservations the forecast wants held at `t`, beyond those held.
    pub fn warm_deficit(&mut self, t: Ms, settings: &Settings) -> u32 {
        let Some(target) = self.warm_target(t, settings) else {
            return 0;
        };
        let now = at(t);
        let units = self.hra.reserved_replicas(now).into();
        warm::missing(
            target,
            warm::held(&self.hra, now),
            units,
            self.hra.max_replicas,
        ) as u32
    }

    /// Applies the open batch at `t` as the service would (one plan, one write), topping the
    /// warm reservations up in the same write. Returns the batch's counts.
    pub fn apply(&mut self, t: Ms, settings: &Settings) -> Counts {
        let now = at(t);
        let events = std::mem::take(&mut self.pending);
        self.open = false;
        let rules = settings.rules;
        let plan = match self.warm_target(t, settings) {
            Some(target) => plan_topped_up(
                &self.hra,
                &events,
                now,
                &[],
                rules,
                target,
                warm::life(settings.runner_start),
            ),
            None => plan_grouped(&self.hra, &events, now, &[], rules),
        }
        .materialize();
        self.warm.added += plan.counts.warm_added;
        self.warm.claimed += plan.counts.warm_claimed;
        if !plan.finished_jobs.is_empty() {
            let write = tombstones::next(
                &self.hra.finished_jobs,
                &plan.finished_jobs,
                now,
                settings.tombstones,
            );
            self.hra.finished_jobs = write.after;
        }
        self.hra.capacity_reservations = plan.reservations;
        self.batches += 1;
        plan.counts
    }
}
