//! The reference planner: how one batch of events changes an HRA's capacity reservations.
//!
//! A pure function of the HRA as read, the batch's events in arrival order and one `now`;
//! see `semantics.md` ("One batch = one plan") for the steps it follows exactly.

use crate::model::{CapacityReservation, Hra};
use chrono::{DateTime, TimeDelta, Utc};

/// One scale event as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEvent {
    /// `> 0` adds that many reservations, `< 0` completes, `0` only refreshes.
    pub amount: i64,
    /// Life of the reservations this event adds.
    pub duration: TimeDelta,
}

/// The counters every batch reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Length of the list as read.
    pub before: u64,
    /// Entries dropped because they had expired (extended backlog entries never count).
    pub expired: u64,
    /// Reservations appended by positive events.
    pub added: u64,
    /// Completions asked for by negative events, even where fewer entries were left to remove.
    pub completed: u64,
    /// Length of the list written.
    pub after: u64,
}

/// The outcome of planning one batch: the list to write and its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The whole new `spec.capacityReservations`.
    pub reservations: Vec<CapacityReservation>,
    /// What changed.
    pub counts: Counts,
}

/// Plans one batch. `now` is the single instant the whole plan uses.
///
/// ```
/// use batch_scaler::{model::{Hra, HraKey}, planner::{plan, PlanEvent}};
/// use chrono::{TimeDelta, Utc};
///
/// let hra = Hra {
///     key: HraKey::new("default", "runners"),
///     resource_version: "1".into(),
///     min_replicas: None,
///     max_replicas: None,
///     capacity_reservations: vec![],
///     applied_batches: vec![],
/// };
/// let ten_min = TimeDelta::minutes(10);
/// let events = [PlanEvent { amount: -1, duration: ten_min }, PlanEvent { amount: 1, duration: ten_min }];
/// let p = plan(&hra, &events, Utc::now());
/// // A completion before its queued event removes nothing: one reservation is left.
/// assert_eq!((p.counts.added, p.counts.completed, p.counts.after), (1, 1, 1));
/// ```
pub fn plan(hra: &Hra, events: &[PlanEvent], now: DateTime<Utc>) -> Plan {
    let read = &hra.capacity_reservations;
    let before = read.len();
    let mut list = extend_backlog(read, hra.max_replicas, now);
    list.retain(|r| r.expiration_time > now);
    let mut counts = Counts {
        before: before as u64,
        expired: (before - list.len()) as u64,
        ..Counts::default()
    };
    for event in events {
        apply_event(&mut list, event, now, &mut counts);
    }
    counts.after = list.len() as u64;
    Plan {
        reservations: list,
        counts,
    }
}

/// Step 1 (reference issue #2254): entries at index `maxReplicas` and beyond restart at `now`
/// keeping their own life, whether or not they had expired.
fn extend_backlog(
    read: &[CapacityReservation],
    max_replicas: Option<i32>,
    now: DateTime<Utc>,
) -> Vec<CapacityReservation> {
    let mut list = read.to_vec();
    let Some(max) = max_replicas else {
        return list;
    };
    // A negative maximum crashes the reference; it is treated as 0.
    let max = usize::try_from(max.max(0)).unwrap_or(usize::MAX);
    if list.len() <= max {
        return list;
    }
    for entry in &mut list[max..] {
        let life = entry.life();
        entry.effective_time = now;
        entry.expiration_time = now
            .checked_add_signed(life)
            .unwrap_or(entry.expiration_time);
    }
    list
}

