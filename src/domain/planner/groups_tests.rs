//! Grouped reservations plan like the reference's list: the same counts, the same times, the
//! same jobs; only the layout differs (and, for job-less scale-downs reaching into a group,
//! which waiting job loses its unit).

use super::reference_tests::{DEFAULT_LIFE, arbitrary_event, hra, t0};
use super::*;
use crate::domain::{codec::Members, groups::is_group_name};
use proptest::prelude::*;

/// Every unit of `list`, a group's members and job-less units spelled out with its times.
pub(super) fn units(list: &[CapacityReservation]) -> Vec<CapacityReservation> {
    let mut out = Vec::new();
    for r in list {
        let Some(members) = is_group_name(&r.name)
            .then(|| Members::decode(&r.name).ok())
            .flatten()
        else {
            out.push(r.clone());
            continue;
        };
        let unit = |name: &str| CapacityReservation {
            name: name.to_owned(),
            replicas: 1,
            ..r.clone()
        };
        for m in members.iter() {
            out.push(unit(&m.job));
        }
        let anonymous = u64::try_from(r.replicas).unwrap_or(0) - members.len() as u64;
        out.extend((0..anonymous).map(|_| unit("")));
    }
    out
}

fn times(list: &[CapacityReservation]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut t: Vec<_> = list
        .iter()
        .map(|r| (r.effective_time, r.expiration_time))
        .collect();
    t.sort_unstable();
    t
}

