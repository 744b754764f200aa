//! `batch-scaler replay`: a trace of `workflow_job` deliveries replayed on simulated time
//! through the service's own routing (`domain::routing`), planner (`domain::planner`),
//! finished-jobs memory (`domain::tombstones`) and warm forecast (`domain::forecast`),
//! against a model of actions-runner-controller ([`fleet`]), to measure what a policy would
//! have done to the jobs: their waits, and the runner time it cost.
//!
//! Pure computation: the caller reads the files and prints the [`report::Report`].

pub mod fleet;
pub mod jobs;
pub mod plot;
pub mod report;
mod sim;
mod state;
pub mod trace;
pub mod world;

pub use report::Report;
pub use world::World;

use crate::domain::{planner::Rules, tombstones::TombstoneLimits};
use chrono::{DateTime, TimeDelta, Utc};

/// The policy and the model a replay runs with.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The batch window (`--window`).
    pub window: TimeDelta,
    /// Default life and reservation clock, as the service plans.
    pub rules: Rules,
    /// How long and how many finished jobs each HRA remembers.
    pub tombstones: TombstoneLimits,
    /// `--warm-runners forecast`.
    pub warm: bool,
    /// Most warm reservations per HRA (`None`: 20 % of its `maxReplicas`).
    pub warm_max: Option<u32>,
    /// Every job's reservation lives this long (`--duration`), instead of its route's.
    pub duration: Option<TimeDelta>,
    /// Every HRA's `minReplicas` (`--min-replicas`).
    pub min_replicas: Option<i32>,
    /// A runner asked for is ready this much later (`--runner-start`).
    pub runner_start: TimeDelta,
    /// ARC's `scaleDownDelaySecondsAfterScaleOut` (`--scale-down-delay`).
    pub scale_down_delay: TimeDelta,
    /// The figures count jobs created from then on; before, the trace only warms the state.
    pub measure_from: Option<DateTime<Utc>>,
}

/// Replays `deliveries` (in arrival order) in `world`. `progress` is told the share done.
pub fn run(
    world: &World,
    deliveries: &[trace::Delivery],
    settings: &Settings,
    progress: &mut dyn FnMut(f64),
) -> Report {
    let jobs = jobs::gather(world, deliveries);
    sim::Sim::new(world, &jobs, settings).run(progress)
}
