//! The request budget every GitHub call draws from: at most `--github-requests-per-hour` in
//! any hour, and nothing at all while GitHub has asked us to wait.

use std::{collections::VecDeque, time::Duration};
use tokio::time::Instant;

/// One hour, the window of `--github-requests-per-hour`.
pub const HOUR: Duration = Duration::from_secs(3600);

/// Why a call may not be made now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// GitHub asked us to wait (rate limit) until then.
    Paused(Instant),
    /// The hour's budget is spent; the oldest request leaves the window then.
    Spent(Instant),
}

impl Wait {
    /// When calls may be made again.
    pub fn until(self) -> Instant {
        match self {
            Self::Paused(at) | Self::Spent(at) => at,
        }
    }
}

/// A sliding hour of requests sent, and a pause GitHub asked for.
#[derive(Debug)]
pub struct Budget {
    per_hour: usize,
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Budget {
    /// At most `per_hour` requests in any hour.
    pub fn new(per_hour: u32) -> Self {
        Self {
            per_hour: per_hour as usize,
            sent: VecDeque::new(),
            paused_until: None,
        }
    }

    fn slide(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|t| *t + HOUR <= now) {
            self.sent.pop_front();
        }
    }

    /// Takes one request from the budget at `now`, or says until when none may be sent.
    pub fn take(&mut self, now: Instant) -> Result<(), Wait> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Err(Wait::Paused(until));
            }
            self.paused_until = None;
        }
        self.slide(now);
        if self.sent.len() >= self.per_hour {
            let oldest = self.sent.front().copied().unwrap_or(now);
            return Err(Wait::Spent(oldest + HOUR));
        }
        self.sent.push_back(now);
        Ok(())
    }

    /// Requests left in the hour at `now`.
    pub fn left(&mut self, now: Instant) -> usize {
        self.slide(now);
        self.per_hour.saturating_sub(self.sent.len())
    }

    /// No request until `until` (a later pause wins over an earlier one).
    pub fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// The pause in force at `now`, if any.
    pub fn paused(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_hourly_budget_in_any_hour() {
        let mut b = Budget::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            b.take(start).unwrap();
        }
        assert_eq!(b.take(start), Err(Wait::Spent(start + HOUR)));
        assert_eq!(b.left(start + HOUR / 2), 0);
        // Requests leave the window an hour after they were sent.
        assert_eq!(b.take(start + HOUR), Ok(()));
        assert_eq!(b.left(start + HOUR), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_stops_every_call_until_it_ends() {
        let mut b = Budget::new(100);
        let now = Instant::now();
        b.pause(now + Duration::from_secs(60));
        b.pause(now + Duration::from_secs(10));
        assert_eq!(
            b.take(now + Duration::from_secs(30)),
            Err(Wait::Paused(now + Duration::from_secs(60)))
        );
        assert!(b.take(now + Duration::from_secs(60)).is_ok());
        assert_eq!(b.paused(now + Duration::from_secs(61)), None);
        assert_eq!(b.left(now + Duration::from_secs(61)), 99);
    }
}
