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

#[test]
fn no_warm_reservation_past_max_replicas() {
    use crate::domain::warm::{life, plan_topped_up};
    let rules = Rules::new(DEFAULT_LIFE);
    let jobs: Vec<PlanEvent> = (0..9).map(|i| event(1, &i.to_string(), None)).collect();
    let p = plan_topped_up(
        &hra(Some(10), vec![]),
        &jobs,
        t0(),
        &[],
        rules,
        4,
        life(secs(60)),
    );
    assert_eq!((p.counts.warm_added, p.counts.after), (1, 10));
    let more: Vec<PlanEvent> = (9..30).map(|i| event(1, &i.to_string(), None)).collect();
    let full = plan_topped_up(
        &hra(Some(10), vec![]),
        &more,
        t0(),
        &[],
        rules,
        4,
        life(secs(60)),
    );
    assert_eq!((full.counts.warm_added, full.warm_held()), (0, 0));
}

mod never_twice {
    use super::*;
    use crate::domain::{
        tombstones::{self, TombstoneLimits},
        warm::{life, plan_topped_up},
    };
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashSet};

    /// One batch: jobs queued and completed (ids from a small pool, so redeliveries and
    /// completions of jobs never queued happen), a warm target, and seconds passed.
    fn batch() -> impl Strategy<Value = (Vec<(bool, u8)>, u32, i64)> {
        (
            prop::collection::vec((any::<bool>(), 0u8..12), 0..6),
            0u32..5,
            0i64..90,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// However queued jobs, completions, top-ups and expiries interleave, a job is held
        /// once, a claimed warm reservation is gone, and ARC's sum is exactly the jobs held
        /// plus the warm reservations held.
        #[test]
        fn claims_never_count_a_runner_twice(batches in prop::collection::vec(batch(), 1..25)) {
            let rules = Rules::new(TimeDelta::hours(1));
            let mut now = t0();
            let mut hra = hra(Some(40), vec![]);
            let mut waiting: BTreeSet<String> = BTreeSet::new();
            let mut done: HashSet<String> = HashSet::new();
            for (events, target, passed) in batches {
                now += secs(passed);
                let events: Vec<PlanEvent> = events
                    .iter()
                    .map(|&(queued, id)| event(if queued { 1 } else { -1 }, &id.to_string(), None))
                    .collect();
                for e in &events {
                    let id = e.job.as_deref().unwrap().to_owned();
                    if e.amount > 0 && !done.contains(&id) {
                        waiting.insert(id);
                    } else if e.amount < 0 {
                        waiting.remove(&id);
                        done.insert(id);
                    }
                }
                let p = plan_topped_up(&hra, &events, now, &[], rules, target, life(secs(60)))
                    .materialize();
                let names: Vec<&str> = p.reservations.iter().map(|r| r.name.as_str()).collect();
                let unique: HashSet<&str> = names.iter().copied().collect();
                prop_assert_eq!(unique.len(), names.len(), "a name held twice: {:?}", names);
                let jobs: BTreeSet<String> =
                    names.iter().filter(|n| !is_warm(n)).map(|n| n.to_string()).collect();
                prop_assert_eq!(&jobs, &waiting);
                let warm = names.iter().filter(|n| is_warm(n)).count() as u32;
                prop_assert!(warm >= target.min(40 - jobs.len() as u32).min(target));
                prop_assert_eq!(p.counts.after, (jobs.len() as u32 + warm) as u64);
                prop_assert!(p.counts.warm_claimed <= p.counts.before);
                // The finished jobs go with the write, as the applier writes them.
                let limits = TombstoneLimits { ttl: TimeDelta::hours(1), capacity: 1000 };
                let finished = tombstones::next(&hra.finished_jobs, &p.finished_jobs, now, limits);
                hra = super::hra(Some(40), p.reservations);
                hra.finished_jobs = finished.after;
            }
        }
    }
}
