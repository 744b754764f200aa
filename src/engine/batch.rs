//! One batch and what travels with it: its events in arrival order, the writes sent for it
//! (each with the id it carries and how many events it held), and the promises made for its
//! events (callers waiting for the outcome, event ids to settle).

pub use super::promises::{Place, Promises, Stretches, Waiter};
use crate::{
    domain::{
        event::Origin,
        hra::{AppliedBatches, HraKey},
        planner::PlanEvent,
    },
    ops::traces,
};
use opentelemetry::trace::SpanContext;
use std::sync::Arc;
use tokio::time::Instant;

/// Where a batch's events came from, as far as its write and its report need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The repository of each job-named event that gave one (job id, `OWNER/REPO`).
    pub repositories: Vec<(Arc<str>, Arc<str>)>,
    /// Events recovered from failed webhook deliveries.
    pub recovered: u64,
    /// Completions of reservations whose job GitHub reports finished.
    pub verified: u64,
    /// The spans the events arrived in (traces exported only), for the batch span's links.
    pub traces: Vec<SpanContext>,
}

/// What one event adds to its batch's [`Provenance`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Source<'a> {
    /// Where it came from.
    pub origin: Origin,
    /// Its job's repository, if known.
    pub repository: Option<&'a Arc<str>>,
    /// The span it arrived in, when traces are exported.
    pub trace: Option<&'a SpanContext>,
}

impl Provenance {
    /// Notes one event (its job id, if any, from `job`).
    pub fn note(&mut self, source: Source<'_>, job: Option<&Arc<str>>) {
        match source.origin {
            Origin::Producer => {}
            Origin::Recovered => self.recovered += 1,
            Origin::Verified => self.verified += 1,
        }
        if let (Some(job), Some(repo)) = (job, source.repository) {
            self.repositories.push((job.clone(), repo.clone()));
        }
        // Several events of one call share its span: linked once.
        if let Some(trace) = source.trace
            && self.traces.len() < traces::MAX_LINKS as usize
            && self
                .traces
                .last()
                .is_none_or(|t| t.span_id() != trace.span_id())
        {
            self.traces.push(trace.clone());
        }
    }

    /// Takes on another batch part's provenance.
    pub fn extend(&mut self, other: Provenance) {
        self.repositories.extend(other.repositories);
        self.recovered += other.recovered;
        self.verified += other.verified;
        self.traces.extend(other.traces);
        self.traces.truncate(traces::MAX_LINKS as usize);
    }
}

/// Events taken from an HRA's queue to join its running batch at its next attempt.
#[derive(Debug)]
pub struct Joining {
    /// The events, in order.
    pub events: Vec<PlanEvent>,
    /// Producer events these stand for.
    pub count: u64,
    /// Their waiters and event ids.
    pub promises: Promises,
    /// Where they came from.
    pub provenance: Provenance,
    /// Producer events per stretch between their job events.
    pub(super) stretches: Stretches,
    /// What they weigh against the bounds.
    pub(super) weight: u64,
    /// When the oldest of them was accepted.
    pub(super) since: Instant,
    /// When their window closes, should they go back to the queue.
    pub(super) due: Instant,
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
    /// Where they came from.
    pub provenance: Provenance,
    /// Producer events per stretch between job events (empty: not known).
    pub stretches: Stretches,
    /// When the oldest of them was accepted.
    pub since: Instant,
    /// Writes sent so far (they may have landed): the id each carried in the applied-batches
    /// annotation and how many of `events` it held. Events join a batch between attempts, so
    /// a write that landed may hold only a prefix of them; each prefix has its own write id.
    writes: Vec<(String, usize)>,
}

