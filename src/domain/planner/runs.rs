//! The named part of a plan's list: runs of identical reservations, oldest first.

use crate::domain::hra::CapacityReservation;
use std::collections::VecDeque;

/// The working list: runs of identical reservations, oldest first, and their total length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Runs {
    pub(super) runs: VecDeque<(CapacityReservation, u64)>,
    pub(super) len: u64,
}

impl Runs {
    /// Appends `copies` of `entry` (merged into the last run when it is the same job-less
    /// entry).
    pub(super) fn push(&mut self, entry: CapacityReservation, copies: u64) {
        if copies == 0 {
            return;
        }
        self.len = self.len.saturating_add(copies);
        match self.runs.back_mut() {
            Some((last, n)) if entry.name.is_empty() && *last == entry => {
                *n = n.saturating_add(copies)
            }
            _ => self.runs.push_back((entry, copies)),
        }
    }

    /// Removes the `n` oldest entries (all of them if there are fewer); returns how many it
    /// removed.
    pub(super) fn remove_oldest(&mut self, n: u64) -> u64 {
        let mut left = n;
        while left > 0 {
            let Some((_, copies)) = self.runs.front_mut() else {
                break;
            };
            if *copies > left {
                *copies -= left;
                self.len -= left;
                return n;
            }
            left -= *copies;
            self.len -= *copies;
            self.runs.pop_front();
        }
        n - left
    }

    /// Removes and returns the entries after the first `keep`, in order.
    pub(super) fn split_off(&mut self, keep: u64) -> Vec<(CapacityReservation, u64)> {
        if self.len <= keep {
            return Vec::new();
        }
        let (mut seen, mut i) = (0u64, 0usize);
        while seen + self.runs[i].1 <= keep {
            seen += self.runs[i].1;
            i += 1;
        }
        let mut rest: Vec<_> = self.runs.drain(i..).collect();
        let stay = keep - seen;
        if stay > 0 {
            let (entry, copies) = &mut rest[0];
            self.runs.push_back((entry.clone(), stay));
            *copies -= stay;
        }
        self.len = keep;
        rest
    }

    /// Where the reservation named `name` is.
    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.runs.iter().position(|(r, _)| r.name == name)
    }

    /// Removes the run at `i`.
    pub(super) fn remove(&mut self, i: usize) {
        if let Some((_, copies)) = self.runs.remove(i) {
            self.len -= copies;
        }
    }
}
