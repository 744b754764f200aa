//! Table tests of the reference semantics (README.md, "Semantics").

use super::*;
use crate::domain::hra::HraKey;

/// The life of reservations whose event gives none (as `--default-duration` does).
pub(super) const DEFAULT_LIFE: TimeDelta = TimeDelta::minutes(10);

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-29T17:04:57Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

pub(super) fn res(eff: DateTime<Utc>, exp: DateTime<Utc>) -> CapacityReservation {
    CapacityReservation {
        name: String::new(),
        effective_time: eff,
        expiration_time: exp,
        replicas: 1,
    }
}

pub(super) fn hra(max: Option<i32>, list: Vec<CapacityReservation>) -> Hra {
    Hra {
        key: HraKey::new("default", "example-runners"),
        resource_version: "1".into(),
        min_replicas: Some(1),
        max_replicas: max,
        capacity_reservations: list,
        applied_batches: Default::default(),
        trigger_duration: None,
        finished_jobs: Default::default(),
        job_repositories: Default::default(),
        groups: Default::default(),
        object_bytes: 0,
        warm_profile: None,
    }
}

pub(super) fn ev(amount: i64, duration: i64) -> PlanEvent {
    PlanEvent {
        amount,
        duration: Some(secs(duration)),
        job: None,
        started: None,
    }
}

/// A generated `(amount, seconds, job)` as an event (a job's event is `+1` or `-1`), for the
/// property tests.
pub(super) fn arbitrary_event<J: AsRef<str>>(
    (amount, seconds, job): (i64, i64, Option<J>),
) -> PlanEvent {
    PlanEvent {
        amount: if job.is_some() {
            amount.signum().max(-1) | 1
        } else {
            amount
        },
        duration: Some(TimeDelta::seconds(seconds)),
        job: job.map(|j| Arc::from(j.as_ref())),
        started: None,
    }
}

pub(super) fn counts(before: u64, expired: u64, added: u64, completed: u64, after: u64) -> Counts {
    Counts {
        before,
        expired,
        added,
        completed,
        after,
        ignored_finished: 0,
        started: 0,
        warm_claimed: 0,
        warm_added: 0,
        warm_expired: 0,
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
        let p = plan(&read, &events, t2, DEFAULT_LIFE);
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
    let p = plan(&read, &[], now, DEFAULT_LIFE);
    assert_eq!(p.reservations, vec![res(now - secs(10), now + secs(1))]);
    assert_eq!(p.counts, counts(3, 2, 0, 0, 1));
}

#[test]
fn nil_max_never_extends() {
    let now = t0();
    let old = res(now - secs(100), now - secs(50));
    let keep = res(now - secs(5), now + secs(5));
    let p = plan(&hra(None, vec![old, keep.clone()]), &[], now, DEFAULT_LIFE);
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
    let p = plan(&read, &[], now, DEFAULT_LIFE);
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
    let p = plan(&read, &[], now, DEFAULT_LIFE);
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
    let p = plan(&read, &[], now, DEFAULT_LIFE);
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
    let p = plan(&read, &[], now, DEFAULT_LIFE);
    assert_eq!(p.reservations, vec![res(now - secs(10), now + secs(1))]);
    assert_eq!(p.counts, counts(2, 1, 0, 0, 1));
}

#[test]
fn order_matters_on_an_empty_list() {
    let now = t0();
    let empty = hra(None, vec![]);
    let down_up = plan(&empty, &[ev(-1, 10), ev(1, 10)], now, DEFAULT_LIFE);
    assert_eq!(down_up.reservations, vec![res(now, now + secs(10))]);
    assert_eq!(down_up.counts, counts(0, 0, 1, 1, 1));
    let up_down = plan(&empty, &[ev(1, 10), ev(-1, 10)], now, DEFAULT_LIFE);
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
    let p = plan(&read, &[ev(-5, 0)], now, DEFAULT_LIFE);
    assert!(p.reservations.is_empty());
    assert_eq!(p.counts, counts(2, 0, 0, 5, 0));
    // Exactly as many completions as entries empties the list too.
    let p = plan(&read, &[ev(-2, 0)], now, DEFAULT_LIFE);
    assert!(p.reservations.is_empty());
    assert_eq!(p.counts.completed, 2);
}

#[test]
fn completions_remove_the_oldest_first() {
    let now = t0();
    let a = res(now - secs(3), now + secs(60));
    let b = res(now - secs(2), now + secs(61));
    let c = res(now - secs(1), now + secs(62));
    let p = plan(
        &hra(None, vec![a, b, c.clone()]),
        &[ev(-2, 0)],
        now,
        DEFAULT_LIFE,
    );
    assert_eq!(p.reservations, vec![c]);
}

#[test]
fn multi_amount_adds_each_as_one_replica() {
    let now = t0();
    let p = plan(
        &hra(None, vec![]),
        &[ev(3, 30), ev(-1, 0), ev(2, 5)],
        now,
        DEFAULT_LIFE,
    );
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
    let p = plan(&hra(None, vec![]), &[ev(1, 30)], now, DEFAULT_LIFE);
    let json = serde_json::to_value(&p.reservations).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"effectiveTime": "2026-05-29T17:04:57Z",
            "expirationTime": "2026-05-29T17:05:27Z", "replicas": 1}])
    );
}
