//! Which HRA a workflow job scales, as actions-runner-controller's webhook server decides:
//! repository runners first, then runner groups in ARC's precedence, each HRA qualifying by
//! its single `workflowJob` trigger and its target's labels. The [`RoutingIndex`] is built
//! from the HRAs and their targets whenever they change, so routing one job only looks up
//! keys; it never scans every object.

#[cfg(test)]
mod action_tests;
mod index;
mod job;
#[cfg(test)]
mod tests;

pub use index::{RoutableHra, RoutingIndex, RunnerTarget, TargetKind};
pub use job::{MAX_LABEL_LEN, MAX_LABELS, WorkflowJob};

use super::hra::HraKey;
use chrono::TimeDelta;

/// How a job was routed, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteResult {
    /// Exactly one HRA qualified.
    Routed,
    /// The action does not scale.
    Ignored,
    /// No HRA qualified.
    Unmatched,
    /// More than one HRA qualified for the winning key: the first is the target.
    Ambiguous,
}

impl RouteResult {
    /// Lowercase name for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "routed",
            Self::Ignored => "ignored",
            Self::Unmatched => "unmatched",
            Self::Ambiguous => "ambiguous",
        }
    }
}

/// Where a job goes, by how much, for how long, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HRA to scale; `None`: nothing to scale.
    pub target: Option<HraKey>,
    /// +1, -1, or 0 when the action is ignored or a start.
    pub amount: i32,
    /// The job's start (`in_progress`): routed as its `queued` was, to start the life of
    /// its reservation there (`--reservation-clock started`).
    pub starts: bool,
    /// The job's own duration, else the target's trigger duration; `None`: the server default.
    pub duration: Option<TimeDelta>,
    /// Which rule matched, or why none did.
    pub reason: String,
    /// Other HRAs that qualified for the same key.
    pub also_matched: Vec<HraKey>,
    /// For metrics.
    pub result: RouteResult,
}
