//! When an HRA's jobs arrive, learned from their arrivals (`--warm-runners forecast`).
//!
//! Three views of the same arrivals, each per minute:
//! - a minute-of-week profile, the average of past weeks with older weeks counting less
//!   ([`WEEK_DECAY`]), which knows office hours and quiet weekends once a week has passed;
//! - a minute-of-day profile, the same over days, which stands in until then;
//! - detectors of periodic arrivals (every hour, every day): a minute that had arrivals in each
//!   of the last [`RUNS`] periods is expected to have them again (cron).
//!
//! What is expected in the next minutes is split in two: demand at fixed minutes (periodic,
//! beyond the usual rate), and the usual rate of the hour (a trimmed mean of the neighbouring
//! minutes, so a cron minute does not raise it), whose count is random.

use chrono::{DateTime, Utc};

/// Minutes in a week and a day.
const WEEK: i64 = 7 * DAY;
const DAY: i64 = 1440;
/// Monday 1970-01-05 00:00 UTC, in minutes: week slots start on Mondays.
const MONDAY: i64 = 4 * DAY;
/// How much a past week (day) still counts a week (day) later.
pub const WEEK_DECAY: f32 = 0.6;
const DAY_DECAY: f32 = 0.5;
/// Periods in a row a minute must have had arrivals to be called periodic.
pub const RUNS: usize = 3;
/// Minutes on each side of a minute that make its usual rate.
const SPREAD: i64 = 15;
/// The highest neighbours left out of the usual rate (cron minutes among them).
const TRIMMED: usize = 3;

/// What an HRA expects within a stretch of minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Expected {
    /// Jobs expected at fixed minutes (cron, a weekly batch), beyond the usual rate.
    pub periodic: f64,
    /// Mean count of the jobs arriving at the usual rate.
    pub random: f64,
}

/// Averages per minute of a period, folding each finished period in with a decay.
#[derive(Clone, Debug)]
struct Seasonal {
    period: i64,
    decay: f32,
    past: Vec<f32>,
    current: Vec<u16>,
    index: i64,
    folded: u32,
}

impl Seasonal {
    fn new(period: i64, decay: f32) -> Self {
        Self {
            period,
            decay,
            past: vec![0.0; period as usize],
            current: vec![0; period as usize],
            index: i64::MIN,
            folded: 0,
        }
    }

    fn advance(&mut self, minute: i64) {
        let index = minute.div_euclid(self.period);
        if self.index == i64::MIN {
            self.index = index;
            return;
        }
        // Folds each period that ended (the first with its counts, then empty ones), at most
        // a few: after that the past has decayed to nothing anyway.
        let ended = (index - self.index).clamp(0, 8);
        for _ in 0..ended {
            let first = self.folded == 0;
            for (p, c) in self.past.iter_mut().zip(&self.current) {
                let c = f32::from(*c);
                *p = if first {
                    c
                } else {
                    self.decay * *p + (1.0 - self.decay) * c
                };
            }
            self.current.fill(0);
            self.folded = self.folded.saturating_add(1);
        }
        self.index = self.index.max(index);
    }

    fn observe(&mut self, minute: i64) {
        self.advance(minute);
        if minute.div_euclid(self.period) == self.index {
            let slot = &mut self.current[minute.rem_euclid(self.period) as usize];
            *slot = slot.saturating_add(1);
        }
    }

    fn learned(&self) -> bool {
        self.folded > 0
    }

    fn at(&self, minute: i64) -> f32 {
        self.past[minute.rem_euclid(self.period) as usize]
    }

    /// What the past expects at `minute`, less what already arrived at it this period.
    fn remaining(&self, minute: i64) -> f32 {
        let slot = minute.rem_euclid(self.period) as usize;
        let arrived = if minute.div_euclid(self.period) == self.index {
            f32::from(self.current[slot])
        } else {
            0.0
        };
        (self.past[slot] - arrived).max(0.0)
    }

    /// The usual rate around `minute`: the mean of its neighbours without the highest few.
    fn usual(&self, minute: i64) -> f32 {
        let mut around: Vec<f32> = (-SPREAD..=SPREAD).map(|d| self.at(minute + d)).collect();
        around.sort_by(|a, b| b.total_cmp(a));
        let kept = &around[TRIMMED..];
        kept.iter().sum::<f32>() / kept.len() as f32
    }
}

