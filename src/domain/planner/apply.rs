//! Step 4: one event at a time on the working list, in arrival order.

use super::{Counts, PlanEvent, list::List};
use crate::domain::warm::is_warm;
use chrono::{DateTime, Utc};
use std::{collections::HashMap, sync::Arc};

/// The times of a reservation: effective, expiration.
pub(super) type Times = (DateTime<Utc>, DateTime<Utc>);

/// What the events of one batch share while they apply.
pub(super) struct Batch<'a, R> {
    pub(super) list: &'a mut List,
    pub(super) counts: &'a mut Counts,
    /// Jobs this batch completed, in order.
    pub(super) finished: &'a mut Vec<Arc<str>>,
    /// Starts of jobs no reservation held yet (their `queued` may come later in the batch).
    pub(super) early_starts: HashMap<Arc<str>, Times>,
    /// Jobs whose reservations ended as expired, with when.
    pub(super) expired: &'a mut Vec<(Arc<str>, DateTime<Utc>)>,
    /// A job's repository: the batch's word, else the HRA's.
    pub(super) repository_of: R,
    pub(super) now: DateTime<Utc>,
}

impl<R: Fn(&str) -> Option<Arc<str>>> Batch<'_, R> {
    /// An event naming its job: `+1` adds one reservation for the job (at `queued` times, or
    /// at its start if the start came first) unless one holds it or the job already finished;
    /// `-1` removes that reservation wherever it is (named or grouped), and remembers the job
    /// as finished. `completed` counts removals that happened.
    pub(super) fn job_event(&mut self, event: &PlanEvent, job: &Arc<str>, queued: Times) {
        if event.amount > 0 {
            if self.finished.contains(job) {
                self.counts.ignored_finished += 1;
                return;
            }
            if self.list.contains(job) {
                return;
            }
            let times = self.early_starts.remove(job).unwrap_or(queued);
            if times.1 <= self.now {
                // Started a whole duration ago: its capacity has ended already.
                return;
            }
            // A job takes the place of a warm reservation, so one runner is never counted
            // twice: the sum holds the job's own reservation only.
            if !is_warm(job) && self.list.claim_warm() {
                self.counts.warm_claimed += 1;
            }
            let repository = (self.repository_of)(job);
            self.list.add_job(job, times, repository.as_ref());
            self.counts.added += 1;
        } else if event.amount < 0 {
            self.early_starts.remove(job);
            if self.list.complete(job) {
                self.counts.completed += 1;
            }
            if !self.finished.contains(job) {
                self.finished.push(job.clone());
            }
        }
    }

    /// A job's start (`--reservation-clock started`): its reservation lives `times` from now
    /// on, and ends at once if they are over. A start of a job nothing holds changes nothing,
    /// unless the job's `queued` follows in this batch.
    pub(super) fn start(&mut self, job: &Arc<str>, times: Times) {
        if times.1 <= self.now {
            if self.list.complete(job) {
                self.counts.expired += 1;
                self.expired.push((job.clone(), times.1));
            }
            return;
        }
        if self.list.restart(job, times) {
            self.counts.started += 1;
        } else if !self.finished.contains(job) {
            self.early_starts.insert(job.clone(), times);
        }
    }

    /// An event without a job id (the reference behaviour).
    pub(super) fn jobless_event(&mut self, event: &PlanEvent, times: Times) {
        match event.amount {
            0 => {}
            amount if amount > 0 => {
                let n = amount.unsigned_abs();
                self.list.add_anonymous(n, times);
                self.counts.added = self.counts.added.saturating_add(n);
            }
            amount => {
                let n = amount.unsigned_abs();
                self.list.remove_oldest(n);
                self.counts.completed = self.counts.completed.saturating_add(n);
            }
        }
    }
}
