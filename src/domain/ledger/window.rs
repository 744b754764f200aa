//! The ledger's sliding window: buckets of a 12th of the window, each with the samples and
//! sums of the events received in it, dropped whole once they leave the window. A query
//! merges the buckets kept, so `since` is the oldest kept bucket's start: honest about what
//! the figures cover.

use chrono::{DateTime, TimeDelta, Utc};
use sketches_ddsketch::{Config, DDSketch};
use std::collections::VecDeque;

/// Buckets per window (2 hours each of the default 24 h): fewer would blur `since`, more
/// would cost a sketch each.
pub const BUCKETS: i32 = 12;

/// Relative error of every percentile (DDSketch's guarantee).
pub const RELATIVE_ERROR: f64 = 0.01;

fn sketch() -> DDSketch {
    // 1 % relative error; at most 2,048 bins (1 ms to 7 days needs ~1,000).
    DDSketch::new(Config::new(RELATIVE_ERROR, 2048, 1e-3))
}

/// Durations of one kind (wait, run, created → completed): a sketch for percentiles, the
/// exact count, sum and maximum.
#[derive(Clone, Default)]
pub struct Durations {
    /// Allocated with the first sample.
    sketch: Option<DDSketch>,
    /// How many.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
    /// The longest, in seconds.
    pub max: f64,
}

impl Durations {
    /// Adds one duration (seconds, not negative).
    pub fn add(&mut self, seconds: f64) {
        self.sketch.get_or_insert_with(sketch).add(seconds);
        self.count += 1;
        self.sum += seconds;
        self.max = self.max.max(seconds);
    }

    /// Adds every duration of `other`.
    pub fn merge(&mut self, other: &Durations) {
        if let Some(theirs) = &other.sketch {
            // Both sketches have the one configuration: merging cannot fail.
            let _ = self.sketch.get_or_insert_with(sketch).merge(theirs);
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile (0..=1) in seconds, within [`RELATIVE_ERROR`]; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // The sketch's value is within the error of the true one; never beyond the maximum.
        self.sketch
            .as_ref()?
            .quantile(q)
            .ok()
            .flatten()
            .map(|v| v.min(self.max))
    }

    /// Bins the sketch holds (for the memory figures).
    pub fn bins(&self) -> usize {
        self.sketch.as_ref().map_or(0, DDSketch::length)
    }
}

/// What happened within one bucket of time.
#[derive(Clone, Default)]
pub struct Sums {
    /// `created_at` → `started_at`.
    pub wait: Durations,
    /// `started_at` → `completed_at`.
    pub run: Durations,
    /// `created_at` → `completed_at` (what a reservation must cover).
    pub total: Durations,
    /// Jobs completed.
    pub completed: u64,
    /// Integral of the runners the reservations asked for, in runner-seconds.
    pub reserved_seconds: f64,
    /// Jobs whose reservation expired before they started.
    pub expired_before_start: u64,
    /// Jobs whose reservation expired while they ran.
    pub expired_while_running: u64,
    /// Warm reservations a queued job claimed.
    pub warm_claimed: u64,
    /// Warm reservations that expired unclaimed.
    pub warm_expired: u64,
}

impl Sums {
    fn merge(&mut self, other: &Sums) {
        self.run.merge(&other.run);
        self.total.merge(&other.total);
        self.merge_overview(other);
    }

    /// Everything but the run and total sketches (their counts and sums included).
    fn merge_overview(&mut self, other: &Sums) {
        self.wait.merge(&other.wait);
        self.completed += other.completed;
        self.reserved_seconds += other.reserved_seconds;
        self.expired_before_start += other.expired_before_start;
        self.expired_while_running += other.expired_while_running;
        self.warm_claimed += other.warm_claimed;
        self.warm_expired += other.warm_expired;
    }
}

/// The buckets of the window, oldest first.
pub struct Window {
    span: TimeDelta,
    window: TimeDelta,
    buckets: VecDeque<(DateTime<Utc>, Sums)>,
}

impl Window {
    /// An empty window of `window` (at least a second per bucket).
    pub fn new(window: TimeDelta) -> Self {
        let span = (window / BUCKETS).max(TimeDelta::seconds(1));
        Self {
            span,
            window,
            buckets: VecDeque::new(),
        }
    }

    /// The bucket `at` falls in (created if need be), after dropping buckets that left the
    /// window. Times before the newest bucket count in it (events arrive in order, mostly).
    pub fn at(&mut self, at: DateTime<Utc>) -> &mut Sums {
        self.expire(at);
        let start = self.bucket_start(at);
        if self.buckets.back().is_none_or(|(s, _)| *s < start) {
            self.buckets.push_back((start, Sums::default()));
        }
        &mut self
            .buckets
            .back_mut()
            .expect("a bucket was just ensured")
            .1
    }

    /// The start of the bucket `at` falls in.
    pub fn bucket_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let span = self.span.num_milliseconds().max(1);
        let ms = at.timestamp_millis();
        DateTime::from_timestamp_millis(ms - ms.rem_euclid(span)).unwrap_or(at)
    }

    /// The end of the bucket starting at `start`.
    pub fn bucket_end(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start + self.span
    }

    /// Drops the buckets that ended before `now - window`.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        let horizon = now - self.window;
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| *s + self.span <= horizon)
        {
            self.buckets.pop_front();
        }
    }

    /// Everything kept, merged, and since when it counts (`None`: nothing kept).
    pub fn total(&mut self, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Sums) {
        self.expire(now);
        let mut all = Sums::default();
        for (_, sums) in &self.buckets {
            all.merge(sums);
        }
        (self.buckets.front().map(|(s, _)| *s), all)
    }

    /// What an overview needs of the window: every sum, but of the sketches only the waits'
    /// (merging the run and total sketches of every bucket is most of [`Window::total`]'s
    /// work, and an overview of thousands of HRAs reads each one every second).
    pub fn overview(&mut self, now: DateTime<Utc>) -> Sums {
        self.expire(now);
        let mut all = Sums::default();
        for (_, sums) in &self.buckets {
            all.merge_overview(sums);
            all.run.count += sums.run.count;
            all.run.sum += sums.run.sum;
        }
        all
    }

    /// Bins and buckets held (for the memory figures).
    pub fn size(&self) -> (usize, usize) {
        let bins = self
            .buckets
            .iter()
            .map(|(_, s)| s.wait.bins() + s.run.bins() + s.total.bins())
            .sum();
        (self.buckets.len(), bins)
    }
}
