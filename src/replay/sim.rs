//! The replay's event loop: deliveries, batches, runners and jobs on one simulated clock,
//! in time order (ties in the order they were scheduled, so a replay is deterministic).

use super::{
    Settings,
    jobs::{Jobs, Ms},
    report::{Figures, Report, Sample},
    state::{HraState, at},
    world::World,
};
use crate::domain::planner::{PlanEvent, ReservationClock};
use std::{cmp::Reverse, collections::BinaryHeap};

/// Something that happens at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A job is created: it waits for a runner.
    Arrive(usize),
    /// A job's `queued` delivery reaches the service.
    Queued(usize),
    /// A job's `in_progress` delivery reaches the service.
    Started(usize),
    /// A job's `completed` delivery reaches the service.
    Completed(usize),
    /// A waiting job is cancelled.
    Cancel(usize),
    /// A job ends on its runner.
    Done(usize),
    /// An HRA's batch window closes.
    Close(usize),
    /// Runners of an HRA may be ready, or its desired count may have changed by itself.
    Check(usize),
    /// Once a minute: the forecast, and a sample for the plot.
    Tick,
}

const MINUTE: Ms = 60_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum JobState {
    Waiting,
    Running,
    Gone,
}

/// One replay.
pub struct Sim<'a> {
    jobs: &'a Jobs,
    settings: &'a Settings,
    hras: Vec<HraState>,
    queue: BinaryHeap<Reverse<(Ms, u64, Ev)>>,
    seq: u64,
    state: Vec<JobState>,
    started_at: Vec<Ms>,
    /// The measured span.
    span: (Ms, Ms),
    figures: Vec<Figures>,
    samples: Vec<Sample>,
    starts: Vec<(std::sync::Arc<str>, Ms)>,
}

