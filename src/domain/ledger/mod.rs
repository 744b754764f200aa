//! The job ledger of one HRA: how long its jobs wait for a runner and run, what its
//! reservations ask ARC for, and whose reservation expired too soon, over a sliding window.
//! Pure: every time is passed in. Each job counts once, whatever its redeliveries.

mod advice;
mod jobs;
mod reserved;
#[cfg(test)]
mod tests;
mod window;

pub use advice::{Advice, advise};
pub use jobs::{ACTIVE_CAPACITY, FINISHED_CAPACITY};
pub use reserved::Profile;
pub use window::{BUCKETS, Durations, RELATIVE_ERROR};

use chrono::{DateTime, TimeDelta, Utc};
use jobs::{Done, Jobs};
use std::sync::Arc;
use window::{Sums, Window};

/// What a delivery says of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// `queued`.
    Queued {
        /// `created_at`.
        created: Option<DateTime<Utc>>,
    },
    /// `in_progress`: the job started (`started_at`, else when the delivery arrived).
    Started {
        /// `created_at`.
        created: Option<DateTime<Utc>>,
        /// When it started.
        started: DateTime<Utc>,
    },
    /// `completed`.
    Completed {
        /// `created_at`.
        created: Option<DateTime<Utc>>,
        /// `started_at`, if it ran.
        started: Option<DateTime<Utc>>,
        /// `completed_at`, else when the delivery arrived.
        completed: DateTime<Utc>,
        /// It ran on a runner (a job cancelled while queued did not: no wait, no run).
        ran: bool,
    },
}

/// What one change added to the figures (for the metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Added {
    /// A wait, in seconds.
    pub wait: Option<f64>,
    /// A run, in seconds.
    pub run: Option<f64>,
    /// Reservations that expired before their job started.
    pub expired_before_start: u64,
    /// Reservations that expired while their job ran.
    pub expired_while_running: u64,
    /// Runner-seconds the reservations asked for.
    pub reserved_seconds: f64,
}

/// A ledger's figures at one instant.
#[derive(Clone)]
pub struct Figures {
    /// What they cover: events received since then.
    pub since: DateTime<Utc>,
    /// Jobs queued and not started.
    pub jobs_waiting: u64,
    /// Jobs started and not completed.
    pub jobs_running: u64,
    /// The sums of the window.
    pub sums: Sums,
}

impl Figures {
    /// Runner-seconds the jobs ran (the sum of runs).
    pub fn busy_seconds(&self) -> f64 {
        self.sums.run.sum
    }
}

/// A ledger in a few figures, for overviews.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// The p90 of the waits in the window, in seconds.
    pub wait_p90: Option<f64>,
    /// Busy / reserved runner-seconds, if any were reserved.
    pub utilization: Option<f64>,
    /// Jobs queued and not started.
    pub jobs_waiting: u64,
    /// Jobs whose reservation expired before they started, in the window.
    pub expired_before_start: u64,
}

/// What a write of the HRA tells its ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// When it was planned.
    pub at: DateTime<Utc>,
    /// The reservations it holds from then.
    pub profile: Profile,
    /// The jobs whose reservations it dropped as expired, with when each expired.
    pub expired: Vec<(Arc<str>, DateTime<Utc>)>,
    /// Warm reservations its queued jobs claimed, and warm ones it dropped unclaimed.
    pub warm: (u64, u64),
}

/// The ledger of one HRA.
pub struct Ledger {
    started: DateTime<Utc>,
    window: Window,
    ttl: TimeDelta,
    jobs: Jobs,
    profile: Profile,
}

/// A duration in seconds, never negative (clock skew counts as zero).
fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

impl Ledger {
    /// A ledger started at `now`, covering the last `window`.
    pub fn new(now: DateTime<Utc>, window: TimeDelta) -> Self {
        Self {
            started: now,
            window: Window::new(window),
            ttl: window,
            jobs: Jobs::default(),
            profile: Profile::default(),
        }
    }

