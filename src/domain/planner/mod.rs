//! The planner: how one batch of events changes an HRA's capacity reservations.
//!
//! A pure function of the HRA as read, the batch's events in arrival order and one `now`,
//! following the reference batch scaler step by step: (1) backlog entries at index
//! `maxReplicas` and beyond restart at `now` keeping their life, (2) entries not expiring
//! strictly after `now` are dropped, (3) `before`/`expired` are counted, (4) events apply in
//! order (`+n` appends, `-n` removes the oldest). README.md's "Semantics" lists where we differ.
//! Events that carry a job id pair a completion with its own reservation instead of the oldest.

use super::{
    duration::saturating_add,
    hra::{CapacityReservation, Hra},
};
use chrono::{DateTime, TimeDelta, Utc};
use std::{collections::HashMap, sync::Arc};

mod apply;
mod fold;
mod list;
mod rules;
mod runs;
mod tail;
pub use fold::Fold;
pub use rules::{ReservationClock, Rules};

use super::groups::Shape;
use super::warm::is_warm;
use apply::Batch;
use list::List;
use runs::Runs;
use tail::{Group, Tail};

/// One scale event as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEvent {
    /// `> 0` adds that many reservations, `< 0` completes, `0` only refreshes.
    pub amount: i64,
    /// Life of the reservations this event adds; `None`: the HRA's trigger duration, else
    /// the default life the plan is given.
    pub duration: Option<TimeDelta>,
    /// Workflow job id: `+1` adds a reservation named after it (once), `-1` removes that one.
    pub job: Option<Arc<str>>,
    /// The job started then (its `in_progress`; `amount` is 0): on the started clock its
    /// reservation lives its duration from then.
    pub started: Option<DateTime<Utc>>,
}

/// The counters every batch reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Length of the list as read.
    pub before: u64,
    /// Entries dropped because they had expired (extended backlog entries never count).
    pub expired: u64,
    /// Reservations appended by positive events.
    pub added: u64,
    /// Completions asked for by negative events, even where fewer entries were left to remove.
    pub completed: u64,
    /// Length of the list written.
    pub after: u64,
    /// `+1` job events that added nothing because their job had already completed (in this
    /// batch, or remembered as finished in the HRA).
    pub ignored_finished: u64,
    /// Reservations whose life a job's start restarted (`--reservation-clock started`).
    pub started: u64,
    /// Warm reservations (`warm-…`) that a queued job claimed as its own.
    pub warm_claimed: u64,
    /// Warm reservations this batch added (not counted in `added`).
    pub warm_added: u64,
    /// Warm reservations that expired unclaimed (counted in `expired` too).
    pub warm_expired: u64,
}

/// The outcome of planning one batch: the list to write and its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The whole new `spec.capacityReservations`.
    pub reservations: Vec<CapacityReservation>,
    /// What changed.
    pub counts: Counts,
    /// Jobs this batch completed (their later `+1` must not add a reservation): the caller
    /// records them as tombstones in the same write.
    pub finished_jobs: Vec<Arc<str>>,
    /// The repository of each grouped job this plan named (it left its group, which held
    /// it): the caller keeps it with the named reservations'.
    pub promoted_repositories: Vec<(Arc<str>, Arc<str>)>,
}

/// Plans one batch. `now` is the single instant the whole plan uses; `default_life` is the
/// life of reservations whose event gives none and whose HRA has no trigger duration.
///
/// ```
/// use batch_scaler::domain::{hra::{Hra, HraKey}, planner::{plan, PlanEvent}};
/// use chrono::{TimeDelta, Utc};
///
/// let hra = Hra {
///     key: HraKey::new("default", "runners"),
///     resource_version: "1".into(),
///     min_replicas: None,
///     max_replicas: None,
///     capacity_reservations: vec![],
///     applied_batches: Default::default(),
///     trigger_duration: None,
///     finished_jobs: Default::default(),
///     job_repositories: Default::default(),
///     groups: Default::default(),
///     object_bytes: 0,
///     warm_profile: None,
/// };
/// let ten_min = TimeDelta::minutes(10);
/// let events = [
///     PlanEvent { amount: -1, duration: None, job: None, started: None },
///     PlanEvent { amount: 1, duration: None, job: None, started: None },
/// ];
/// let p = plan(&hra, &events, Utc::now(), ten_min);
/// // A completion before its queued event removes nothing: one reservation is left.
/// assert_eq!((p.counts.added, p.counts.completed, p.counts.after), (1, 1, 1));
/// ```
pub fn plan(hra: &Hra, events: &[PlanEvent], now: DateTime<Utc>, default_life: TimeDelta) -> Plan {
    plan_runs(hra, events, now, default_life).materialize()
}

