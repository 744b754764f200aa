//! One HRA during a replay: the object as the service would have written it, its runners,
//! its open batch, and what it learned of its arrivals.

use super::{Settings, fleet::Fleet, jobs::Ms};
use crate::domain::{
    forecast::Profile,
    hra::Hra,
    planner::{Counts, PlanEvent, plan_grouped},
    tombstones,
    warm::{self, is_warm, warm_name},
};
use chrono::{DateTime, TimeDelta, Utc};

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
    warm_seq: u32,
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
            warm_seq: 0,
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

    /// Warm reservations the forecast wants held at `t`, beyond those held.
    pub fn warm_deficit(&mut self, t: Ms, settings: &Settings) -> u32 {
        let Some(profile) = self.profile.as_mut() else {
            return 0;
        };
        // The demand that comes before a runner asked for now is ready.
        let minutes =
            u32::try_from((settings.runner_start.num_seconds() + 59) / 60).unwrap_or(0) + 1;
        let expected = profile.expected(at(t), minutes);
        let cap = settings
            .warm_max
            .or_else(|| warm::default_cap(self.hra.max_replicas))
            .unwrap_or(u32::MAX);
        let now = at(t);
        let held = self
            .hra
            .capacity_reservations
            .iter()
            .filter(|r| is_warm(&r.name) && r.expiration_time > now)
            .count() as u32;
        warm::target(expected, cap).saturating_sub(held)
    }

    /// Applies the open batch at `t` as the service would (one plan, one write), topping the
    /// warm reservations up in the same write. Returns the batch's counts.
    pub fn apply(&mut self, t: Ms, settings: &Settings) -> Counts {
        let now = at(t);
        let mut events = std::mem::take(&mut self.pending);
        self.open = false;
        let rules = settings.rules;
        let mut plan = plan_grouped(&self.hra, &events, now, &[], rules).materialize();
        if self.profile.is_some() {
            let before = std::mem::replace(
                &mut self.hra.capacity_reservations,
                plan.reservations.clone(),
            );
            let deficit = self.warm_deficit(t, settings);
            self.hra.capacity_reservations = before;
            if deficit > 0 {
                // Warm reservations live a runner start and two forecast minutes: renewed
                // while demand is expected, gone soon after.
                let life = settings.runner_start + TimeDelta::minutes(2);
                for _ in 0..deficit {
                    self.warm_seq += 1;
                    events.push(PlanEvent {
                        amount: 1,
                        duration: Some(life),
                        job: Some(warm_name(now.timestamp(), self.warm_seq).into()),
                        started: None,
                    });
                }
                plan = plan_grouped(&self.hra, &events, now, &[], rules).materialize();
                self.warm.added += u64::from(deficit);
            }
        }
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
