//! Each HRA's queue: the events waiting for its next batch (folded as they arrive, with the
//! promises made for them), its window, and what its running batch holds. Plain data under
//! the batcher's lock; nothing here waits or does IO.
//!
//! The bounds count replicas, not events: an event weighs `|amount|` (at least 1), and a
//! caller waiting on a repeat of a pending event id weighs 1, so neither a few huge events
//! nor many waiting repeats can hold more than the bounds allow.

pub use super::batch::{Batch, Joining, Place, Promises, Provenance, Source, Stretches, Waiter};
use crate::domain::{
    hra::HraKey,
    planner::{Fold, PlanEvent},
};
use rustc_hash::FxHashMap;
use std::{collections::VecDeque, time::Duration};
use tokio::time::Instant;

/// Events of one HRA waiting for a batch.
#[derive(Debug)]
struct Pending {
    /// Folded as they arrive (O(job events), not O(events)).
    events: Fold,
    /// Producer events these stand for.
    count: u64,
    /// Producer events per stretch between job events.
    stretches: Stretches,
    /// What they weigh against the bounds.
    weight: u64,
    /// Waiters and event ids of these events.
    promises: Promises,
    /// Where these events came from.
    provenance: Provenance,
    /// When the first of these events was accepted.
    since: Instant,
    /// When this HRA's window closes.
    due: Instant,
}

/// How much may be held (queued, or in a batch not yet final), in replicas: in all, and per
/// HRA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Most held in all.
    pub total: u64,
    /// Most held for one HRA (a retrying HRA takes events only up to this).
    pub per_hra: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            total: u64::MAX,
            per_hra: u64::MAX,
        }
    }
}

/// An event refused because a bound is reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Exhausted {
    /// This HRA holds its most.
    #[error(
        "HRA {key} already holds {limit} pending replicas (--max-pending-per-hra); retry later"
    )]
    Hra {
        /// The HRA.
        key: HraKey,
        /// The bound.
        limit: u64,
    },
    /// The service holds its most.
    #[error(
        "{limit} replicas are pending in all (--max-pending-events); retry later (event for HRA {key})"
    )]
    Total {
        /// The HRA the refused event was for.
        key: HraKey,
        /// The bound.
        limit: u64,
    },
}

/// What an event or a waiting repeat weighs against the bounds: its replicas, at least one.
pub fn weight(amount: i64) -> u64 {
    amount.unsigned_abs().max(1)
}

/// Every HRA's queue.
#[derive(Default)]
pub struct Queues {
    /// Fx-hashed: keys are our own validated names, and this map is on the intake hot path.
    pending: FxHashMap<HraKey, Pending>,
    /// Window ends in the order they were opened, which is also the order of their times.
    windows: VecDeque<(Instant, HraKey)>,
    /// HRAs with a batch running, and what that batch weighs.
    running: FxHashMap<HraKey, u64>,
    /// Callers waiting on repeats of pending event ids, per HRA.
    joined: FxHashMap<HraKey, u64>,
    /// HRAs whose last batch needed a retry or failed: their next attempts queue with the
    /// retries, so a failing HRA's new batches cannot crowd out healthy ones either.
    troubled: rustc_hash::FxHashSet<HraKey>,
    /// Weight held in all: pending, running and joined.
    held: u64,
    bounds: Bounds,
    /// Set on shutdown: windows no longer wait, intake is refused.
    pub closed: bool,
}

