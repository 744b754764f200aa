//! The jobs a ledger follows: waiting or running ones, and finished ones remembered so that
//! a redelivered or repeated event counts nothing twice. Both bounded: the oldest entries go
//! first.

use crate::domain::codec::numeric;
use chrono::{DateTime, TimeDelta, Utc};
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

/// A job id as the ledger keeps it: GitHub's numeric ids without an allocation of their own
/// (a deep backlog holds 100,000 of them).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Num(u64),
    Name(Arc<str>),
}

fn key(job: &str) -> Key {
    numeric(job).map_or_else(|| Key::Name(Arc::from(job)), Key::Num)
}

/// Most waiting or running jobs one HRA's ledger follows (past it the oldest are forgotten:
/// their later events still count their own times, but the gauges miss them).
pub const ACTIVE_CAPACITY: usize = 100_000;
/// Most finished jobs one HRA's ledger remembers (as `--tombstone-capacity` by default).
pub const FINISHED_CAPACITY: usize = 20_000;

/// A job waiting or running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Active {
    /// `created_at`, when known.
    pub created: Option<DateTime<Utc>>,
    /// `started_at`: set once the job started (its wait counted).
    pub started: Option<DateTime<Utc>>,
    /// Its reservation's expiry was counted.
    pub expiry_counted: bool,
}

/// A finished job: its times, to place an expiry reported after it finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// When it started, if it did.
    pub started: Option<DateTime<Utc>>,
    /// When it completed.
    pub completed: Option<DateTime<Utc>>,
    /// Its reservation's expiry was counted.
    pub expiry_counted: bool,
}

/// The jobs of one ledger.
#[derive(Default)]
pub struct Jobs {
    active: HashMap<Key, Active>,
    /// Insertion order (ids may have left `active` since).
    active_order: VecDeque<Key>,
    finished: HashMap<Key, Done>,
    /// When each was remembered, oldest first.
    finished_order: VecDeque<(Key, DateTime<Utc>)>,
    running: usize,
}

impl Jobs {
    /// The waiting or running job `job`.
    pub fn active(&mut self, job: &str) -> Option<&mut Active> {
        self.active.get_mut(&key(job))
    }

    /// The finished job `job`.
    pub fn finished(&mut self, job: &str) -> Option<&mut Done> {
        self.finished.get_mut(&key(job))
    }

    /// Starts following `job` (unless it is followed or finished); returns it.
    pub fn follow(&mut self, job: &str, created: Option<DateTime<Utc>>) -> Option<&mut Active> {
        let job = key(job);
        if self.finished.contains_key(&job) {
            return None;
        }
        if !self.active.contains_key(&job) {
            if self.active.len() >= ACTIVE_CAPACITY {
                self.forget_oldest_active();
            }
            let fresh = Active {
                created,
                ..Active::default()
            };
            self.active.insert(job.clone(), fresh);
            self.active_order.push_back(job.clone());
        }
        let entry = self.active.get_mut(&job)?;
        entry.created = entry.created.or(created);
        Some(entry)
    }

    /// Marks a followed job started.
    pub fn start(&mut self, job: &str, at: DateTime<Utc>) {
        if let Some(a) = self.active.get_mut(&key(job))
            && a.started.is_none()
        {
            a.started = Some(at);
            self.running += 1;
        }
    }

    /// Moves `job` to the finished ones (remembered for `ttl` at most); returns what was
    /// known of it while it was active.
    pub fn finish(
        &mut self,
        job: &str,
        done: Done,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Option<Active> {
        let job = key(job);
        let was = self.active.remove(&job);
        if was.is_some_and(|a| a.started.is_some()) {
            self.running -= 1;
        }
        let done = Done {
            expiry_counted: done.expiry_counted || was.is_some_and(|a| a.expiry_counted),
            ..done
        };
        self.forget_finished(now - ttl);
        if self.finished.len() >= FINISHED_CAPACITY
            && let Some((old, _)) = self.finished_order.pop_front()
        {
            self.finished.remove(&old);
        }
        self.finished.insert(job.clone(), done);
        self.finished_order.push_back((job, now));
        was
    }

    /// True when `job` finished (and is still remembered).
    pub fn is_finished(&self, job: &str) -> bool {
        self.finished.contains_key(&key(job))
    }

    /// `(waiting, running)` jobs now.
    pub fn gauges(&self) -> (usize, usize) {
        (self.active.len() - self.running, self.running)
    }

    /// Entries held, active and finished (for the memory figures).
    pub fn len(&self) -> (usize, usize) {
        (self.active.len(), self.finished.len())
    }

    fn forget_oldest_active(&mut self) {
        while let Some(old) = self.active_order.pop_front() {
            if let Some(a) = self.active.remove(&old) {
                if a.started.is_some() {
                    self.running -= 1;
                }
                return;
            }
        }
    }

    fn forget_finished(&mut self, before: DateTime<Utc>) {
        while let Some((job, at)) = self.finished_order.front() {
            if *at >= before {
                break;
            }
            self.finished.remove(job);
            self.finished_order.pop_front();
        }
        // Ids that left `active` linger in its order; drop them once they outnumber the rest.
        if self.active_order.len() > 2 * self.active.len() + 1024 {
            let active = &self.active;
            self.active_order.retain(|j| active.contains_key(j));
        }
    }
}
