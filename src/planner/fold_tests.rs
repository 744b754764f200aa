//! Folding events into runs never changes the plan (property test against the unfolded list).

use super::reference_tests::{hra, t0};
use super::*;
use proptest::prelude::*;

fn event() -> impl Strategy<Value = PlanEvent> {
    (
        -3i64..=3,
        prop::sample::select(vec![10i64, 20, 600]),
        prop::option::weighted(0.2, prop::sample::select(vec!["a", "b", "c"])),
    )
        .prop_map(|(amount, secs, job)| PlanEvent {
            amount: if job.is_some() && amount == 0 {
                1
            } else {
                amount
            },
            duration: TimeDelta::seconds(secs),
            job: job.map(Arc::from),
        })
}

fn reservation() -> impl Strategy<Value = CapacityReservation> {
    (
        -100i64..100,
        1i64..200,
        prop::option::weighted(0.3, prop::sample::select(vec!["a", "b", "x"])),
    )
        .prop_map(|(start, life, name)| CapacityReservation {
            name: name.unwrap_or("").to_owned(),
            effective_time: t0() + TimeDelta::seconds(start),
            expiration_time: t0() + TimeDelta::seconds(start + life),
            replicas: 1,
        })
}

proptest! {
    #[test]
    fn folded_runs_plan_exactly_like_the_events_one_by_one(
        list in prop::collection::vec(reservation(), 0..12),
        max in prop::option::of(-1i32..6),
        events in prop::collection::vec(event(), 0..40),
    ) {
        let read = hra(max, list);
        let mut folded = Vec::new();
        for e in events.iter().cloned() {
            push_folded(&mut folded, e);
        }
        prop_assert!(folded.len() <= events.len());
        prop_assert_eq!(plan(&read, &folded, t0()), plan(&read, &events, t0()));
    }
}

#[test]
fn runs_merge_by_sign_and_duration_and_keep_order() {
    let e = |amount, secs, job: Option<&str>| PlanEvent {
        amount,
        duration: TimeDelta::seconds(secs),
        job: job.map(Arc::from),
    };
    let mut v = Vec::new();
    for ev in [
        e(1, 10, None),
        e(2, 10, None),
        e(0, 10, None),
        e(1, 20, None),
        e(-1, 10, None),
        e(-2, 99, None),
        e(1, 20, Some("j")),
        e(1, 20, None),
    ] {
        push_folded(&mut v, ev);
    }
    assert_eq!(
        v,
        vec![
            e(3, 10, None),
            e(1, 20, None),
            e(-3, 10, None),
            e(1, 20, Some("j")),
            e(1, 20, None)
        ]
    );
}
