//! Folding never changes the plan (property test against the unfolded events).

use super::reference_tests::{DEFAULT_LIFE, arbitrary_event, hra, t0};
use super::*;
use proptest::prelude::*;

fn event() -> impl Strategy<Value = PlanEvent> {
    (
        -4i64..=4,
        prop::sample::select(vec![10i64, 20, 600]),
        prop::option::weighted(0.15, prop::sample::select(vec!["a", "b", "c"])),
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

fn fold(events: &[PlanEvent]) -> Vec<PlanEvent> {
    let mut f = Fold::default();
    for e in events.iter().cloned() {
        f.push(e);
    }
    f.into_events()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn folded_events_plan_exactly_like_the_events_one_by_one(
        list in prop::collection::vec(reservation(), 0..12),
        max in prop::option::of(-1i32..6),
        events in prop::collection::vec(event(), 0..60),
    ) {
        let read = hra(max, list);
        let folded = fold(&events);
        prop_assert_eq!(plan(&read, &folded, t0(), DEFAULT_LIFE), plan(&read, &events, t0(), DEFAULT_LIFE));
    }

    #[test]
    fn folding_in_two_parts_is_the_same(
        list in prop::collection::vec(reservation(), 0..12),
        events in prop::collection::vec(event(), 0..60),
        cut in 0usize..60,
    ) {
        let cut = cut.min(events.len());
        let mut first = Fold::default();
        events[..cut].iter().cloned().for_each(|e| first.push(e));
        let mut second = Fold::default();
        events[cut..].iter().cloned().for_each(|e| second.push(e));
        first.extend(second);
        let read = hra(None, list);
        prop_assert_eq!(plan(&read, &first.into_events(), t0(), DEFAULT_LIFE), plan(&read, &events, t0(), DEFAULT_LIFE));
    }
}

#[test]
fn any_mix_of_signs_folds_to_at_most_three_events_per_duration() {
    let e = |amount| PlanEvent {
        amount,
        duration: Some(TimeDelta::seconds(600)),
        job: None,
        started: None,
    };
    let mut f = Fold::default();
    for i in 0..100_000i64 {
        f.push(e(if (i * 7919) % 3 == 0 { -1 } else { 1 }));
    }
    let events = f.into_events();
    assert!(events.len() <= 3, "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.amount > 0)
            .map(|e| e.amount)
            .sum::<i64>(),
        66_666
    );
}
