//! Folding a batch's events into a short sequence that plans exactly the same.
//!
//! Between two job events, job-less events act on the list like a queue whose removals
//! saturate at empty (`-b` removes `min(b, len)` from the front). For such a stretch with
//! `A` added, `B` removed and prefix sums `S_j`, the final length is
//! `S_T + max(len0, M)` with `M = -min_j S_j`, and the survivors are the last entries of
//! "old list ++ added entries". So the stretch is equivalent to `[-M, adds…, -(B - M)]`,
//! with the adds in order (consecutive same-duration adds merged). Memory is O(job events +
//! duration changes), whatever the mix of signs; refreshes (amount 0) vanish because a batch
//! refreshes anyway.

use super::PlanEvent;
use chrono::TimeDelta;

/// A batch's events, folded as they arrive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fold {
    /// Closed stretches and job events, in order.
    done: Vec<PlanEvent>,
    /// The open job-less stretch: leading removal `M`…
    lead: i64,
    /// …the adds in order…
    adds: Vec<(i64, Option<TimeDelta>)>,
    /// …their total…
    added: i64,
    /// …and the trailing removal `B - M`.
    trail: i64,
}

impl Fold {
    /// Folds `event` in after the ones before it.
    pub fn push(&mut self, event: PlanEvent) {
        if event.job.is_some() {
            self.close();
            self.done.push(event);
            return;
        }
        match event.amount {
            0 => {}
            a if a > 0 => {
                match self.adds.last_mut() {
                    Some((n, d)) if *d == event.duration => *n = n.saturating_add(a),
                    _ => self.adds.push((a, event.duration)),
                }
                self.added = self.added.saturating_add(a);
            }
            b => {
                let b = b.saturating_neg();
                let removed = self.lead.saturating_add(self.trail).saturating_add(b);
                let sum = self.added.saturating_sub(removed);
                let lead = self.lead.max(sum.saturating_neg());
                self.lead = lead;
                self.trail = removed.saturating_sub(lead);
            }
        }
    }

    /// Appends another fold's events after this one's.
    pub fn extend(&mut self, other: Fold) {
        for event in other.into_events() {
            self.push(event);
        }
    }

    /// True when nothing but refreshes was pushed.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.lead == 0 && self.adds.is_empty() && self.trail == 0
    }

    /// The folded events, in the order the planner takes them.
    pub fn into_events(mut self) -> Vec<PlanEvent> {
        self.close();
        self.done
    }

    /// Writes the open stretch out as `[-M, adds…, -(B - M)]`.
    fn close(&mut self) {
        let removal = |amount: i64| PlanEvent {
            amount: -amount,
            duration: None,
            job: None,
            started: None,
        };
        if self.lead > 0 {
            self.done.push(removal(self.lead));
        }
        for (amount, duration) in self.adds.drain(..) {
            self.done.push(PlanEvent {
                amount,
                duration,
                job: None,
                started: None,
            });
        }
        if self.trail > 0 {
            self.done.push(removal(self.trail));
        }
        self.lead = 0;
        self.added = 0;
        self.trail = 0;
    }
}