impl Queues {
    /// Empty queues that hold at most `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            ..Self::default()
        }
    }

    /// Weight held in all (pending, in batches not yet final, and waiting repeats).
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Refuses `weight` more for `key` if it would pass a bound.
    pub fn check_room(&self, key: &HraKey, weight: u64) -> Result<(), Exhausted> {
        if self.held.saturating_add(weight) > self.bounds.total {
            let (key, limit) = (key.clone(), self.bounds.total);
            return Err(Exhausted::Total { key, limit });
        }
        let running = self.running.get(key).copied().unwrap_or(0);
        let queued = self.pending.get(key).map_or(0, |p| p.weight);
        let joined = self.joined.get(key).copied().unwrap_or(0);
        let hra = running.saturating_add(queued).saturating_add(joined);
        if hra.saturating_add(weight) > self.bounds.per_hra {
            let (key, limit) = (key.clone(), self.bounds.per_hra);
            return Err(Exhausted::Hra { key, limit });
        }
        Ok(())
    }

    /// Appends an event (with its waiter and event id) to `key`'s queue, opening its window
    /// (closing `window` from now) if it has none. True when this opened the first window of
    /// all. This is the intake hot path: the clock is read only when a window opens.
    pub fn push(
        &mut self,
        key: &HraKey,
        event: PlanEvent,
        waiter: Option<Waiter>,
        event_id: Option<&String>,
        source: Source<'_>,
        window: Duration,
    ) -> Result<bool, Exhausted> {
        let weight = weight(event.amount);
        self.check_room(key, weight)?;
        self.held += weight;
        let mut first = false;
        // One lookup on the hot path; the key is cloned only when a window opens.
        let pending = match self.pending.get_mut(key) {
            Some(pending) => pending,
            None => {
                let now = Instant::now();
                let due = now.checked_add(window).unwrap_or(now);
                first = self.windows.is_empty();
                self.windows.push_back((due, key.clone()));
                let fresh = Pending {
                    events: Fold::default(),
                    count: 0,
                    stretches: Stretches::default(),
                    weight: 0,
                    promises: Promises::default(),
                    provenance: Provenance::default(),
                    since: now,
                    due,
                };
                self.pending.entry(key.clone()).or_insert(fresh)
            }
        };
        pending.provenance.note(source, event.job.as_ref());
        let job = event.job.is_some();
        let place = Place::new(pending.stretches.jobs(), job);
        pending.stretches.note(job);
        pending.events.push(event);
        pending.count += 1;
        pending.weight += weight;
        pending.promises.add(place, waiter, event_id);
        Ok(first)
    }

    /// Holds room for `n` callers waiting on repeats of `key`'s pending event ids.
    pub fn hold_joined(&mut self, key: &HraKey, n: u64) {
        *self.joined.entry(key.clone()).or_default() += n;
        self.held += n;
    }

    /// Releases room held by [`Queues::hold_joined`] (answered, or their callers gone).
    pub fn release_joined(&mut self, key: &HraKey, n: u64) {
        if let Some(joined) = self.joined.get_mut(key) {
            let n = n.min(*joined);
            *joined -= n;
            self.held -= n;
            if *joined == 0 {
                self.joined.remove(key);
            }
        }
    }

    /// Takes `key`'s batch if it may start now: events pending, no batch running, and its
    /// window closed (or the queues closed). The key counts as running from then on.
    pub fn take_ready(&mut self, key: &HraKey, now: Instant) -> Option<(Batch, Promises)> {
        if self.running.contains_key(key) {
            return None;
        }
        let due = self.pending.get(key)?.due;
        if due > now && !self.closed {
            return None;
        }
        let pending = self.pending.remove(key)?;
        self.running.insert(key.clone(), pending.weight);
        let mut batch = Batch::new(
            key.clone(),
            pending.events.into_events(),
            pending.count,
            pending.since,
        );
        batch.provenance = pending.provenance;
        batch.stretches = pending.stretches;
        Some((batch, pending.promises))
    }

    /// Takes the events that arrived for `key` while its batch runs (they count as that
    /// batch's from now on).
    pub fn take_joining(&mut self, key: &HraKey) -> Option<Joining> {
        let pending = self.pending.remove(key)?;
        *self.running.entry(key.clone()).or_default() += pending.weight;
        Some(Joining {
            events: pending.events.into_events(),
            count: pending.count,
            stretches: pending.stretches,
            promises: pending.promises,
            provenance: pending.provenance,
            weight: pending.weight,
            since: pending.since,
            due: pending.due,
        })
    }

    /// Puts events taken with [`Queues::take_joining`] back, before any that came since.
    pub fn restore(&mut self, key: &HraKey, joining: Joining) {
        if let Some(running) = self.running.get_mut(key) {
            *running = running.saturating_sub(joining.weight);
        }
        let mut events = Fold::default();
        for event in joining.events {
            events.push(event);
        }
        let mut restored = Pending {
            events,
            count: joining.count,
            stretches: joining.stretches,
            weight: joining.weight,
            promises: joining.promises,
            provenance: joining.provenance,
            since: joining.since,
            due: joining.due,
        };
        if let Some(newer) = self.pending.remove(key) {
            restored.events.extend(newer.events);
            restored.count += newer.count;
            restored.weight += newer.weight;
            restored
                .promises
                .extend_after(restored.stretches.jobs(), newer.promises);
            restored.stretches.extend(newer.stretches);
            restored.provenance.extend(newer.provenance);
            restored.due = restored.due.min(newer.due);
        }
        self.pending.insert(key.clone(), restored);
    }

    /// Marks `key`'s batch ended: what it held is released.
    pub fn release(&mut self, key: &HraKey) {
        let released = self.running.remove(key).unwrap_or(0);
        self.held = self.held.saturating_sub(released);
    }

    /// Notes whether `key`'s last batch went through cleanly (applied at its first attempt).
    pub fn set_troubled(&mut self, key: &HraKey, troubled: bool) {
        if troubled {
            self.troubled.insert(key.clone());
        } else {
            self.troubled.remove(key);
        }
    }

    /// True if `key`'s last batch needed a retry or failed.
    pub fn is_troubled(&self, key: &HraKey) -> bool {
        self.troubled.contains(key)
    }

    /// When the earliest open window closes.
    pub fn next_due(&self) -> Option<Instant> {
        self.windows.front().map(|w| w.0)
    }

    /// The HRAs whose windows have closed by `now` (each window reported once).
    pub fn due(&mut self, now: Instant) -> Vec<HraKey> {
        let mut due = Vec::new();
        while self.windows.front().is_some_and(|w| w.0 <= now) {
            due.extend(self.windows.pop_front().map(|w| w.1));
        }
        due
    }

    /// HRAs with events waiting for a batch.
    pub fn pending_hras(&self) -> usize {
        self.pending.len()
    }

    /// Batches running.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Every HRA with events waiting, if anything is pending or running; `None` otherwise.
    pub fn busy_keys(&self) -> Option<Vec<HraKey>> {
        if self.pending.is_empty() && self.running.is_empty() {
            return None;
        }
        Some(self.pending.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests;