/// Plans one batch without writing out its reservations: identical job-less reservations
/// are kept as runs and waiting jobs beyond the named ones as groups, so a batch of `+1000`
/// events or a backlog of 100,000 jobs costs a few entries, and [`RunPlan::len`] tells how
/// many entries will be written before anything is allocated for them.
pub fn plan_runs(
    hra: &Hra,
    events: &[PlanEvent],
    now: DateTime<Utc>,
    default_life: TimeDelta,
) -> RunPlan {
    plan_grouped(hra, events, now, &[], Rules::new(default_life))
}

/// [`plan_runs`] knowing the repository of the batch's jobs (a grouped job keeps its own),
/// following the service's `rules` (layout, default life, reservation clock).
pub fn plan_grouped(
    hra: &Hra,
    events: &[PlanEvent],
    now: DateTime<Utc>,
    repositories: &[(Arc<str>, Arc<str>)],
    rules: Rules,
) -> RunPlan {
    let shape = rules.shape;
    let life = |e: &PlanEvent| {
        e.duration
            .unwrap_or_else(|| hra.reservation_life(rules.default_life))
    };
    // When the reservation an event adds ends: its life from now, or, for a queued job on
    // the started clock, the longest a job may wait.
    let queued = |e: &PlanEvent| match rules.clock {
        ReservationClock::Started { max_queue_time }
            if e.job.as_deref().is_some_and(|j| !is_warm(j)) =>
        {
            (now, saturating_add(now, max_queue_time))
        }
        _ => (now, saturating_add(now, life(e))),
    };
    let (explicit, mut tail) = split_read(hra, shape);
    let before = (explicit.len() as u64).saturating_add(tail.len);
    let max = hra
        .max_replicas
        .map(|m| usize::try_from(m.max(0)).unwrap_or(usize::MAX));
    if let Some(max) = max {
        tail.extend_from(explicit.len(), max, now);
    }
    let mut expired_jobs = Vec::new();
    tail.drop_expired(now, &mut expired_jobs);
    let mut list = List {
        head: Runs::default(),
        tail,
        named: shape.named_for(hra.max_replicas) as u64,
    };
    for entry in extend_backlog(explicit, max, now) {
        if entry.expiration_time > now {
            list.head.push(entry, 1);
        } else if !entry.name.is_empty() {
            expired_jobs.push((Arc::from(entry.name.as_str()), entry.expiration_time));
        }
    }
    let mut counts = Counts {
        before,
        expired: before - list.len(),
        ..Counts::default()
    };
    // The batch's word (its last, where a job came twice) before what the HRA held.
    let batch_repos: HashMap<&str, &Arc<str>> =
        repositories.iter().map(|(j, r)| (&**j, r)).collect();
    let repository_of = |job: &str| {
        batch_repos
            .get(job)
            .copied()
            .or_else(|| hra.job_repositories.get(job))
            .cloned()
    };
    let mut finished_jobs = Vec::new();
    let mut batch = Batch {
        list: &mut list,
        counts: &mut counts,
        finished: &mut finished_jobs,
        early_starts: HashMap::new(),
        expired: &mut expired_jobs,
        repository_of,
        now,
    };
    for event in events {
        match (&event.job, event.started) {
            (Some(job), Some(at)) => {
                if let ReservationClock::Started { .. } = rules.clock {
                    batch.start(job, (at, saturating_add(at, life(event))));
                }
            }
            (Some(job), None) if event.amount > 0 && hra.finished_jobs.contains(job, now) => {
                batch.counts.ignored_finished += 1;
            }
            (Some(job), None) => batch.job_event(event, job, queued(event)),
            (None, _) => batch.jobless_event(event, queued(event)),
        }
    }
    let promoted = list.settle(repository_of);
    counts.after = list.len();
    counts.warm_expired = expired_jobs.iter().filter(|(j, _)| is_warm(j)).count() as u64;
    RunPlan {
        head: list.head,
        tail: list.tail,
        counts,
        finished_jobs,
        promoted,
        expired_jobs,
    }
}

