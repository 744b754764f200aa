//! Each HRA's queue: the events waiting for its next batch (folded as they arrive, with their
//! riders), its window, and whether an apply of it is in flight. Plain data under the
//! batcher's lock; nothing here waits or does IO.

pub use super::batch::{Batch, Late, Riders, Waiter};
use crate::domain::{
    hra::HraKey,
    planner::{Fold, PlanEvent},
};
use rustc_hash::FxHashMap;
use std::{collections::VecDeque, time::Duration};
use tokio::time::Instant;

/// Events of one HRA waiting for a batch.
#[derive(Debug)]
pub struct Pending {
    /// Folded as they arrive (O(job events), not O(events)).
    pub events: Fold,
    /// Producer events these stand for.
    pub count: u64,
    /// Waiters and event ids of these events.
    pub riders: Riders,
    /// When the first of these events was accepted.
    pub since: Instant,
    /// When this HRA's window closes.
    pub due: Instant,
}

/// How many events may be held (queued, or in a batch not yet final): in all, and per HRA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Most events held in all.
    pub total: u64,
    /// Most events held for one HRA (a retrying HRA takes events only up to this).
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
    /// This HRA holds its most events.
    #[error("HRA {key} already holds {limit} pending events (--max-pending-per-hra); retry later")]
    Hra {
        /// The HRA.
        key: HraKey,
        /// The bound.
        limit: u64,
    },
    /// The service holds its most events.
    #[error(
        "{limit} events are pending in all (--max-pending-events); retry later (event for HRA {key})"
    )]
    Total {
        /// The HRA the refused event was for.
        key: HraKey,
        /// The bound.
        limit: u64,
    },
}

/// Every HRA's queue.
#[derive(Default)]
pub struct Queues {
    /// Fx-hashed: keys are our own validated names, and this map is on the intake hot path.
    pending: FxHashMap<HraKey, Pending>,
    /// Window ends in the order they were opened, which is also the order of their times.
    windows: VecDeque<(Instant, HraKey)>,
    /// HRAs with a batch running, and how many events that batch holds.
    in_flight: FxHashMap<HraKey, u64>,
    /// Events held in all: pending and in running batches.
    held: u64,
    bounds: Bounds,
    /// Set on shutdown: windows no longer wait, intake is refused.
    pub closed: bool,
}