impl<'a> Sim<'a> {
    /// A replay of `jobs` in `world`.
    pub fn new(world: &World, jobs: &'a Jobs, settings: &'a Settings) -> Self {
        // Without --measure-from, every job counts: some were created before the first
        // delivery of the trace.
        let earliest = jobs
            .jobs
            .iter()
            .map(|j| j.created)
            .min()
            .unwrap_or(jobs.span.0);
        let from = settings
            .measure_from
            .map_or(earliest.min(jobs.span.0), |t| t.timestamp_millis());
        let n = jobs.jobs.len();
        Self {
            jobs,
            settings,
            hras: world
                .hras
                .iter()
                .map(|h| HraState::new(h.clone(), settings))
                .collect(),
            queue: BinaryHeap::with_capacity(n * 2),
            seq: 0,
            state: vec![JobState::Waiting; n],
            started_at: vec![0; n],
            span: (from, jobs.span.1),
            figures: vec![Figures::default(); world.hras.len()],
            samples: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn at(&mut self, t: Ms, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    /// Runs to the trace's last delivery.
    pub fn run(mut self, progress: &mut dyn FnMut(f64)) -> Report {
        for (i, job) in self.jobs.jobs.iter().enumerate() {
            self.at(job.created, Ev::Arrive(i));
            if let Some(q) = job.queued_at {
                self.at(q, Ev::Queued(i));
            }
            if let Some(c) = job.cancelled {
                self.at(c, Ev::Cancel(i));
            }
            if let Some(d) = job.cancel_delivery {
                self.at(d, Ev::Completed(i));
            }
        }
        let (first, end) = self.jobs.span;
        self.at(first - first.rem_euclid(MINUTE), Ev::Tick);
        let mut reported = first;
        while let Some(Reverse((t, _, ev))) = self.queue.pop() {
            if t > end {
                break;
            }
            if t - reported >= 6 * 3600 * 1000 {
                reported = t;
                progress((t - first) as f64 / (end - first).max(1) as f64);
            }
            self.handle(t, ev);
        }
        for h in 0..self.hras.len() {
            self.hras[h].fleet.count_to(end, self.span);
        }
        progress(1.0);
        self.report(end)
    }

    fn event(&self, j: usize, amount: i64) -> PlanEvent {
        let job = &self.jobs.jobs[j];
        PlanEvent {
            amount,
            duration: self.settings.duration.or(job.duration),
            job: Some(job.id.clone()),
            started: None,
        }
    }

    fn send(&mut self, t: Ms, h: usize, event: PlanEvent) {
        let s = &mut self.hras[h];
        s.pending.push(event);
        if !s.open {
            s.open = true;
            let close = t + self.settings.window.num_milliseconds();
            self.at(close, Ev::Close(h));
        }
    }

    fn handle(&mut self, t: Ms, ev: Ev) {
        let all: &'a Jobs = self.jobs;
        let jobs = &all.jobs;
        match ev {
            Ev::Arrive(j) => {
                let h = jobs[j].hra;
                if let Some(p) = self.hras[h].profile.as_mut() {
                    p.observe(at(jobs[j].created));
                }
                self.hras[h].fleet.waiting.push_back(j);
                self.assign(t, h);
            }
            Ev::Queued(j) => self.send(t, jobs[j].hra, self.event(j, 1)),
            Ev::Started(j) => {
                let mut e = self.event(j, 0);
                e.started = Some(at(self.started_at[j]));
                self.send(t, jobs[j].hra, e);
            }
            Ev::Completed(j) => self.send(t, jobs[j].hra, self.event(j, -1)),
            Ev::Cancel(j) => {
                if self.state[j] == JobState::Waiting {
                    self.state[j] = JobState::Gone;
                    self.hras[jobs[j].hra].fleet.waiting.retain(|&w| w != j);
                }
            }
            Ev::Done(j) => {
                let h = jobs[j].hra;
                self.hras[h].fleet.count_to(t, self.span);
                self.hras[h].fleet.finish();
                self.state[j] = JobState::Gone;
                self.at(t + jobs[j].lags.1, Ev::Completed(j));
                self.reconcile(t, h);
            }
            Ev::Close(h) => {
                self.hras[h].apply(t, self.settings);
                self.reconcile(t, h);
                if let Some(e) = self.hras[h].next_expiry(t) {
                    self.at(e, Ev::Check(h));
                }
            }
            Ev::Check(h) => {
                self.hras[h].fleet.count_to(t, self.span);
                self.hras[h].fleet.ready(t);
                self.assign(t, h);
                self.reconcile(t, h);
            }
            Ev::Tick => self.tick(t),
        }
    }

    fn tick(&mut self, t: Ms) {
        let mut sample = Sample {
            at: t,
            ..Sample::default()
        };
        for h in 0..self.hras.len() {
            let s = &mut self.hras[h];
            sample.waiting += s.fleet.waiting.len() as u64;
            sample.runners += u64::from(s.fleet.total());
            if !s.open && s.warm_deficit(t, self.settings) > 0 {
                s.open = true;
                let close = t + self.settings.window.num_milliseconds();
                self.at(close, Ev::Close(h));
            }
        }
        if t >= self.span.0 {
            self.samples.push(sample);
        }
        self.at(t + MINUTE, Ev::Tick);
    }

    /// Starts waiting jobs on the HRA's idle runners.
    fn assign(&mut self, t: Ms, h: usize) {
        let mut started = Vec::new();
        self.hras[h].fleet.count_to(t, self.span);
        self.hras[h].fleet.assign(&mut started);
        let start_clock = matches!(self.settings.rules.clock, ReservationClock::Started { .. });
        let all: &'a Jobs = self.jobs;
        for j in started {
            let job = &all.jobs[j];
            self.state[j] = JobState::Running;
            self.started_at[j] = t;
            self.starts.push((job.id.clone(), t));
            if job.created >= self.span.0 && job.created <= self.span.1 {
                let f = &mut self.figures[h];
                f.waits.push(t - job.created);
                if let Some(w) = job.recorded_wait {
                    f.recorded_waits.push(w);
                }
            }
            if let Some(run) = job.run {
                self.at(t + run, Ev::Done(j));
            }
            if start_clock {
                self.at(t + job.lags.0, Ev::Started(j));
            }
        }
    }

    /// Brings the HRA's runners toward ARC's desired count.
    fn reconcile(&mut self, t: Ms, h: usize) {
        let (start, delay) = (
            self.settings.runner_start.num_milliseconds(),
            self.settings.scale_down_delay.num_milliseconds(),
        );
        let s = &mut self.hras[h];
        s.fleet.count_to(t, self.span);
        let desired = s.desired(t);
        let asked = s.fleet.reconcile(t, desired, start, delay);
        if asked.started > 0 {
            self.at(t + start, Ev::Check(h));
        }
        if let Some(due) = asked.scale_down_at
            && self.hras[h].check_at != Some(due)
        {
            self.hras[h].check_at = Some(due);
            self.at(due, Ev::Check(h));
        }
    }

    fn report(mut self, end: Ms) -> Report {
        for (h, s) in self.hras.iter().enumerate() {
            let f = &mut self.figures[h];
            // Jobs of the measured span that never started wait until the end.
            for &j in &s.fleet.waiting {
                let job = &self.jobs.jobs[j];
                if job.created >= self.span.0 {
                    f.waits.push(end - job.created);
                    f.unstarted += 1;
                }
            }
            f.runner_ms = s.fleet.runner_ms;
            f.busy_ms = s.fleet.busy_ms;
            f.warm = s.warm;
            f.batches = s.batches;
        }
        let mut report = Report::new(
            self.hras.iter().map(|s| s.hra.key.clone()).collect(),
            self.figures,
            self.samples,
            self.jobs.unrouted,
        );
        report.starts = self.starts;
        report
    }
}
