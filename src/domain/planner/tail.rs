//! The grouped part of a plan's list: the jobs waiting behind the named ones, in reservations
//! of `replicas: N` (see `domain::groups`), oldest group first.

use crate::domain::{
    codec::{Members, Taken},
    duration::saturating_add,
    hra::CapacityReservation,
};
use chrono::{DateTime, Utc};
use std::{collections::VecDeque, sync::Arc};

/// One grouped reservation: its times, its named jobs and its job-less units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Group {
    pub(super) effective: DateTime<Utc>,
    pub(super) expiration: DateTime<Utc>,
    pub(super) members: Arc<Members>,
    pub(super) anonymous: u64,
    /// The name as read, while the members are unchanged (no need to encode them again).
    pub(super) name: Option<String>,
}

impl Group {
    /// An empty group with these times.
    fn new(effective: DateTime<Utc>, expiration: DateTime<Utc>) -> Self {
        Self {
            effective,
            expiration,
            members: Arc::default(),
            anonymous: 0,
            name: None,
        }
    }

    /// The units of capacity it holds.
    pub(super) fn len(&self) -> u64 {
        self.members.len() as u64 + self.anonymous
    }

    fn members_mut(&mut self) -> &mut Members {
        self.name = None;
        Arc::make_mut(&mut self.members)
    }

    /// The reservation written for it.
    pub(super) fn into_reservation(self) -> CapacityReservation {
        let replicas = i32::try_from(self.len()).unwrap_or(i32::MAX);
        CapacityReservation {
            name: self.name.unwrap_or_else(|| self.members.encode()),
            effective_time: self.effective,
            expiration_time: self.expiration,
            replicas,
        }
    }
}

/// What moves from the front of the groups to the named entries.
pub(super) enum Promoted {
    /// Job-less units, with their group's times.
    Anonymous(u64, DateTime<Utc>, DateTime<Utc>),
    /// A named job, with its group's times.
    Job(Taken, DateTime<Utc>, DateTime<Utc>),
}

/// The groups of a plan, oldest first, and the units they hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Tail {
    pub(super) groups: VecDeque<Group>,
    pub(super) len: u64,
    /// Most named jobs a group takes.
    pub(super) group_size: usize,
}

impl Tail {
    /// An empty tail whose groups take at most `group_size` named jobs.
    pub(super) fn new(group_size: usize) -> Self {
        Self {
            group_size: group_size.max(1),
            ..Self::default()
        }
    }

    /// Appends a group as read.
    pub(super) fn push_group(&mut self, group: Group) {
        self.len = self.len.saturating_add(group.len());
        self.groups.push_back(group);
    }

    /// Puts `groups` (older than every group held) in front, in order.
    pub(super) fn prepend(&mut self, groups: Vec<Group>) {
        for group in groups.into_iter().rev() {
            self.len = self.len.saturating_add(group.len());
            self.groups.push_front(group);
        }
    }

    /// Drops the groups expiring at or before `now`; appends their jobs, with when each
    /// expired, to `expired`.
    pub(super) fn drop_expired(
        &mut self,
        now: DateTime<Utc>,
        expired: &mut Vec<(Arc<str>, DateTime<Utc>)>,
    ) {
        for g in self.groups.iter().filter(|g| g.expiration <= now) {
            expired.extend(g.members.iter().map(|m| (m.job, g.expiration)));
        }
        self.groups.retain(|g| g.expiration > now);
        self.len = self.groups.iter().map(Group::len).sum();
    }

    /// True when a group holds `job`.
    pub(super) fn contains(&self, job: &str) -> bool {
        self.groups.iter().any(|g| g.members.contains(job))
    }

    /// Removes `job` from the group holding it and returns it (with its queued second and
    /// repository); `None` when no group holds it.
    pub(super) fn remove(&mut self, job: &str) -> Option<Taken> {
        let i = self.groups.iter().position(|g| g.members.contains(job))?;
        let taken = self.groups[i].members_mut().remove(job);
        self.len -= 1;
        if self.groups[i].len() == 0 {
            self.groups.remove(i);
        }
        taken
    }