/// The list as read: ordinary entries in order, and the groups (wherever they stood: only
/// the sum matters to ARC, and we write them last).
fn split_read(hra: &Hra, shape: Shape) -> (Vec<CapacityReservation>, Tail) {
    let mut explicit = Vec::new();
    let mut tail = Tail::new(shape.group_size);
    for r in &hra.capacity_reservations {
        match hra.groups.members(&r.name) {
            Some(members) => {
                let replicas = u64::try_from(r.replicas).unwrap_or(0);
                // A group counts at least its named jobs.
                let anonymous = replicas.saturating_sub(members.len() as u64);
                tail.push_group(Group {
                    effective: r.effective_time,
                    expiration: r.expiration_time,
                    members,
                    anonymous,
                    name: Some(r.name.clone()),
                });
            }
            None => explicit.push(r.clone()),
        }
    }
    (explicit, tail)
}

/// A plan whose reservations are still runs and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    head: Runs,
    tail: Tail,
    /// What changed.
    pub counts: Counts,
    /// Jobs this batch completed.
    pub finished_jobs: Vec<Arc<str>>,
    promoted: Vec<(Arc<str>, Arc<str>)>,
    /// Jobs whose reservations this plan dropped as expired, with when each expired.
    pub expired_jobs: Vec<(Arc<str>, DateTime<Utc>)>,
}

impl RunPlan {
    /// How many reservations (entries of the list) the plan writes.
    pub fn len(&self) -> u64 {
        self.head.len + self.tail.groups.len() as u64
    }

    /// True when the plan writes no reservation.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Warm reservations (`warm-…`) the plan holds among its named entries.
    pub fn warm_held(&self) -> u64 {
        self.head
            .runs
            .iter()
            .filter(|(r, _)| is_warm(&r.name))
            .map(|(_, n)| n)
            .sum()
    }

    /// The plan with its reservations written out (changed groups encoded).
    pub fn materialize(self) -> Plan {
        let mut reservations = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        for (entry, copies) in self.head.runs {
            for _ in 1..copies {
                reservations.push(entry.clone());
            }
            reservations.push(entry);
        }
        reservations.extend(self.tail.groups.into_iter().map(Group::into_reservation));
        Plan {
            reservations,
            counts: self.counts,
            finished_jobs: self.finished_jobs,
            promoted_repositories: self.promoted,
        }
    }
}

/// Step 1 (reference issue #2254): entries at index `maxReplicas` and beyond restart at `now`
/// keeping their own life, whether or not they had expired.
fn extend_backlog(
    mut list: Vec<CapacityReservation>,
    max: Option<usize>,
    now: DateTime<Utc>,
) -> Vec<CapacityReservation> {
    // A negative maximum crashes the reference; the caller treats it as 0.
    let Some(max) = max else {
        return list;
    };
    if list.len() <= max {
        return list;
    }
    for entry in &mut list[max..] {
        let life = entry.life();
        entry.effective_time = now;
        entry.expiration_time = saturating_add(now, life);
    }
    list
}

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod fold_tests;
#[cfg(test)]
mod groups_tests;
#[cfg(test)]
mod job_tests;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod runs_tests;
#[cfg(test)]
mod warm_tests;
