//! The subcommands beside the service: `replay` and `record-deliveries`. Their flags read no
//! environment variables, so a service's environment never changes what a replay measures.

use super::{ClockFlag, DAY, GithubArgs, HOUR, at_most, defaults, human};
use crate::{
    domain::{
        planner::{ReservationClock, Rules},
        tombstones::TombstoneLimits,
    },
    replay,
};
use chrono::{DateTime, TimeDelta, Utc};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Whether warm reservations are kept ahead of the demand an HRA's profile expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum WarmFlag {
    /// No warm reservations.
    #[default]
    Off,
    /// Learn when jobs arrive and keep runners warm for what is expected within a runner
    /// start.
    Forecast,
}

/// A subcommand.
#[derive(Clone, Debug, Subcommand)]
pub enum Tool {
    /// Replays a trace of `workflow_job` deliveries on simulated time through the service's
    /// routing and planner against a model of actions-runner-controller, and prints what a
    /// policy would have done: job waits and runner time, per HRA and in total.
    Replay(ReplayArgs),
    /// Writes a trace from GitHub's hook deliveries (GitHub keeps three days of them).
    RecordDeliveries(RecordArgs),
}

fn td(d: humantime::Duration) -> TimeDelta {
    TimeDelta::from_std(*d).unwrap_or(TimeDelta::MAX)
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (an RFC 3339 time, e.g. 2026-11-09T00:00:00Z)"))
}

/// `batch-scaler replay`.
#[derive(Clone, Debug, ClapArgs)]
pub struct ReplayArgs {
    /// The trace: one JSON line per delivery (`.gz`: gzip), as `--record` and
    /// `record-deliveries` write it (repeatable: a rotated recording's files, in any order).
    #[arg(long, required = true)]
    pub trace: Vec<PathBuf>,

    /// HRAs and their RunnerDeployments / RunnerSets, as the memory backend's `--seed`.
    #[arg(long)]
    pub seed: PathBuf,

    /// Batch window.
    #[arg(long, default_value_t = human(defaults::WINDOW), value_parser = at_most(HOUR, true))]
    pub window: humantime::Duration,

    /// Reservation life when neither the job's route nor --duration gives one.
    #[arg(long, default_value_t = human(defaults::DEFAULT_DURATION), value_parser = at_most(7 * DAY, true))]
    pub default_duration: humantime::Duration,

    /// When a job's reservation starts to age (as the service's flag).
    #[arg(long, value_enum, default_value_t = ClockFlag::Queued)]
    pub reservation_clock: ClockFlag,

    /// With `--reservation-clock started`: the longest a queued job's reservation holds.
    #[arg(long, default_value_t = human(defaults::MAX_QUEUE_TIME), value_parser = at_most(7 * DAY, true))]
    pub max_queue_time: humantime::Duration,

    /// Warm runners ahead of expected demand (as the service's flag).
    #[arg(long, value_enum, default_value_t = WarmFlag::Off)]
    pub warm_runners: WarmFlag,

    /// Most warm reservations per HRA (default: 20 % of its maxReplicas).
    #[arg(long)]
    pub warm_max: Option<u32>,

    /// Every job's reservation lives this long (instead of its HRA trigger's duration).
    #[arg(long, value_parser = at_most(7 * DAY, true))]
    pub duration: Option<humantime::Duration>,

    /// Every HRA's minReplicas.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub min_replicas: Option<i32>,

    /// How long a runner asked for takes to be ready (pod scheduling, image pull,
    /// registration).
    #[arg(long, default_value_t = human(defaults::RUNNER_START), value_parser = at_most(HOUR, false))]
    pub runner_start: humantime::Duration,

    /// ARC's scaleDownDelaySecondsAfterScaleOut.
    #[arg(long, default_value_t = human(defaults::SCALE_DOWN_DELAY), value_parser = at_most(DAY, false))]
    pub scale_down_delay: humantime::Duration,

    /// The figures count jobs created from then on (RFC 3339); the trace before only warms
    /// the state.
    #[arg(long, value_parser = rfc3339)]
    pub measure_from: Option<DateTime<Utc>>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Also write an SVG of runners and waiting jobs over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

impl ReplayArgs {
    /// The replay's settings (the service's defaults for what the flags leave out).
    pub fn settings(&self) -> replay::Settings {
        let clock = match self.reservation_clock {
            ClockFlag::Queued => ReservationClock::Queued,
            ClockFlag::Started => ReservationClock::Started {
                max_queue_time: td(self.max_queue_time),
            },
        };
        replay::Settings {
            window: td(self.window),
            rules: Rules {
                clock,
                ..Rules::new(td(self.default_duration))
            },
            tombstones: TombstoneLimits {
                ttl: td(human(defaults::TOMBSTONE_TTL)),
                capacity: defaults::TOMBSTONE_CAPACITY as usize,
            },
            warm: self.warm_runners == WarmFlag::Forecast,
            warm_max: self.warm_max,
            duration: self.duration.map(td),
            min_replicas: self.min_replicas,
            runner_start: td(self.runner_start),
            scale_down_delay: td(self.scale_down_delay),
            measure_from: self.measure_from,
        }
    }
}

/// `batch-scaler record-deliveries`.
#[derive(Clone, Debug, ClapArgs)]
pub struct RecordArgs {
    /// How far back to read (GitHub keeps three days).
    #[arg(long, default_value_t = human(3 * DAY), value_parser = at_most(3 * DAY, true))]
    pub since: humantime::Duration,

    /// The trace file to write (`-`: standard output).
    #[arg(long)]
    pub out: PathBuf,

    /// Credentials, API and hooks, as drift repair takes them.
    #[command(flatten)]
    pub github: GithubArgs,
}