    /// The last group if it has these times and holds the same kind of unit (named jobs, with
    /// room for one more, or job-less ones), else a new one. A group never mixes the two, so
    /// the list keeps the order in which they came.
    fn open(
        &mut self,
        effective: DateTime<Utc>,
        expiration: DateTime<Utc>,
        named: bool,
    ) -> &mut Group {
        let fits = self.groups.back().is_some_and(|g| {
            g.effective == effective
                && g.expiration == expiration
                && if named {
                    g.anonymous == 0 && g.members.len() < self.group_size
                } else {
                    g.members.is_empty()
                }
        });
        if !fits {
            self.groups.push_back(Group::new(effective, expiration));
        }
        self.groups.back_mut().expect("a group was just pushed")
    }

    /// Appends a named job.
    pub(super) fn add_job(
        &mut self,
        job: &str,
        (effective, expiration): (DateTime<Utc>, DateTime<Utc>),
        since: i64,
        repository: Option<&Arc<str>>,
    ) {
        if self
            .open(effective, expiration, true)
            .members_mut()
            .insert(job, since, repository)
        {
            self.len += 1;
        }
    }

    /// Appends `n` job-less units (a group holds at most `i32::MAX`, what `replicas` can).
    pub(super) fn add_anonymous(&mut self, mut n: u64, times: (DateTime<Utc>, DateTime<Utc>)) {
        const MOST: u64 = i32::MAX as u64;
        while n > 0 {
            let mut group = self.open(times.0, times.1, false);
            if group.len() >= MOST {
                self.groups.push_back(Group::new(times.0, times.1));
                group = self.groups.back_mut().expect("a group was just pushed");
            }
            let add = n.min(MOST - group.len());
            group.anonymous += add;
            self.len = self.len.saturating_add(add);
            n -= add;
        }
    }

    /// Removes the `n` oldest units: the front group's job-less units first, then its jobs
    /// with the smallest ids; returns how many it removed.
    pub(super) fn remove_oldest(&mut self, n: u64) -> u64 {
        self.take_front(n)
            .iter()
            .map(|taken| match taken {
                Promoted::Anonymous(units, ..) => *units,
                Promoted::Job(..) => 1,
            })
            .sum()
    }

    /// Takes the `n` oldest units out (the front group's job-less units first, then its jobs
    /// with the smallest ids), to be named or dropped.
    pub(super) fn take_front(&mut self, n: u64) -> Vec<Promoted> {
        let mut taken = Vec::new();
        let mut left = n;
        while left > 0 {
            let Some(group) = self.groups.front_mut() else {
                break;
            };
            let times = (group.effective, group.expiration);
            let anonymous = group.anonymous.min(left);
            if anonymous > 0 {
                group.anonymous -= anonymous;
                left -= anonymous;
                taken.push(Promoted::Anonymous(anonymous, times.0, times.1));
            }
            let jobs = usize::try_from(left).unwrap_or(usize::MAX);
            if jobs > 0 && !group.members.is_empty() {
                for job in group.members_mut().take_first(jobs) {
                    left -= 1;
                    taken.push(Promoted::Job(job, times.0, times.1));
                }
            }
            if group.len() == 0 {
                self.groups.pop_front();
            }
        }
        self.len -= n - left;
        taken
    }

    /// Restarts every group at `now`, keeping its life (the reference's backlog extension).
    pub(super) fn extend_from(&mut self, index: usize, max: usize, now: DateTime<Utc>) {
        let mut at = index as u64;
        for group in &mut self.groups {
            if at.saturating_add(group.len()) > max as u64 {
                let life = group.expiration.signed_duration_since(group.effective);
                group.effective = now;
                group.expiration = saturating_add(now, life);
            }
            at = at.saturating_add(group.len());
        }
    }
}