fn names(list: &[CapacityReservation]) -> Vec<String> {
    let mut n: Vec<String> = list
        .iter()
        .map(|r| r.name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    n.sort_unstable();
    n
}

fn event() -> impl Strategy<Value = PlanEvent> {
    (
        prop_oneof![-4i64..=4, Just(30), Just(-30)],
        prop::sample::select(vec![10i64, 20, 600]),
        prop::option::weighted(0.6, (1u64..40).prop_map(|n| n.to_string())),
    )
        .prop_map(arbitrary_event)
}

fn reservation() -> impl Strategy<Value = CapacityReservation> {
    (
        -100i64..100,
        1i64..200,
        prop::option::weighted(0.5, (40u64..60).prop_map(|n| n.to_string())),
    )
        .prop_map(|(start, life, name)| CapacityReservation {
            name: name.unwrap_or_default(),
            effective_time: t0() + TimeDelta::seconds(start),
            expiration_time: t0() + TimeDelta::seconds(start + life),
            replicas: 1,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]
    #[test]
    fn grouped_plans_count_time_and_name_like_the_reference(
        list in prop::collection::vec(reservation(), 0..16),
        max in prop::option::of(-1i32..6),
        named in 0usize..5,
        group_size in 1usize..4,
        steps in prop::collection::vec((prop::collection::vec(event(), 0..30), 0i64..300), 1..4),
        jobs in any::<bool>(),
    ) {
        // Either job events with job-less additions, or job-less events of both signs: a
        // job-less scale-down reaching into a group takes a unit the reference would not
        // (which waiting job loses it), so with job events the names would differ.
        let shape = Shape { named, group_size };
        // GitHub numbers jobs as they are created: the read list's named entries, then each
        // new job, take rising ids (a completion names any earlier one, or none known).
        let mut list = list;
        for (i, r) in list.iter_mut().enumerate().filter(|(_, r)| !r.name.is_empty()) {
            r.name = (10 + i).to_string();
        }
        let mut next_id = 100u64;
        let mut ours = hra(max, list.clone());
        let mut plain = hra(max, list);
        for (mut events, later) in steps {
            for e in &mut events {
                if let Some(job) = e.job.as_mut() {
                    let n: u64 = job.parse().unwrap_or(0);
                    *job = if e.amount > 0 {
                        next_id += 1 + n % 3;
                        next_id.to_string()
                    } else {
                        (10 + n * 7 % (next_id - 9)).to_string()
                    }
                    .into();
                }
                if jobs && e.job.is_none() {
                    e.amount = e.amount.abs();
                } else if !jobs {
                    e.job = None;
                }
            }
            let now = t0() + TimeDelta::seconds(later);
            let grouped = plan_grouped(&ours, &events, now, &[], Rules { shape, ..Rules::new(DEFAULT_LIFE) });
            let entries = grouped.len();
            let grouped = grouped.materialize();
            let oracle = oracle::plan(&plain, &events, now, DEFAULT_LIFE);
            prop_assert_eq!(grouped.counts, oracle.counts);
            prop_assert_eq!(entries, grouped.reservations.len() as u64);
            let spelled = units(&grouped.reservations);
            prop_assert_eq!(spelled.len() as u64, oracle.counts.after);
            prop_assert_eq!(times(&spelled), times(&oracle.reservations));
            if jobs {
                prop_assert_eq!(names(&spelled), names(&oracle.reservations));
            }
            let sum: i64 = grouped.reservations.iter().map(|r| i64::from(r.replicas)).sum();
            prop_assert_eq!(sum as u64, oracle.counts.after, "ARC's sum is the units held");
            let named_entries = grouped.reservations.iter().filter(|r| !is_group_name(&r.name)).count();
            prop_assert!(named_entries as u64 <= oracle.counts.after.min(shape.named_for(max) as u64));
            ours.capacity_reservations = grouped.reservations;
            plain.capacity_reservations = oracle.reservations;
        }
    }
}

fn job(amount: i64, id: u64) -> PlanEvent {
    PlanEvent {
        amount,
        duration: None,
        job: Some(Arc::from(id.to_string())),
        started: None,
    }
}

/// The HRA after writing `plan`.
fn written(mut read: Hra, plan: Plan) -> Hra {
    read.capacity_reservations = plan.reservations;
    read
}

#[test]
fn a_grouped_job_s_capacity_ends_at_its_own_expiration() {
    // No maxReplicas: nothing is extended. 300 jobs at t0, 300 more 300 s later, 600 s each.
    let read = hra(None, vec![]);
    let first: Vec<PlanEvent> = (0..300).map(|i| job(1, i)).collect();
    let later: Vec<PlanEvent> = (300..600).map(|i| job(1, i)).collect();
    let p = plan(&read, &first, t0(), DEFAULT_LIFE);
    let read = written(read, p);
    let p = plan(&read, &later, t0() + TimeDelta::seconds(300), DEFAULT_LIFE);
    assert!(
        p.reservations
            .iter()
            .filter(|r| is_group_name(&r.name))
            .count()
            >= 2
    );
    let read = written(read, p);
    let at = |s: i64| plan(&read, &[], t0() + TimeDelta::seconds(s), DEFAULT_LIFE);
    assert_eq!(at(599).counts.after, 600, "all held until the first expire");
    let p = at(600);
    assert_eq!((p.counts.expired, p.counts.after), (300, 300));
    let left = units(&p.reservations);
    assert!(left.iter().all(|r| r.name.parse::<u64>().unwrap() >= 300));
    assert_eq!(at(900).counts.after, 0);
    // ARC's sum never counts an expired group: each group's expiration is its jobs'.
    assert_eq!(read.reserved_replicas(t0() + TimeDelta::seconds(600)), 300);
}

#[test]
fn the_oldest_waiting_jobs_are_named_as_named_ones_complete() {
    let read = hra(Some(2), vec![]);
    let queued: Vec<PlanEvent> = (0..250).map(|i| job(1, 1000 + i)).collect();
    let p = plan(&read, &queued, t0(), DEFAULT_LIFE);
    let named = |p: &Plan| -> Vec<String> {
        p.reservations
            .iter()
            .filter(|r| !is_group_name(&r.name))
            .map(|r| r.name.clone())
            .collect()
    };
    assert_eq!(named(&p).len(), NAMED);
    assert_eq!(p.reservations.len(), NAMED + 1, "150 jobs in one group");
    let read = written(read, p);
    // Three named jobs and one grouped job complete; a never-queued job completes too.
    let done = [
        job(-1, 1000),
        job(-1, 1050),
        job(-1, 1099),
        job(-1, 1200),
        job(-1, 7),
    ];
    let p = plan(&read, &done, t0() + TimeDelta::seconds(5), DEFAULT_LIFE);
    assert_eq!((p.counts.completed, p.counts.after), (4, 246));
    let expected: Vec<String> = (1001..1103)
        .filter(|j| ![1050, 1099].contains(j))
        .map(|j| j.to_string())
        .collect();
    assert_eq!(named(&p), expected, "1100..=1102 named in order");
    // A repeated completion and a redelivered queued change nothing.
    let read = written(read, p);
    let again = [job(-1, 1200), job(1, 1150)];
    let p = plan(&read, &again, t0() + TimeDelta::seconds(6), DEFAULT_LIFE);
    assert_eq!(
        (p.counts.added, p.counts.completed, p.counts.after),
        (0, 0, 246)
    );
}

const NAMED: usize = crate::domain::groups::NAMED_AT_LEAST;