impl Queues {
    /// Empty queues that hold at most `bounds` events.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            ..Self::default()
        }
    }

    /// Events held in all (pending, and in batches not yet final).
    pub fn held(&self) -> u64 {
        self.held
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
        window: Duration,
    ) -> Result<bool, Exhausted> {
        if self.held >= self.bounds.total {
            let (key, limit) = (key.clone(), self.bounds.total);
            return Err(Exhausted::Total { key, limit });
        }
        let running = self.in_flight.get(key).copied().unwrap_or(0);
        let queued = self.pending.get(key).map_or(0, |p| p.count);
        if running + queued >= self.bounds.per_hra {
            let (key, limit) = (key.clone(), self.bounds.per_hra);
            return Err(Exhausted::Hra { key, limit });
        }
        self.held += 1;
        let mut first = false;
        // One lookup on the hot path; the key is cloned only when a window opens.
        let pending = match self.pending.get_mut(key) {
            Some(pending) => pending,
            None => {
                let now = Instant::now();
                let due = now + window;
                first = self.windows.is_empty();
                self.windows.push_back((due, key.clone()));
                let fresh = Pending {
                    events: Fold::default(),
                    count: 0,
                    riders: Riders::default(),
                    since: now,
                    due,
                };
                self.pending.entry(key.clone()).or_insert(fresh)
            }
        };
        pending.events.push(event);
        pending.count += 1;
        pending.riders.waiters.extend(waiter);
        pending.riders.event_ids.extend(event_id.cloned());
        Ok(first)
    }

    /// Takes `key`'s batch if it may start now: events pending, no apply in flight, and its
    /// window closed (or the queues closed). The key counts as in flight from then on.
    pub fn take_ready(&mut self, key: &HraKey, now: Instant) -> Option<(Batch, Riders)> {
        if self.in_flight.contains_key(key) {
            return None;
        }
        let due = self.pending.get(key)?.due;
        if due > now && !self.closed {
            return None;
        }
        let pending = self.pending.remove(key)?;
        self.in_flight.insert(key.clone(), pending.count);
        let batch = Batch {
            id: uuid::Uuid::new_v4().simple().to_string(),
            event_count: pending.count,
            since: pending.since,
            key: key.clone(),
            events: pending.events.into_events(),
            writes: Vec::new(),
        };
        Some((batch, pending.riders))
    }

    /// Takes the events that arrived for `key` while its batch runs (they count as that
    /// batch's from now on).
    pub fn take_late(&mut self, key: &HraKey) -> Option<Late> {
        let pending = self.pending.remove(key)?;
        *self.in_flight.entry(key.clone()).or_default() += pending.count;
        Some(Late {
            events: pending.events.into_events(),
            count: pending.count,
            riders: pending.riders,
            since: pending.since,
            due: pending.due,
        })
    }

    /// Puts events taken with [`Queues::take_late`] back, before any that came since.
    pub fn restore(&mut self, key: &HraKey, late: Late) {
        if let Some(running) = self.in_flight.get_mut(key) {
            *running = running.saturating_sub(late.count);
        }
        let mut events = Fold::default();
        for event in late.events {
            events.push(event);
        }
        let mut restored = Pending {
            events,
            count: late.count,
            riders: late.riders,
            since: late.since,
            due: late.due,
        };
        if let Some(newer) = self.pending.remove(key) {
            restored.events.extend(newer.events);
            restored.count += newer.count;
            restored.riders.extend(newer.riders);
            restored.due = restored.due.min(newer.due);
        }
        self.pending.insert(key.clone(), restored);
    }

    /// Marks `key`'s apply finished: its batch's events are no longer held.
    pub fn finish(&mut self, key: &HraKey) {
        let released = self.in_flight.remove(key).unwrap_or(0);
        self.held = self.held.saturating_sub(released);
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

    /// Applies in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Every HRA with events waiting, if nothing is pending or in flight: `None`.
    pub fn busy_keys(&self) -> Option<Vec<HraKey>> {
        if self.pending.is_empty() && self.in_flight.is_empty() {
            return None;
        }
        Some(self.pending.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn ev(amount: i64) -> PlanEvent {
        PlanEvent {
            amount,
            duration: Some(TimeDelta::minutes(1)),
            job: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn restored_events_go_back_before_newer_ones() {
        let key = HraKey::new("ns", "a");
        let mut q = Queues::default();
        let now = Instant::now();
        let window = Duration::from_secs(1);
        assert!(q.push(&key, ev(2), None, None, window).unwrap());
        let (batch, _) = q.take_ready(&key, now + window).unwrap();
        assert!(q.take_ready(&key, now + window).is_none(), "in flight");
        q.push(&key, ev(-1), None, None, window).unwrap();
        let late = q.take_late(&key).unwrap();
        tokio::time::advance(window).await;
        q.push(&key, ev(5), None, None, window).unwrap();
        q.restore(&key, late);
        q.finish(&key);
        let (next, _) = q.take_ready(&key, now + window).unwrap();
        let amounts: Vec<i64> = next.events.iter().map(|e| e.amount).collect();
        assert_eq!(amounts, [-1, 5]);
        assert_eq!(next.event_count, 2);
        assert_ne!(next.id, batch.id);
    }

    #[tokio::test(start_paused = true)]
    async fn bounds_count_queued_and_running_events_until_their_batch_ends() {
        let (a, b) = (HraKey::new("ns", "a"), HraKey::new("ns", "b"));
        let mut q = Queues::new(Bounds {
            total: 5,
            per_hra: 3,
        });
        let window = Duration::from_secs(1);
        for _ in 0..3 {
            q.push(&a, ev(1), None, None, window).unwrap();
        }
        let full = q.push(&a, ev(1), None, None, window).unwrap_err();
        assert_eq!(
            full,
            Exhausted::Hra {
                key: a.clone(),
                limit: 3
            }
        );
        assert!(full.to_string().contains("ns/a") && full.to_string().contains("3"));
        // Running (a retrying batch) still counts, and so do events absorbed into it.
        let now = Instant::now() + window;
        q.take_ready(&a, now).unwrap();
        assert!(
            q.push(&a, ev(1), None, None, window).is_err(),
            "still 3 held for a"
        );
        q.push(&b, ev(1), None, None, window).unwrap();
        q.push(&b, ev(1), None, None, window).unwrap();
        let total = q.push(&b, ev(1), None, None, window).unwrap_err();
        assert_eq!(
            total,
            Exhausted::Total {
                key: b.clone(),
                limit: 5
            }
        );
        assert_eq!(q.held(), 5);
        q.finish(&a);
        assert_eq!(q.held(), 2);
        q.push(&a, ev(1), None, None, window).unwrap();
        let late = q.take_late(&a).unwrap();
        q.restore(&a, late);
        assert_eq!(q.held(), 3, "restored events are held once");
    }
}
