//! Table tests of warm reservations: a queued job claims one (it becomes the job's own), so
//! the sum never counts a runner twice; warm reservations keep their own life on either clock.

use super::reference_tests::{DEFAULT_LIFE, hra, secs, t0};
use super::*;
use crate::domain::warm::{is_warm, warm_name};

fn event(amount: i64, id: &str, life: Option<TimeDelta>) -> PlanEvent {
    PlanEvent {
        amount,
        duration: life,
        job: Some(id.into()),
        started: None,
    }
}

fn names(p: &Plan) -> Vec<&str> {
    p.reservations.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn queued_jobs_claim_warm_reservations_oldest_first() {
    let t = t0();
    let (w1, w2) = (warm_name(1, 0), warm_name(1, 1));
    let two_min = Some(secs(120));
    let warmed = plan(
        &hra(Some(10), vec![]),
        &[event(1, &w1, two_min), event(1, &w2, two_min)],
        t,
        DEFAULT_LIFE,
    );
    assert_eq!(warmed.counts.added, 2);
    let mut read = hra(Some(10), warmed.reservations.clone());
    read.resource_version = "2".into();
    let now = t + secs(30);
    let p = plan(
        &read,
        &[
            event(1, "a", None),
            event(1, "b", None),
            // A redelivery claims nothing more.
            event(1, "a", None),
            event(1, "c", None),
        ],
        now,
        DEFAULT_LIFE,
    );
    assert_eq!(names(&p), ["a", "b", "c"]);
    assert_eq!(
        (p.counts.warm_claimed, p.counts.added, p.counts.after),
        (2, 3, 3)
    );
    // The job's reservation has the job's times, not the warm one's.
    assert_eq!(p.reservations[0].expiration_time, now + DEFAULT_LIFE);
}

#[test]
fn unclaimed_warm_reservations_expire_and_a_warm_one_claims_nothing() {
    let t = t0();
    let w = warm_name(1, 0);
    let read = hra(
        Some(10),
        plan(
            &hra(Some(10), vec![]),
            &[event(1, &w, Some(secs(120)))],
            t,
            DEFAULT_LIFE,
        )
        .reservations,
    );
    let more = plan(
        &read,
        &[event(1, &warm_name(2, 0), Some(secs(120)))],
        t,
        DEFAULT_LIFE,
    );
    assert_eq!((more.counts.warm_claimed, more.counts.after), (0, 2));
    let later = plan(&read, &[], t + secs(120), DEFAULT_LIFE);
    assert_eq!((later.counts.expired, later.counts.after), (1, 0));
}

#[test]
fn on_the_started_clock_warm_reservations_keep_their_own_life() {
    let t = t0();
    let rules = Rules {
        clock: ReservationClock::Started {
            max_queue_time: TimeDelta::hours(24),
        },
        ..Rules::new(DEFAULT_LIFE)
    };
    let w = warm_name(1, 0);
    let p = plan_grouped(
        &hra(Some(10), vec![]),
        &[event(1, &w, Some(secs(120))), event(1, "job", None)],
        t,
        &[],
        rules,
    )
    .materialize();
    // The job claimed the warm reservation added before it in the same batch, and waits on
    // the queue clock.
    assert_eq!(names(&p), ["job"]);
    assert_eq!(p.reservations[0].expiration_time, t + TimeDelta::hours(24));
    let alone = plan_grouped(
        &hra(Some(10), vec![]),
        &[event(1, &w, Some(secs(120)))],
        t,
        &[],
        rules,
    )
    .materialize();
    assert_eq!(alone.reservations[0].expiration_time, t + secs(120));
}

#[test]
fn a_top_up_adds_only_what_claims_and_expiries_took() {
    use crate::domain::warm::{life, plan_topped_up};
    let t = t0();
    let rules = Rules::new(DEFAULT_LIFE);
    let empty = hra(Some(10), vec![]);
    let first = plan_topped_up(&empty, &[], t, &[], rules, 3, life(secs(60))).materialize();
    assert_eq!(
        (
            first.counts.warm_added,
            first.counts.added,
            first.counts.after
        ),
        (3, 0, 3)
    );
    assert!(first.reservations.iter().all(|r| is_warm(&r.name)));
    assert_eq!(first.reservations[0].expiration_time, t + secs(180));
    // Two jobs claim two; the same batch makes up the two, and names them apart.
    let read = hra(Some(10), first.reservations);
    let now = t + secs(30);
    let p = plan_topped_up(
        &read,
        &[event(1, "a", None), event(1, "b", None)],
        now,
        &[],
        rules,
        3,
        life(secs(60)),
    )
    .materialize();
    let c = p.counts;
    assert_eq!(
        (c.warm_claimed, c.warm_added, c.added, c.after),
        (2, 2, 2, 5)
    );
    let mut names = names(&p);
    names.dedup();
    assert_eq!(names.len(), 5);
    // Unclaimed ones expire, and count as warm expiries.
    let later = plan_grouped(
        &hra(Some(10), p.reservations),
        &[],
        t + secs(200),
        &[],
        rules,
    );
    assert_eq!((later.counts.expired, later.counts.warm_expired), (1, 1));
}