/// Step 4 for one event.
fn apply_event(
    list: &mut Vec<CapacityReservation>,
    event: &PlanEvent,
    now: DateTime<Utc>,
    counts: &mut Counts,
) {
    match event.amount {
        0 => {}
        amount if amount > 0 => {
            let expiration_time = now.checked_add_signed(event.duration).unwrap_or(now);
            let n = amount as u64;
            list.extend((0..n).map(|_| CapacityReservation {
                name: String::new(),
                effective_time: now,
                expiration_time,
                replicas: 1,
            }));
            counts.added += n;
        }
        amount => {
            let n = amount.unsigned_abs();
            match usize::try_from(n) {
                Ok(n) if list.len() > n => {
                    list.drain(..n);
                }
                _ => list.clear(),
            }
            counts.completed += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HraKey;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-29T17:04:57Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn secs(s: i64) -> TimeDelta {
        TimeDelta::seconds(s)
    }

    fn res(eff: DateTime<Utc>, exp: DateTime<Utc>) -> CapacityReservation {
        CapacityReservation {
            name: String::new(),
            effective_time: eff,
            expiration_time: exp,
            replicas: 1,
        }
    }

    fn hra(max: Option<i32>, list: Vec<CapacityReservation>) -> Hra {
        Hra {
            key: HraKey::new("default", "example-runners"),
            resource_version: "1".into(),
            min_replicas: Some(1),
            max_replicas: max,
            capacity_reservations: list,
            applied_batches: vec![],
        }
    }

    fn ev(amount: i64, duration: i64) -> PlanEvent {
        PlanEvent {
            amount,
            duration: secs(duration),
        }
    }

    fn counts(before: u64, expired: u64, added: u64, completed: u64, after: u64) -> Counts {
        Counts {
            before,
            expired,
            added,
            completed,
            after,
        }
    }

    /// The reference's worked example and its variants: `maxReplicas: 1`, R0 = (t0, t0+10s),
    /// R1 = (t1, t1+10s), now = t2 (t1 = t0+3s, t2 = t0+6s).
    #[test]
    fn reference_worked_example_and_variants() {
        let (t0, t1, t2) = (t0(), t0() + secs(3), t0() + secs(6));
        let read = hra(
            Some(1),
            vec![res(t0, t0 + secs(10)), res(t1, t1 + secs(10))],
        );
        type Case = (
            &'static str,
            Vec<PlanEvent>,
            Vec<CapacityReservation>,
            Counts,
        );
        let cases: Vec<Case> = vec![
            (
                "scale up",
                vec![ev(1, 10)],
                vec![
                    res(t0, t0 + secs(10)),
                    res(t2, t2 + secs(10)),
                    res(t2, t2 + secs(10)),
                ],
                counts(2, 0, 1, 0, 3),
            ),
            (
                "scale up with a longer new duration",
                vec![ev(1, 20)],
                vec![
                    res(t0, t0 + secs(10)),
                    res(t2, t2 + secs(10)),
                    res(t2, t2 + secs(20)),
                ],
                counts(2, 0, 1, 0, 3),
            ),
            (
                "scale down",
                vec![ev(-1, 10)],
                vec![res(t2, t2 + secs(10))],
                counts(2, 0, 0, 1, 1),
            ),
            (
                "scale down with another duration",
                vec![ev(-1, 20)],
                vec![res(t2, t2 + secs(10))],
                counts(2, 0, 0, 1, 1),
            ),
            (
                "refresh (amount 0)",
                vec![ev(0, 10)],
                vec![res(t0, t0 + secs(10)), res(t2, t2 + secs(10))],
                counts(2, 0, 0, 0, 2),
            ),
        ];
        for (what, events, want, want_counts) in cases {
            let p = plan(&read, &events, t2);
            assert_eq!(p.reservations, want, "{what}");
            assert_eq!(p.counts, want_counts, "{what}");
        }
    }

    #[test]
    fn expiry_is_strict_an_entry_expiring_at_now_is_dropped() {
        let now = t0();
        let read = hra(
            None,
            vec![
                res(now - secs(10), now),
                res(now - secs(10), now + secs(1)),
                res(now - secs(20), now - secs(1)),
            ],
        );
        let p = plan(&read, &[], now);
        assert_eq!(p.reservations, vec![res(now - secs(10), now + secs(1))]);
        assert_eq!(p.counts, counts(3, 2, 0, 0, 1));
    }

    #[test]
    fn nil_max_never_extends() {
        let now = t0();
        let old = res(now - secs(100), now - secs(50));
        let keep = res(now - secs(5), now + secs(5));
        let p = plan(&hra(None, vec![old, keep.clone()]), &[], now);
        assert_eq!(p.reservations, vec![keep]);
        assert_eq!(p.counts, counts(2, 1, 0, 0, 1));
    }

    #[test]
    fn max_zero_extends_every_entry_and_revives_expired_ones() {
        let now = t0();
        let read = hra(
            Some(0),
            vec![
                res(now - secs(100), now - secs(70)),
                res(now - secs(5), now + secs(5)),
            ],
        );
        let p = plan(&read, &[], now);
        assert_eq!(
            p.reservations,
            vec![res(now, now + secs(30)), res(now, now + secs(10))]
        );
        assert_eq!(p.counts, counts(2, 0, 0, 0, 2));
    }

    #[test]
    fn negative_max_is_treated_as_zero() {
        let now = t0();
        let read = hra(Some(-3), vec![res(now - secs(100), now - secs(70))]);
        let p = plan(&read, &[], now);
        assert_eq!(p.reservations, vec![res(now, now + secs(30))]);
        assert_eq!(p.counts, counts(1, 0, 0, 0, 1));
    }

    #[test]
    fn expired_backlog_entries_come_back_but_expired_entries_below_max_do_not() {
        let now = t0();
        let read = hra(
            Some(1),
            vec![
                res(now - secs(100), now - secs(90)), // index 0: within max, expired: dropped
                res(now - secs(100), now - secs(80)), // index 1: backlog, expired: revived
            ],
        );
        let p = plan(&read, &[], now);
        assert_eq!(p.reservations, vec![res(now, now + secs(20))]);
        assert_eq!(p.counts, counts(2, 1, 0, 0, 1));
    }

    #[test]
    fn list_not_longer_than_max_is_not_extended() {
        let now = t0();
        let read = hra(
            Some(2),
            vec![
                res(now - secs(10), now - secs(1)),
                res(now - secs(10), now + secs(1)),
            ],
        );
        let p = plan(&read, &[], now);
        assert_eq!(p.reservations, vec![res(now - secs(10), now + secs(1))]);
        assert_eq!(p.counts, counts(2, 1, 0, 0, 1));
    }

    #[test]
    fn order_matters_on_an_empty_list() {
        let now = t0();
        let empty = hra(None, vec![]);
        let down_up = plan(&empty, &[ev(-1, 10), ev(1, 10)], now);
        assert_eq!(down_up.reservations, vec![res(now, now + secs(10))]);
        assert_eq!(down_up.counts, counts(0, 0, 1, 1, 1));
        let up_down = plan(&empty, &[ev(1, 10), ev(-1, 10)], now);
        assert!(up_down.reservations.is_empty());
        assert_eq!(up_down.counts, counts(0, 0, 1, 1, 0));
    }

    #[test]
    fn more_completions_than_entries_counts_them_all() {
        let now = t0();
        let read = hra(
            None,
            vec![res(now, now + secs(60)), res(now, now + secs(60))],
        );
        let p = plan(&read, &[ev(-5, 0)], now);
        assert!(p.reservations.is_empty());
        assert_eq!(p.counts, counts(2, 0, 0, 5, 0));
        // Exactly as many completions as entries empties the list too.
        let p = plan(&read, &[ev(-2, 0)], now);
        assert!(p.reservations.is_empty());
        assert_eq!(p.counts.completed, 2);
    }

    #[test]
    fn completions_remove_the_oldest_first() {
        let now = t0();
        let a = res(now - secs(3), now + secs(60));
        let b = res(now - secs(2), now + secs(61));
        let c = res(now - secs(1), now + secs(62));
        let p = plan(&hra(None, vec![a, b, c.clone()]), &[ev(-2, 0)], now);
        assert_eq!(p.reservations, vec![c]);
    }

    #[test]
    fn multi_amount_adds_each_as_one_replica() {
        let now = t0();
        let p = plan(&hra(None, vec![]), &[ev(3, 30), ev(-1, 0), ev(2, 5)], now);
        assert_eq!(
            p.reservations,
            vec![
                res(now, now + secs(30)),
                res(now, now + secs(30)),
                res(now, now + secs(5)),
                res(now, now + secs(5)),
            ]
        );
        assert_eq!(p.counts, counts(0, 0, 5, 1, 4));
    }

    #[test]
    fn planned_list_serializes_to_whole_seconds() {
        let now = t0() + TimeDelta::milliseconds(750);
        let p = plan(&hra(None, vec![]), &[ev(1, 30)], now);
        let json = serde_json::to_value(&p.reservations).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"effectiveTime": "2026-05-29T17:04:57Z",
                "expirationTime": "2026-05-29T17:05:27Z", "replicas": 1}])
        );
    }
}
