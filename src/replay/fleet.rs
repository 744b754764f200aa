//! A model of what actions-runner-controller does with one HRA's reservations:
//! - desired runners = min(maxReplicas, minReplicas + Σ unexpired reservations), re-evaluated
//!   on every change;
//! - a runner asked for is ready `runner_start` later; runners beyond the desired count are
//!   removed (idle ones first, then those still starting, newest first) only once
//!   `scale_down_delay` has passed since the last scale-out (ARC's
//!   `scaleDownDelaySecondsAfterScaleOut`); busy runners are never removed;
//! - runners are ephemeral: one job each, then gone (and replaced if still desired);
//! - a waiting job starts on the first ready idle runner (FIFO).

use super::jobs::Ms;
use std::collections::VecDeque;

/// The runners of one HRA and the jobs waiting for them.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    /// When each runner still starting is ready, oldest first.
    pub starting: VecDeque<Ms>,
    /// Ready runners without a job.
    pub idle: u32,
    /// Runners running a job.
    pub busy: u32,
    /// Jobs waiting, oldest first (indexes into the trace's jobs).
    pub waiting: VecDeque<usize>,
    last_scale_out: Option<Ms>,
    /// Runner-milliseconds and busy runner-milliseconds counted so far.
    pub runner_ms: u128,
    /// Busy runner-milliseconds counted so far.
    pub busy_ms: u128,
    counted_to: Ms,
}

/// What a reconcile asks of the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    /// Runners asked for now (each ready after the runner start).
    pub started: u32,
    /// Runners beyond the desired count wait for the scale-down delay until then.
    pub scale_down_at: Option<Ms>,
}

impl Fleet {
    /// Runners that exist (starting, idle or busy).
    pub fn total(&self) -> u32 {
        self.starting.len() as u32 + self.idle + self.busy
    }

    /// Counts runner time up to `t`, within `[from, to]`.
    pub fn count_to(&mut self, t: Ms, (from, to): (Ms, Ms)) {
        let a = self.counted_to.max(from);
        let b = t.min(to);
        if b > a {
            let span = (b - a) as u128;
            self.runner_ms += span * u128::from(self.total());
            self.busy_ms += span * u128::from(self.busy);
        }
        self.counted_to = self.counted_to.max(t);
    }

    /// Brings the runners toward `desired` at `t`.
    pub fn reconcile(&mut self, t: Ms, desired: u32, start: Ms, delay: Ms) -> Asked {
        let total = self.total();
        let mut asked = Asked::default();
        if desired > total {
            for _ in total..desired {
                self.starting.push_back(t + start);
            }
            asked.started = desired - total;
            self.last_scale_out = Some(t);
        } else if desired < total {
            let due = self.last_scale_out.map_or(t, |s| s + delay);
            if t < due {
                asked.scale_down_at = Some(due);
                return asked;
            }
            let mut excess = total - desired;
            let idle = excess.min(self.idle);
            self.idle -= idle;
            excess -= idle;
            while excess > 0 && self.starting.pop_back().is_some() {
                excess -= 1;
            }
        }
        asked
    }

    /// Runners whose start is over by `t` become idle.
    pub fn ready(&mut self, t: Ms) {
        while self.starting.front().is_some_and(|&r| r <= t) {
            self.starting.pop_front();
            self.idle += 1;
        }
    }

    /// Starts waiting jobs on idle runners; returns them.
    pub fn assign(&mut self, out: &mut Vec<usize>) {
        while self.idle > 0 {
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            self.idle -= 1;
            self.busy += 1;
            out.push(job);
        }
    }

    /// A job ended: its runner is gone.
    pub fn finish(&mut self) {
        self.busy = self.busy.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Ms = 60_000;
    const DELAY: Ms = 600_000;

    #[test]
    fn runners_start_late_and_leave_only_after_the_delay() {
        let mut f = Fleet::default();
        let a = f.reconcile(0, 2, START, DELAY);
        assert_eq!((a.started, f.total()), (2, 2));
        f.ready(START - 1);
        assert_eq!(f.idle, 0);
        f.ready(START);
        assert_eq!(f.idle, 2);
        // Fewer desired: nothing goes before the delay.
        let a = f.reconcile(START, 0, START, DELAY);
        assert_eq!((a.scale_down_at, f.total()), (Some(DELAY), 2));
        let a = f.reconcile(DELAY, 0, START, DELAY);
        assert_eq!((a, f.total()), (Asked::default(), 0));
    }

    #[test]
    fn jobs_take_idle_runners_in_order_and_busy_runners_stay() {
        let mut f = Fleet::default();
        f.reconcile(0, 2, START, DELAY);
        f.ready(START);
        f.waiting.extend([7, 8, 9]);
        let mut started = Vec::new();
        f.assign(&mut started);
        assert_eq!((started, f.busy, f.waiting.len()), (vec![7, 8], 2, 1));
        f.reconcile(DELAY, 0, START, DELAY);
        assert_eq!(f.total(), 2, "busy runners are never removed");
        f.finish();
        assert_eq!(f.total(), 1);
    }

    #[test]
    fn runner_time_is_counted_within_the_measured_span() {
        let mut f = Fleet::default();
        f.reconcile(0, 3, START, DELAY);
        f.count_to(10_000, (5_000, 8_000));
        assert_eq!(f.runner_ms, 3 * 3_000);
        // Time is counted before each change, at the counts until then.
        f.count_to(START, (0, i64::MAX));
        f.ready(START);
        f.waiting.push_back(1);
        f.assign(&mut Vec::new());
        f.count_to(START + 1_000, (0, i64::MAX));
        assert_eq!(f.busy_ms, 1_000);
        assert_eq!(
            f.runner_ms,
            3 * 3_000 + 3 * (START + 1_000 - 10_000) as u128
        );
    }
}
