//! What one apply attempt of a batch came to: the report every consumer receives.

use super::{hra::HraKey, planner::Counts};
use chrono::{DateTime, Utc};

/// The outcome of one apply attempt of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The write was accepted.
    Applied,
    /// This attempt failed and will be retried.
    Retrying,
    /// Given up; the batch's events are dropped.
    Failed,
    /// Planned, not written.
    DryRun,
}

impl Outcome {
    /// Lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::DryRun => "dry_run",
        }
    }

    /// True for outcomes that end the batch.
    pub fn is_final(self) -> bool {
        self != Self::Retrying
    }
}

/// One outcome of one batch, as reported to watchers, waiters and logs.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchReport {
    /// The HRA.
    pub key: HraKey,
    /// What happened.
    pub outcome: Outcome,
    /// The planner's counters (of the attempt's plan, zero when none was made).
    pub counts: Counts,
    /// Events folded into the batch.
    pub events: u64,
    /// 1 on the first try.
    pub attempt: u32,
    /// Why it failed, on RETRYING and FAILED.
    pub error: Option<String>,
    /// When this outcome happened.
    pub at: DateTime<Utc>,
    /// Unique per batch, the same on every attempt.
    pub batch_id: String,
    /// Of `events`, how many were recovered from failed webhook deliveries.
    pub recovered: u64,
    /// Of `events`, how many completed reservations whose job GitHub reports finished.
    pub verified: u64,
    /// On FAILED: the job ids of its job events (at most [`FAILED_JOBS_REPORTED`]).
    pub failed_jobs: Vec<std::sync::Arc<str>>,
    /// Finished jobs this write forgot before their TTL, to stay within the HRA's capacity
    /// for them (`--tombstone-capacity`): a redelivered `queued` of one of them would add.
    pub finished_jobs_forgotten: u64,
}

/// Most failed job ids one report names.
pub const FAILED_JOBS_REPORTED: usize = 100;
