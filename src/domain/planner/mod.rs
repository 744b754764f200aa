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
use std::{collections::VecDeque, sync::Arc};

mod fold;
pub use fold::Fold;

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
///     object_bytes: 0,
/// };
/// let ten_min = TimeDelta::minutes(10);
/// let events = [
///     PlanEvent { amount: -1, duration: None, job: None },
///     PlanEvent { amount: 1, duration: None, job: None },
/// ];
/// let p = plan(&hra, &events, Utc::now(), ten_min);
/// // A completion before its queued event removes nothing: one reservation is left.
/// assert_eq!((p.counts.added, p.counts.completed, p.counts.after), (1, 1, 1));
/// ```
pub fn plan(hra: &Hra, events: &[PlanEvent], now: DateTime<Utc>, default_life: TimeDelta) -> Plan {
    plan_runs(hra, events, now, default_life).materialize()
}

/// Plans one batch without writing out its reservations: identical job-less reservations
/// are kept as runs, so a batch of `+1000` events costs one run each, not a thousand
/// entries, and [`RunPlan::len`] tells the resulting length before anything is allocated
/// for it.
pub fn plan_runs(
    hra: &Hra,
    events: &[PlanEvent],
    now: DateTime<Utc>,
    default_life: TimeDelta,
) -> RunPlan {
    let expires = |e: &PlanEvent| {
        let life = e
            .duration
            .unwrap_or_else(|| hra.reservation_life(default_life));
        saturating_add(now, life)
    };
    let read = &hra.capacity_reservations;
    let before = read.len();
    let mut list = Runs::default();
    for entry in extend_backlog(read, hra.max_replicas, now) {
        if entry.expiration_time > now {
            list.push(entry, 1);
        }
    }
    let mut counts = Counts {
        before: before as u64,
        expired: before as u64 - list.len,
        ..Counts::default()
    };
    let mut finished_jobs = Vec::new();
    for event in events {
        match &event.job {
            Some(job) if event.amount > 0 && hra.finished_jobs.contains(job, now) => {
                counts.ignored_finished += 1;
            }
            Some(job) => apply_job_event(
                &mut list,
                event,
                job,
                expires(event),
                (now, &mut counts, &mut finished_jobs),
            ),
            None => apply_event(&mut list, event, now, expires(event), &mut counts),
        }
    }
    counts.after = list.len;
    RunPlan {
        runs: list,
        counts,
        finished_jobs,
    }
}

/// A plan whose reservations are still runs of identical entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    runs: Runs,
    /// What changed.
    pub counts: Counts,
    /// Jobs this batch completed.
    pub finished_jobs: Vec<Arc<str>>,
}

impl RunPlan {
    /// How many reservations the plan writes.
    pub fn len(&self) -> u64 {
        self.runs.len
    }

    /// True when the plan writes no reservation.
    pub fn is_empty(&self) -> bool {
        self.runs.len == 0
    }

    /// The plan with its reservations written out.
    pub fn materialize(self) -> Plan {
        let mut reservations = Vec::with_capacity(usize::try_from(self.runs.len).unwrap_or(0));
        for (entry, copies) in self.runs.runs {
            for _ in 1..copies {
                reservations.push(entry.clone());
            }
            reservations.push(entry);
        }
        Plan {
            reservations,
            counts: self.counts,
            finished_jobs: self.finished_jobs,
        }
    }
}

/// The working list: runs of identical reservations, oldest first, and their total length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Runs {
    runs: VecDeque<(CapacityReservation, u64)>,
    len: u64,
}

impl Runs {
    /// Appends `copies` of `entry` (merged into the last run when it is the same job-less
    /// entry).
    fn push(&mut self, entry: CapacityReservation, copies: u64) {
        if copies == 0 {
            return;
        }
        self.len = self.len.saturating_add(copies);
        match self.runs.back_mut() {
            Some((last, n)) if entry.name.is_empty() && *last == entry => {
                *n = n.saturating_add(copies)
            }
            _ => self.runs.push_back((entry, copies)),
        }
    }

    /// Removes the `n` oldest entries (all of them if there are fewer).
    fn remove_oldest(&mut self, mut n: u64) {
        while n > 0 {
            let Some((_, copies)) = self.runs.front_mut() else {
                break;
            };
            if *copies > n {
                *copies -= n;
                self.len -= n;
                return;
            }
            n -= *copies;
            self.len -= *copies;
            self.runs.pop_front();
        }
    }

    /// Where the reservation named `name` is.
    fn position(&self, name: &str) -> Option<usize> {
        self.runs.iter().position(|(r, _)| r.name == name)
    }

    /// Removes the run at `i`.
    fn remove(&mut self, i: usize) {
        if let Some((_, copies)) = self.runs.remove(i) {
            self.len -= copies;
        }
    }
}

/// Step 1 (reference issue #2254): entries at index `maxReplicas` and beyond restart at `now`
/// keeping their own life, whether or not they had expired.
fn extend_backlog(
    read: &[CapacityReservation],
    max_replicas: Option<i32>,
    now: DateTime<Utc>,
) -> Vec<CapacityReservation> {
    let mut list = read.to_vec();
    let Some(max) = max_replicas else {
        return list;
    };
    // A negative maximum crashes the reference; it is treated as 0.
    let max = usize::try_from(max.max(0)).unwrap_or(usize::MAX);
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

/// Step 4 for an event naming its job: `+1` adds one reservation named after the job unless
/// it exists or the job already finished; `-1` removes that reservation wherever it is, and
/// remembers the job as finished. `completed` counts removals that happened.
fn apply_job_event(
    list: &mut Runs,
    event: &PlanEvent,
    job: &Arc<str>,
    expiration_time: DateTime<Utc>,
    (now, counts, finished): (DateTime<Utc>, &mut Counts, &mut Vec<Arc<str>>),
) {
    let position = list.position(job);
    if event.amount > 0 {
        if finished.contains(job) {
            counts.ignored_finished += 1;
            return;
        }
        if position.is_some() {
            return;
        }
        let entry = CapacityReservation {
            name: job.to_string(),
            effective_time: now,
            expiration_time,
            replicas: 1,
        };
        list.push(entry, 1);
        counts.added += 1;
    } else if event.amount < 0 {
        if let Some(i) = position {
            list.remove(i);
            counts.completed += 1;
        }
        if !finished.contains(job) {
            finished.push(job.clone());
        }
    }
}

/// Step 4 for one event without a job id (the reference behaviour).
fn apply_event(
    list: &mut Runs,
    event: &PlanEvent,
    now: DateTime<Utc>,
    expiration_time: DateTime<Utc>,
    counts: &mut Counts,
) {
    match event.amount {
        0 => {}
        amount if amount > 0 => {
            let n = amount.unsigned_abs();
            let entry = CapacityReservation {
                name: String::new(),
                effective_time: now,
                expiration_time,
                replicas: 1,
            };
            list.push(entry, n);
            counts.added = counts.added.saturating_add(n);
        }
        amount => {
            let n = amount.unsigned_abs();
            list.remove_oldest(n);
            counts.completed = counts.completed.saturating_add(n);
        }
    }
}

#[cfg(test)]
mod fold_tests;
#[cfg(test)]
mod job_tests;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod runs_tests;
