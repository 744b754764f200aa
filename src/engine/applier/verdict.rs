//! What an apply attempt is given and what it comes to: the retry policy, the events that
//! joined since the last attempt, the plan's counts and the verdict.

use super::StoreError;
use crate::domain::{
    ledger::Written,
    planner::{Counts, PlanEvent},
};
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;

/// Back-off for transient errors: `first`, doubling up to `max`, until `deadline` has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub first: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Give up once the next attempt would start later than this after the first.
    pub deadline: Duration,
}

impl RetryPolicy {
    /// The documented schedule (1, 2, 4, 8, 16, 16, … s) with the given deadline.
    pub fn with_deadline(deadline: Duration) -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(16),
            deadline,
        }
    }

    /// Delay before attempt `failures + 1`, after `failures` failed attempts (≥ 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Events that arrived since a batch's last attempt, and their jobs' repositories.
#[derive(Clone, Copy, Debug, Default)]
pub struct Late<'a> {
    /// The events, in order.
    pub events: &'a [PlanEvent],
    /// (job id, `OWNER/REPO`) of those that gave one.
    pub repositories: &'a [(Arc<str>, Arc<str>)],
}

/// What a plan that was made came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Planned {
    /// The planner's counters.
    pub counts: Counts,
    /// Finished jobs the write forgot before their TTL (`--tombstone-capacity` reached).
    pub forgotten: u64,
    /// What the write tells the HRA's job ledger (set once the plan is written out).
    pub written: Option<Arc<Written>>,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Written (validated only, on a dry run) from this plan, `late` events included.
    Written(Planned),
    /// An earlier attempt's write had landed although its answer was lost: nothing was
    /// written now, and the `late` events were not used.
    AlreadyLanded,
    /// Failed for now: try again after `after`, with events that arrive meanwhile.
    Retry {
        /// The delay.
        after: Duration,
        /// Why the attempt failed.
        error: StoreError,
        /// The plan made, if one was.
        planned: Option<Planned>,
    },
    /// Nothing written: only the batch's events before its job event number `keep_jobs`
    /// fit the HRA; the rest fail (`error` says why) and the kept ones are attempted again.
    Split {
        /// Job events kept, in arrival order.
        keep_jobs: u32,
        /// Why the rest fail.
        error: String,
    },
    /// Given up (terminal error, retry deadline passed, or shutting down).
    Failed {
        /// Why.
        error: String,
        /// The plan made, if one was.
        planned: Option<Planned>,
        /// True if the write would have made the HRA object larger than allowed.
        too_large: bool,
    },
}

/// Where an attempt stands in its batch's life.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// 1 on the first try.
    pub number: u32,
    /// When the first attempt started.
    pub started: Instant,
    /// The id this attempt's write carries ([`Batch::write_id`]).
    pub write_id: String,
    /// True once no further retry may be started (shutdown grace over): this is the last.
    pub last: bool,
}

impl Verdict {
    /// True if the attempt sent a write (which may have landed whatever it answered).
    pub fn wrote(&self) -> bool {
        match self {
            Self::Written(_) => true,
            Self::Retry { planned, .. } | Self::Failed { planned, .. } => planned.is_some(),
            Self::AlreadyLanded | Self::Split { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_schedule_is_1_2_4_8_16_then_16() {
        let p = RetryPolicy::with_deadline(Duration::from_secs(600));
        let delays: Vec<u64> = (1..=8).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16, 16]);
        assert_eq!(p.delay(200).as_secs(), 16);
    }
}
