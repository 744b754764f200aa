//! One batch and what travels with it: its events in arrival order, the writes sent for it
//! (each with the id it carries and how many events it held), the events that join it
//! between attempts, and the riders (waiters, event ids) that follow them to the outcome.

use crate::domain::{hra::HraKey, planner::PlanEvent, report::BatchReport};
use std::sync::Arc;
use tokio::{sync::oneshot, time::Instant};

/// Receives the final outcome of the batch that held an event.
pub type Waiter = oneshot::Sender<Arc<BatchReport>>;

/// What follows a batch's events to its outcome: callers waiting for it, and the event ids
/// to forget if it fails.
#[derive(Debug, Default)]
pub struct Riders {
    /// `ScaleAndWait` callers.
    pub waiters: Vec<Waiter>,
    /// Event ids of the batch's events.
    pub event_ids: Vec<String>,
}

impl Riders {
    /// Takes on another set's riders.
    pub fn extend(&mut self, other: Riders) {
        self.waiters.extend(other.waiters);
        self.event_ids.extend(other.event_ids);
    }
}

/// One batch: the events of one HRA taken from one window, in arrival order.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Unique id, stable across attempts, recorded on the HRA when written.
    pub id: String,
    /// The HRA.
    pub key: HraKey,
    /// The events in arrival order (folded).
    pub events: Vec<PlanEvent>,
    /// How many producer events these stand for.
    pub event_count: u64,
    /// When the oldest of them was accepted.
    pub since: Instant,
    /// Writes sent so far (they may have landed): the id each carried in the applied-batches
    /// annotation and how many of `events` it held. Events join a batch between attempts, so
    /// a write that landed may hold only a prefix of them; each prefix has its own write id.
    pub writes: Vec<(String, usize)>,
}

impl Batch {
    /// Takes on events that were handed to an attempt of this batch, returning their riders.
    pub fn absorb(&mut self, late: Late) -> Riders {
        self.events.extend(late.events);
        self.event_count += late.count;
        late.riders
    }

    /// The id a write of all events so far plus `late` more carries: the batch id for the
    /// first, the same id again for the same events, a new one (`id.N`) once events joined.
    pub fn write_id(&self, late: usize) -> String {
        let total = self.events.len() + late;
        match self.writes.last() {
            None => self.id.clone(),
            Some((id, held)) if *held == total => id.clone(),
            Some(_) => format!("{}.{}", self.id, self.writes.len()),
        }
    }

    /// Records a write sent with `id` holding every event of the batch so far.
    pub fn record_write(&mut self, id: String) {
        let held = self.events.len();
        if self.writes.last() != Some(&(id.clone(), held)) {
            self.writes.push((id, held));
        }
    }

    /// How many of the events the latest write found in `applied` (the HRA's applied-batches
    /// annotation) held: those have landed. `None` if none of its writes is there.
    pub fn landed(&self, applied: &[String]) -> Option<usize> {
        self.writes
            .iter()
            .rev()
            .find(|(id, _)| applied.contains(id))
            .map(|(_, held)| *held)
    }
}

/// Events taken from a queue for a running batch's next attempt.
#[derive(Debug)]
pub struct Late {
    /// The events, in order.
    pub events: Vec<PlanEvent>,
    /// Producer events these stand for.
    pub count: u64,
    /// Their riders.
    pub riders: Riders,
    /// When the oldest of them was accepted.
    pub(super) since: Instant,
    /// When their window closes, should they go back to the queue.
    pub(super) due: Instant,
}