    /// Records what a delivery received at `now` says of `job`.
    pub fn record(&mut self, job: &Arc<str>, event: JobEvent, now: DateTime<Utc>) -> Added {
        let mut added = Added::default();
        if self.jobs.is_finished(job) {
            return added;
        }
        match event {
            JobEvent::Queued { created } => {
                self.jobs.follow(job, created);
            }
            JobEvent::Started { created, started } => {
                let Some(active) = self.jobs.follow(job, created) else {
                    return added;
                };
                if active.started.is_none() {
                    if let Some(created) = active.created {
                        added.wait = Some(seconds(created, started));
                    }
                    self.jobs.start(job, started);
                }
            }
            JobEvent::Completed {
                created,
                started,
                completed,
                ran,
            } => {
                let done = Done {
                    started: started.filter(|_| ran),
                    completed: Some(completed),
                    expiry_counted: false,
                };
                let was = self.jobs.finish(job, done, now, self.ttl);
                let created = was.and_then(|a| a.created).or(created);
                let started_known = was.and_then(|a| a.started);
                let started = started_known.or(started).filter(|_| ran);
                if let (Some(created), Some(started)) = (created, started)
                    && started_known.is_none()
                {
                    added.wait = Some(seconds(created, started));
                }
                if let Some(started) = started {
                    added.run = Some(seconds(started, completed));
                }
                let sums = self.window.at(now);
                sums.completed += 1;
                if let (Some(created), true) = (created, ran) {
                    sums.total.add(seconds(created, completed));
                }
            }
        }
        let sums = self.window.at(now);
        if let Some(wait) = added.wait {
            sums.wait.add(wait);
        }
        if let Some(run) = added.run {
            sums.run.add(run);
        }
        added
    }

    /// Records a write of the HRA at `now`: the reservations it holds from then
    /// (`profile`), and the jobs whose reservations it dropped as expired, with when each
    /// expired.
    pub fn written(
        &mut self,
        profile: Profile,
        expired: &[(Arc<str>, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Added {
        let mut added = Added {
            reserved_seconds: self.integrate(now),
            ..Added::default()
        };
        self.profile = profile;
        for (job, expired_at) in expired {
            let (started, completed) = if let Some(a) = self.jobs.active(job) {
                if a.expiry_counted {
                    continue;
                }
                a.expiry_counted = true;
                (a.started, None)
            } else if let Some(d) = self.jobs.finished(job) {
                if d.expiry_counted {
                    continue;
                }
                d.expiry_counted = true;
                (d.started, d.completed)
            } else {
                continue;
            };
            match (started, completed) {
                (Some(s), _) if s > *expired_at => added.expired_before_start += 1,
                (None, _) => added.expired_before_start += 1,
                (Some(_), Some(c)) if c <= *expired_at => {} // the job ended first
                (Some(_), _) => added.expired_while_running += 1,
            }
        }
        let sums = self.window.at(now);
        sums.expired_before_start += added.expired_before_start;
        sums.expired_while_running += added.expired_while_running;
        added
    }

    /// Counts a write's warm reservations: `claimed` by a queued job, `expired` unclaimed.
    pub fn warm(&mut self, (claimed, expired): (u64, u64), now: DateTime<Utc>) {
        if claimed + expired > 0 {
            let sums = self.window.at(now);
            sums.warm_claimed += claimed;
            sums.warm_expired += expired;
        }
    }

    /// Adds the runner-seconds asked for since the last integration up to `now`, bucket by
    /// bucket; returns them.
    fn integrate(&mut self, now: DateTime<Utc>) -> f64 {
        let Some(mut from) = self.profile.since else {
            return 0.0;
        };
        let mut total = 0.0;
        while from < now {
            let end = self
                .window
                .bucket_end(self.window.bucket_start(from))
                .min(now);
            let area = self.profile.area(from, end);
            self.window.at(from).reserved_seconds += area;
            total += area;
            from = end;
        }
        self.profile.since = Some(now.max(from));
        total
    }

    /// The figures at `now` (integrating the reservations up to it); also what that
    /// integration added.
    pub fn figures(&mut self, now: DateTime<Utc>) -> (Figures, f64) {
        let reserved = self.integrate(now);
        let (oldest, sums) = self.window.total(now);
        let since = oldest.unwrap_or(now - self.ttl).max(self.started);
        let (waiting, running) = self.jobs.gauges();
        let figures = Figures {
            since,
            jobs_waiting: waiting as u64,
            jobs_running: running as u64,
            sums,
        };
        (figures, reserved)
    }

    /// A cheap summary for overviews (without integrating the reservations up to `now`).
    pub fn summary(&mut self, now: DateTime<Utc>) -> Summary {
        let sums = self.window.overview(now);
        Summary {
            wait_p90: sums.wait.quantile(0.9),
            utilization: (sums.reserved_seconds > 0.0)
                .then(|| sums.run.sum / sums.reserved_seconds),
            jobs_waiting: self.gauges().0,
            expired_before_start: sums.expired_before_start,
        }
    }

    /// `(waiting, running)` jobs now.
    pub fn gauges(&self) -> (u64, u64) {
        let (waiting, running) = self.jobs.gauges();
        (waiting as u64, running as u64)
    }

    /// `(buckets, sketch bins, active jobs, finished jobs)` held, for the memory figures.
    pub fn size(&self) -> (usize, usize, usize, usize) {
        let (buckets, bins) = self.window.size();
        let (active, finished) = self.jobs.len();
        (buckets, bins, active, finished)
    }
}
