//! What an HRA's reservations ask ARC for over time: `min(maxReplicas, Σ replicas)` of the
//! reservations not yet expired, integrated between the writes that change them.

use chrono::{DateTime, Utc};

/// The reservations as last written: when each unit ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// From when this profile holds (the write, or the last integration).
    pub since: Option<DateTime<Utc>>,
    /// `maxReplicas` (`None`: no cap).
    pub max_replicas: Option<i32>,
    /// `(expiration, replicas)`, ascending by expiration.
    pub ends: Vec<(DateTime<Utc>, u64)>,
}

impl Profile {
    /// A profile written at `at`: the reservations' ends in any order.
    pub fn new(
        at: DateTime<Utc>,
        max_replicas: Option<i32>,
        mut ends: Vec<(DateTime<Utc>, u64)>,
    ) -> Self {
        ends.retain(|(end, n)| *end > at && *n > 0);
        ends.sort_unstable();
        Self {
            since: Some(at),
            max_replicas,
            ends,
        }
    }

    /// Runner-seconds asked for between `from` and `to`.
    pub fn area(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        if to <= from {
            return 0.0;
        }
        let cap = self
            .max_replicas
            .map_or(u64::MAX, |m| u64::try_from(m.max(0)).unwrap_or(0));
        let mut remaining: u64 = self
            .ends
            .iter()
            .filter(|(end, _)| *end > from)
            .map(|(_, n)| *n)
            .sum();
        let mut at = from;
        let mut area = 0.0;
        for (end, n) in self.ends.iter().filter(|(end, _)| *end > from) {
            if *end >= to {
                break;
            }
            area += seconds(at, *end) * remaining.min(cap) as f64;
            remaining -= n;
            at = *end;
        }
        area + seconds(at, to) * remaining.min(cap) as f64
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn integrates_the_capped_sum_of_unexpired_units() {
        // 3 units until t+100, 2 more until t+50; capped at 4 while all 5 hold.
        let p = Profile::new(t(0), Some(4), vec![(t(100), 3), (t(50), 2), (t(-1), 9)]);
        assert_eq!(p.area(t(0), t(50)), 4.0 * 50.0);
        assert_eq!(p.area(t(50), t(100)), 3.0 * 50.0);
        assert_eq!(p.area(t(0), t(200)), 200.0 + 150.0);
        assert_eq!(p.area(t(25), t(75)), 4.0 * 25.0 + 3.0 * 25.0);
        let uncapped = Profile {
            max_replicas: None,
            ..p.clone()
        };
        assert_eq!(uncapped.area(t(0), t(50)), 250.0);
        assert_eq!(p.area(t(10), t(10)), 0.0);
        let zero = Profile {
            max_replicas: Some(-3),
            ..p
        };
        assert_eq!(zero.area(t(0), t(100)), 0.0);
        let half = Profile::new(t(0), None, vec![(t(0) + TimeDelta::milliseconds(500), 1)]);
        assert_eq!(half.area(t(0), t(1)), 0.5);
    }
}
