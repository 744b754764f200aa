//! The run-length planner plans exactly as the plain one did, and never writes out what it
//! can count.

use super::reference_tests::{DEFAULT_LIFE, arbitrary_event, hra, t0};
use super::*;
use proptest::prelude::*;

fn event() -> impl Strategy<Value = PlanEvent> {
    (
        prop_oneof![-6i64..=6, Just(1000), Just(-1000)],
        prop::sample::select(vec![10i64, 20, 600]),
        prop::option::weighted(0.2, prop::sample::select(vec!["a", "b", "c"])),
    )
        .prop_map(arbitrary_event)
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
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn runs_plan_exactly_like_the_plain_planner(
        list in prop::collection::vec(reservation(), 0..12),
        max in prop::option::of(-1i32..6),
        events in prop::collection::vec(event(), 0..40),
    ) {
        let read = hra(max, list);
        // Nothing grouped: `groups_tests` compares grouped lists with the oracle.
        let shape = Shape { named: usize::MAX, group_size: 1 };
        let runs = plan_grouped(&read, &events, t0(), &[], Rules { shape, ..Rules::new(DEFAULT_LIFE) });
        let plain = oracle::plan(&read, &events, t0(), DEFAULT_LIFE);
        prop_assert_eq!(runs.len(), plain.reservations.len() as u64);
        prop_assert_eq!(runs.materialize(), plain);
    }
}

#[test]
fn a_million_adds_are_counted_not_written_out() {
    let events = vec![
        PlanEvent {
            amount: 1_000_000,
            duration: None,
            job: None,
            started: None,
        };
        100
    ];
    let runs = plan_runs(&hra(None, vec![]), &events, t0(), DEFAULT_LIFE);
    assert_eq!(runs.counts.after, 100_000_000);
    assert_eq!(runs.counts.added, 100_000_000);
    assert_eq!(runs.head.runs.len(), 1, "one run of identical entries");
    assert_eq!(runs.len(), 100 + 1, "the named entries and one group");
    let plan = runs.materialize();
    assert_eq!(plan.reservations[100].replicas, 100_000_000 - 100);
}

#[test]
fn lives_too_long_to_represent_saturate_instead_of_expiring_now() {
    let mut read = hra(None, vec![]);
    read.trigger_duration = Some(TimeDelta::MAX);
    let event = PlanEvent {
        amount: 1,
        duration: None,
        job: None,
        started: None,
    };
    let p = plan(&read, &[event], t0(), DEFAULT_LIFE);
    let written = &p.reservations[0];
    assert_eq!(
        written.expiration_time,
        crate::domain::duration::latest_time()
    );
    assert_eq!(
        serde_json::to_value(written).unwrap()["expirationTime"],
        "9999-12-31T23:59:59Z"
    );
}
