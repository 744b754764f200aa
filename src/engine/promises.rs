//! What a batch owes its events, and where each stands among the batch's job events, so that
//! a batch can be split in arrival order: the promises (waiting callers, event ids) and the
//! producer-event counts go with the events they belong to.

use crate::domain::report::BatchReport;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Receives the final outcome of the batch that held an event.
pub type Waiter = oneshot::Sender<Arc<BatchReport>>;

/// Where an event stands among its batch's job events, so that a batch can be split in
/// arrival order at a job event: the job events before it, and whether it is one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    jobs_before: u32,
    job: bool,
}

impl Place {
    /// The place of an event arriving after `jobs_before` job events.
    pub fn new(jobs_before: u32, job: bool) -> Self {
        Self { jobs_before, job }
    }

    /// True if a split keeping the first `jobs` job events (and the job-less events before
    /// the next one) keeps this event.
    pub fn kept(self, jobs: u32) -> bool {
        if self.job {
            self.jobs_before < jobs
        } else {
            self.jobs_before <= jobs
        }
    }

    fn after(self, jobs: u32) -> Self {
        Self {
            jobs_before: self.jobs_before.saturating_add(jobs),
            ..self
        }
    }
}

/// What is owed for a batch's events once it is final: answers to waiting callers, and the
/// event ids to remember (applied) or forget (failed), each with its event's [`Place`].
#[derive(Debug, Default)]
pub struct Promises {
    /// `ScaleAndWait` callers.
    pub waiters: Vec<Waiter>,
    /// Event ids of the batch's events.
    pub event_ids: Vec<String>,
    waiter_places: Vec<Place>,
    id_places: Vec<Place>,
}

impl Promises {
    /// Notes what is owed for one event at `place`.
    pub fn add(&mut self, place: Place, waiter: Option<Waiter>, event_id: Option<&String>) {
        if let Some(waiter) = waiter {
            self.waiters.push(waiter);
            self.waiter_places.push(place);
        }
        if let Some(id) = event_id {
            self.event_ids.push(id.clone());
            self.id_places.push(place);
        }
    }

    /// Takes on the promises of events that came after `jobs` job events of these.
    pub fn extend_after(&mut self, jobs: u32, other: Promises) {
        self.waiters.extend(other.waiters);
        self.event_ids.extend(other.event_ids);
        self.waiter_places
            .extend(other.waiter_places.into_iter().map(|p| p.after(jobs)));
        self.id_places
            .extend(other.id_places.into_iter().map(|p| p.after(jobs)));
    }

    /// Keeps the promises of the events a split keeping `jobs` job events keeps; returns the
    /// others.
    pub fn split_off(&mut self, jobs: u32) -> Promises {
        fn part<T>(items: &mut Vec<T>, places: &mut Vec<Place>, jobs: u32) -> (Vec<T>, Vec<Place>) {
            let (mut kept, mut gone) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
            for (item, place) in items.drain(..).zip(places.drain(..)) {
                let to = if place.kept(jobs) {
                    &mut kept
                } else {
                    &mut gone
                };
                to.0.push(item);
                to.1.push(place);
            }
            (*items, *places) = kept;
            gone
        }
        let (waiters, waiter_places) = part(&mut self.waiters, &mut self.waiter_places, jobs);
        let (event_ids, id_places) = part(&mut self.event_ids, &mut self.id_places, jobs);
        Promises {
            waiters,
            event_ids,
            waiter_places,
            id_places,
        }
    }
}

/// Producer events per stretch between job events: `[0]` before the first job event, `[j]`
/// between job events `j - 1` and `j` (job events themselves are one each). What a split
/// keeps is counted from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stretches(Vec<u64>);

impl Stretches {
    /// Job events so far.
    pub fn jobs(&self) -> u32 {
        u32::try_from(self.0.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// Counts one more event.
    pub fn note(&mut self, job: bool) {
        if self.0.is_empty() {
            self.0.push(0);
        }
        if job {
            self.0.push(0);
        } else if let Some(last) = self.0.last_mut() {
            *last += 1;
        }
    }

    /// Takes on the events of another set, which came after these.
    pub fn extend(&mut self, other: Stretches) {
        let mut rest = other.0.into_iter();
        if let Some(first) = rest.next() {
            match self.0.last_mut() {
                Some(last) => *last += first,
                None => self.0.push(first),
            }
        }
        self.0.extend(rest);
    }

    /// Producer events a split keeping `jobs` job events keeps, or `None` if unknown.
    pub(super) fn kept(&self, jobs: u32) -> Option<u64> {
        let jobs = jobs as usize;
        (jobs < self.0.len()).then(|| jobs as u64 + self.0[..=jobs].iter().sum::<u64>())
    }

    pub(super) fn truncate(&mut self, jobs: u32) {
        self.0.truncate(jobs as usize + 1);
    }
}
