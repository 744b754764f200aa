//! Table tests of job-matched events (`job_id`), beside the reference ones.

use super::reference_tests::{DEFAULT_LIFE, counts, ev, hra, res, secs, t0};
use super::*;

fn job(amount: i64, id: &str) -> PlanEvent {
    PlanEvent {
        amount,
        duration: Some(secs(600)),
        job: Some(id.into()),
        started: None,
    }
}

fn names(p: &Plan) -> Vec<&str> {
    p.reservations.iter().map(|r| r.name.as_str()).collect()
}

fn named(name: &str, r: CapacityReservation) -> CapacityReservation {
    CapacityReservation {
        name: name.into(),
        ..r
    }
}

/// Reference issue #4315: a re-run's stale completions must not take the new job's runner.
#[test]
fn stale_completions_of_unknown_jobs_leave_a_queued_job_its_reservation() {
    let now = t0();
    let mut events = vec![job(1, "J1")];
    events.extend(["J0a", "J0b", "J0c", "J0d", "J0e"].map(|j| job(-1, j)));
    let p = plan(&hra(None, vec![]), &events, now, DEFAULT_LIFE);
    assert_eq!(names(&p), ["J1"]);
    assert_eq!(
        p.counts,
        counts(0, 0, 1, 0, 1),
        "no removal happened, so none is counted"
    );
    assert_eq!(p.finished_jobs.len(), 5);
    // The same sequence without job ids is the reference: the new job loses its runner.
    let mut anonymous = vec![ev(1, 600)];
    anonymous.extend((0..5).map(|_| ev(-1, 600)));
    let p = plan(&hra(None, vec![]), &anonymous, now, DEFAULT_LIFE);
    assert_eq!(p.counts, counts(0, 0, 1, 5, 0));
}

#[test]
fn a_completion_removes_its_own_reservation_from_the_middle() {
    let now = t0();
    let base = res(now - secs(5), now + secs(600));
    let list = vec![
        named("a", base.clone()),
        named("b", base.clone()),
        named("c", base),
    ];
    let p = plan(&hra(None, list), &[job(-1, "b")], now, DEFAULT_LIFE);
    assert_eq!(names(&p), ["a", "c"]);
    assert_eq!(p.counts, counts(3, 0, 0, 1, 2));
    assert_eq!(p.finished_jobs, vec![Arc::<str>::from("b")]);
}

#[test]
fn a_redelivered_queued_event_adds_nothing() {
    let now = t0();
    let p = plan(
        &hra(None, vec![]),
        &[job(1, "J"), job(1, "J")],
        now,
        DEFAULT_LIFE,
    );
    assert_eq!(names(&p), ["J"]);
    assert_eq!(p.counts.added, 1);
    let existing = vec![named("J", res(now - secs(60), now + secs(60)))];
    let p = plan(
        &hra(None, existing.clone()),
        &[job(1, "J")],
        now,
        DEFAULT_LIFE,
    );
    assert_eq!(
        p.reservations, existing,
        "the existing reservation is kept as it was"
    );
    assert_eq!(p.counts.added, 0);
}

#[test]
fn a_completion_before_its_queued_event_wins_within_a_batch() {
    let now = t0();
    let p = plan(
        &hra(None, vec![]),
        &[job(-1, "J"), job(1, "J")],
        now,
        DEFAULT_LIFE,
    );
    assert!(p.reservations.is_empty());
    let ignored = Counts {
        ignored_finished: 1,
        ..counts(0, 0, 0, 0, 0)
    };
    assert_eq!(p.counts, ignored, "the late queued is said to be ignored");
}

#[test]
fn job_events_and_anonymous_events_mix_in_order() {
    let now = t0();
    let old = res(now - secs(10), now + secs(600));
    let list = vec![old.clone(), named("J", old.clone())];
    // An anonymous completion takes the oldest entry, which is the anonymous one here;
    // the job's own completion then takes its reservation.
    let p = plan(
        &hra(None, list),
        &[ev(-1, 0), job(1, "K"), job(-1, "J")],
        now,
        DEFAULT_LIFE,
    );
    assert_eq!(names(&p), ["K"]);
    assert_eq!(p.counts, counts(2, 0, 1, 2, 1));
    assert_eq!(p.reservations[0].expiration_time, now + secs(600));
}

#[test]
fn named_entries_extend_and_expire_like_any_other() {
    let now = t0();
    let list = vec![
        named("expired", res(now - secs(100), now - secs(1))),
        named("backlog", res(now - secs(100), now - secs(50))),
    ];
    let p = plan(&hra(Some(1), list), &[], now, DEFAULT_LIFE);
    assert_eq!(
        p.reservations,
        vec![named("backlog", res(now, now + secs(50)))]
    );
    assert_eq!(p.counts, counts(2, 1, 0, 0, 1));
}

/// Tombstones kept in the HRA: a `+1` for a job remembered there adds nothing, whichever
/// replica plans it; an expired tombstone no longer blocks it.
#[test]
fn a_job_remembered_in_the_hra_as_finished_is_not_added() {
    use crate::domain::tombstones::{FinishedJobs, TombstoneLimits, next};
    let now = t0();
    let mut h = hra(None, vec![]);
    let limits = TombstoneLimits {
        ttl: secs(1),
        capacity: 10,
    };
    let gone = next(
        &FinishedJobs::default(),
        &["gone".into()],
        now - secs(1),
        limits,
    )
    .after;
    h.finished_jobs = next(&gone, &["done".into()], now, limits).after;
    let events = [
        job(1, "done"),
        job(1, "gone"),
        job(1, "new"),
        job(-1, "done"),
    ];
    let p = plan(&h, &events, now, DEFAULT_LIFE);
    assert_eq!(
        names(&p),
        ["gone", "new"],
        "expired at now: no longer remembered"
    );
    let ignored = Counts {
        ignored_finished: 1,
        ..counts(0, 0, 2, 0, 2)
    };
    assert_eq!(
        p.counts, ignored,
        "the queued of `done` is ignored, and said to be"
    );
    assert_eq!(p.finished_jobs, vec![Arc::<str>::from("done")]);
}
