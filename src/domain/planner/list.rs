//! A plan's working list: the named entries (`Runs`) followed by the groups (`Tail`), read
//! as one list in order. Events act on the list as on the reference's; [`List::settle`] then
//! lays it out again: the first `named` units named, the rest grouped.

use super::{
    runs::Runs,
    tail::{Group, Promoted, Tail},
};
use crate::domain::{hra::CapacityReservation, warm::is_warm};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The working list of one plan.
pub(super) struct List {
    pub(super) head: Runs,
    pub(super) tail: Tail,
    /// How many units stay named.
    pub(super) named: u64,
}

fn entry(name: &str, effective: DateTime<Utc>, expiration: DateTime<Utc>) -> CapacityReservation {
    CapacityReservation {
        name: name.to_owned(),
        effective_time: effective,
        expiration_time: expiration,
        replicas: 1,
    }
}

impl List {
    /// Units of capacity held (jobs and job-less units), as ARC sums them.
    pub(super) fn len(&self) -> u64 {
        self.head.len.saturating_add(self.tail.len)
    }

    /// True when a reservation holds `job`, named or grouped.
    pub(super) fn contains(&self, job: &str) -> bool {
        self.head.position(job).is_some() || self.tail.contains(job)
    }

    /// Appends `job`'s reservation: named while nothing is grouped and there is room.
    pub(super) fn add_job(
        &mut self,
        job: &str,
        (now, expiration): (DateTime<Utc>, DateTime<Utc>),
        repository: Option<&Arc<str>>,
    ) {
        if self.tail.len == 0 && self.head.len < self.named {
            self.head.push(entry(job, now, expiration), 1);
        } else {
            self.tail
                .add_job(job, (now, expiration), now.timestamp(), repository);
        }
    }

    /// Appends `n` job-less units.
    pub(super) fn add_anonymous(&mut self, n: u64, times: (DateTime<Utc>, DateTime<Utc>)) {
        let direct = if self.tail.len == 0 {
            n.min(self.named.saturating_sub(self.head.len))
        } else {
            0
        };
        self.head.push(entry("", times.0, times.1), direct);
        self.tail.add_anonymous(n - direct, times);
    }

    /// Removes `job`'s reservation wherever it is; false when none holds it.
    pub(super) fn complete(&mut self, job: &str) -> bool {
        match self.head.position(job) {
            Some(i) => {
                self.head.remove(i);
                true
            }
            None => self.tail.remove(job).is_some(),
        }
    }

    /// Removes the oldest named warm reservation (`warm-…`); false when none is held.
    pub(super) fn claim_warm(&mut self) -> bool {
        match self.head.runs.iter().position(|(r, _)| is_warm(&r.name)) {
            Some(i) => {
                self.head.remove(i);
                true
            }
            None => false,
        }
    }

    /// Gives `job`'s reservation, wherever it is held, new times (a grouped job moves to the
    /// group of its new times, keeping its queued second and repository); false when none
    /// holds it.
    pub(super) fn restart(
        &mut self,
        job: &str,
        (effective, expiration): (DateTime<Utc>, DateTime<Utc>),
    ) -> bool {
        if let Some(i) = self.head.position(job) {
            let (entry, _) = &mut self.head.runs[i];
            entry.effective_time = effective;
            entry.expiration_time = expiration;
            return true;
        }
        let Some(taken) = self.tail.remove(job) else {
            return false;
        };
        let times = (effective, expiration);
        let repository = taken.repository.as_ref();
        self.tail
            .add_job(&taken.job, times, taken.since, repository);
        true
    }

    /// Removes the `n` oldest units (the reference's scale-down).
    pub(super) fn remove_oldest(&mut self, n: u64) {
        let removed = self.head.remove_oldest(n);
        self.tail.remove_oldest(n - removed);
    }

    /// Lays the list out again: named entries beyond `named` move into groups (keeping
    /// their times), and the oldest grouped units fill the named entries up to `named`.
    /// Returns the repository of each job that became named.
    pub(super) fn settle(
        &mut self,
        repository_of: impl Fn(&str) -> Option<Arc<str>>,
    ) -> Vec<(Arc<str>, Arc<str>)> {
        if self.head.len > self.named {
            let rest = self.head.split_off(self.named);
            let groups = grouped(rest, self.tail.group_size, repository_of);
            self.tail.prepend(groups);
        }
        let mut repositories = Vec::new();
        let room = self.named.saturating_sub(self.head.len);
        if room == 0 || self.tail.len == 0 {
            return repositories;
        }
        for promoted in self.tail.take_front(room) {
            match promoted {
                Promoted::Anonymous(n, from, to) => self.head.push(entry("", from, to), n),
                Promoted::Job(job, from, to) => {
                    self.head.push(entry(&job.job, from, to), 1);
                    if let Some(repository) = job.repository {
                        repositories.push((job.job, repository));
                    }
                }
            }
        }
        repositories
    }
}

/// Named entries (in order) as groups: consecutive entries of the same times share one.
fn grouped(
    entries: Vec<(CapacityReservation, u64)>,
    group_size: usize,
    repository_of: impl Fn(&str) -> Option<Arc<str>>,
) -> Vec<Group> {
    let mut tail = Tail::new(group_size);
    for (entry, copies) in entries {
        let times = (entry.effective_time, entry.expiration_time);
        if entry.name.is_empty() {
            tail.add_anonymous(copies, times);
        } else {
            let repository = repository_of(&entry.name);
            let since = entry.effective_time.timestamp();
            tail.add_job(&entry.name, times, since, repository.as_ref());
        }
    }
    tail.groups.into()
}