/// Arrivals at one minute of a period in the last periods, newest first.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    last: i64,
    counts: [u16; RUNS],
}

/// Detects minutes of a period that have arrivals in every one of the last [`RUNS`] periods.
#[derive(Clone, Debug)]
struct Periodic {
    period: i64,
    slots: Vec<Slot>,
}

impl Periodic {
    fn new(period: i64) -> Self {
        Self {
            period,
            slots: vec![Slot::default(); period as usize],
        }
    }

    fn observe(&mut self, minute: i64) {
        let index = minute.div_euclid(self.period);
        let slot = &mut self.slots[minute.rem_euclid(self.period) as usize];
        let gap = index - slot.last;
        if gap > 0 {
            let shift = gap.min(RUNS as i64) as usize;
            slot.counts.copy_within(0..RUNS - shift, shift);
            slot.counts[..shift].fill(0);
            slot.last = index;
        }
        // A late arrival (a redelivery, a recovered delivery) counts in its own period.
        let back = usize::try_from(gap.min(0).unsigned_abs()).unwrap_or(usize::MAX);
        if let Some(count) = slot.counts.get_mut(back) {
            *count = count.saturating_add(1);
        }
    }

    /// Jobs expected at `minute` if it is periodic: the fewest seen in the last runs, less
    /// those already arrived in its own period.
    fn at(&self, minute: i64) -> f32 {
        let index = minute.div_euclid(self.period);
        let slot = &self.slots[minute.rem_euclid(self.period) as usize];
        let (seen, now) = match index - slot.last {
            1 => (&slot.counts[..], 0),
            0 => (&slot.counts[1..], slot.counts[0]),
            _ => return 0.0,
        };
        let fewest = seen.iter().copied().min().unwrap_or(0);
        if seen.len() < RUNS - 1 || fewest == 0 {
            return 0.0;
        }
        f32::from(fewest.saturating_sub(now))
    }
}

/// The arrival profile of one HRA.
#[derive(Clone, Debug)]
pub struct Profile {
    week: Seasonal,
    day: Seasonal,
    hourly: Periodic,
    daily: Periodic,
}

impl Default for Profile {
    fn default() -> Self {
        Self::new()
    }
}

fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60) - MONDAY
}

impl Profile {
    /// A profile that has seen nothing.
    pub fn new() -> Self {
        Self {
            week: Seasonal::new(WEEK, WEEK_DECAY),
            day: Seasonal::new(DAY, DAY_DECAY),
            hourly: Periodic::new(60),
            daily: Periodic::new(DAY),
        }
    }

    /// Records one job's arrival (its `created_at`).
    pub fn observe(&mut self, at: DateTime<Utc>) {
        let m = minute_of(at);
        self.week.observe(m);
        self.day.observe(m);
        self.hourly.observe(m);
        self.daily.observe(m);
    }

    /// Moves the seasonal profiles to `now`, folding the periods that ended.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        let m = minute_of(now);
        self.week.advance(m);
        self.day.advance(m);
    }

    /// What is expected from `now` for `minutes` minutes (the current minute included).
    pub fn expected(&mut self, now: DateTime<Utc>, minutes: u32) -> Expected {
        self.advance(now);
        let start = minute_of(now);
        let seasonal = if self.week.learned() {
            Some(&self.week)
        } else if self.day.learned() {
            Some(&self.day)
        } else {
            None
        };
        let mut out = Expected::default();
        for m in start..start + i64::from(minutes.max(1)) {
            let (usual, at) = seasonal.map_or((0.0, 0.0), |s| (s.usual(m), s.remaining(m)));
            // A week's minute counts as fixed demand only well above the noise of the usual
            // rate (one week of a busy hour has minutes of 4 where 1.5 is usual); a minute
            // that repeated every hour or day counts from one job beyond the usual rate.
            let weekly = at - usual;
            let weekly = if weekly >= (3.0 * usual.sqrt()).max(1.5) {
                weekly
            } else {
                0.0
            };
            let repeated = self.hourly.at(m).max(self.daily.at(m)) - usual;
            let repeated = if repeated >= 1.0 { repeated } else { 0.0 };
            out.periodic += f64::from(weekly.max(repeated));
            out.random += f64::from(usual);
        }
        out
    }
}

mod codec;

#[cfg(test)]
mod tests;