impl Batch {
    /// A new batch of `events` (standing for `event_count` producer events) for `key`.
    pub fn new(key: HraKey, events: Vec<PlanEvent>, event_count: u64, since: Instant) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            key,
            events,
            event_count,
            provenance: Provenance::default(),
            stretches: Stretches::default(),
            since,
            writes: Vec::new(),
        }
    }

    /// Job events among its events.
    pub fn jobs(&self) -> u32 {
        let n = self.events.iter().filter(|e| e.job.is_some()).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Takes on events that joined it between attempts into `promises`.
    pub fn absorb(&mut self, joining: Joining, promises: &mut Promises) {
        let jobs = self.jobs();
        self.events.extend(joining.events);
        self.event_count += joining.count;
        self.provenance.extend(joining.provenance);
        self.stretches.extend(joining.stretches);
        promises.extend_after(jobs, joining.promises);
    }

    /// Splits it in arrival order: it keeps its events before its job event number `jobs`
    /// (0-based), with their promises; the rest, a batch of their own (`ID-overflow`), and
    /// their promises are returned.
    pub fn split_off(&mut self, jobs: u32, promises: &mut Promises) -> (Batch, Promises) {
        let at = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.job.is_some())
            .nth(jobs as usize)
            .map_or(self.events.len(), |(i, _)| i);
        let rest = self.events.split_off(at);
        let kept = self
            .stretches
            .kept(jobs)
            .unwrap_or(self.events.len() as u64)
            .min(self.event_count);
        let overflow = Batch {
            id: format!("{}-overflow", self.id),
            key: self.key.clone(),
            event_count: self.event_count - kept,
            events: rest,
            provenance: Provenance::default(),
            stretches: Stretches::default(),
            since: self.since,
            writes: Vec::new(),
        };
        self.event_count = kept;
        self.stretches.truncate(jobs);
        (overflow, promises.split_off(jobs))
    }

    /// The id a write of all events so far plus `joining` more carries: the batch id for the
    /// first, the same id again for the same events, a new one (`id.N`) once events joined.
    pub fn write_id(&self, joining: usize) -> String {
        let total = self.events.len() + joining;
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
    /// entries) held: those have landed. `None` if none of its writes is there.
    pub fn landed(&self, applied: &AppliedBatches) -> Option<usize> {
        self.writes
            .iter()
            .rev()
            .find(|(id, _)| applied.contains(id))
            .map(|(_, held)| *held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::planner::PlanEvent;

    fn job(id: &str) -> PlanEvent {
        PlanEvent {
            amount: 1,
            duration: None,
            job: Some(id.into()),
            started: None,
        }
    }

    fn jobless() -> PlanEvent {
        PlanEvent {
            amount: 1,
            duration: None,
            job: None,
            started: None,
        }
    }

    #[test]
    fn a_split_keeps_events_before_a_job_event_in_arrival_order() {
        // Arrival: jobless a, job 1, jobless b, jobless c, job 2, job 3 (+ promises for each).
        let arrivals = [
            (false, "a"),
            (true, "1"),
            (false, "b"),
            (false, "c"),
            (true, "2"),
            (true, "3"),
        ];
        let mut stretches = Stretches::default();
        let mut promises = Promises::default();
        let mut events = Vec::new();
        for (is_job, name) in arrivals {
            promises.add(
                Place::new(stretches.jobs(), is_job),
                None,
                Some(&name.to_owned()),
            );
            stretches.note(is_job);
            events.push(if is_job { job(name) } else { jobless() });
        }
        let mut batch = Batch::new(HraKey::new("ci", "a"), events, 6, Instant::now());
        batch.stretches = stretches;
        // Keep two job events: everything before job 3.
        let (overflow, gone) = batch.split_off(2, &mut promises);
        assert_eq!(promises.event_ids, ["a", "1", "b", "c", "2"]);
        assert_eq!(gone.event_ids, ["3"]);
        assert_eq!((batch.event_count, overflow.event_count), (5, 1));
        assert_eq!((batch.events.len(), overflow.events.len()), (5, 1));
        assert_eq!(overflow.id, format!("{}-overflow", batch.id));
        // Keep none: only what came before job 1.
        let (_, gone) = batch.split_off(0, &mut promises);
        assert_eq!(promises.event_ids, ["a"]);
        assert_eq!(gone.event_ids, ["1", "b", "c", "2"]);
        assert_eq!(batch.event_count, 1);
    }
}
