//! Table tests of `--reservation-clock started`: a queued job's reservation holds until the
//! job starts (at most the longest queue time), and lives its duration from the start.

use super::reference_tests::{DEFAULT_LIFE, hra, secs, t0};
use super::*;
use crate::domain::groups::is_group_name;

const DAY: TimeDelta = TimeDelta::hours(24);

fn started() -> Rules {
    Rules {
        clock: ReservationClock::Started {
            max_queue_time: DAY,
        },
        ..Rules::new(DEFAULT_LIFE)
    }
}

fn queued(id: &str) -> PlanEvent {
    PlanEvent {
        amount: 1,
        duration: None,
        job: Some(id.into()),
        started: None,
    }
}

fn completed(id: &str) -> PlanEvent {
    PlanEvent {
        amount: -1,
        ..queued(id)
    }
}

fn start(id: &str, at: DateTime<Utc>) -> PlanEvent {
    PlanEvent {
        amount: 0,
        started: Some(at),
        ..queued(id)
    }
}

fn run(read: &Hra, events: &[PlanEvent], now: DateTime<Utc>, rules: Rules) -> Plan {
    plan_grouped(read, events, now, &[], rules).materialize()
}

/// The HRA as the plan writes it.
fn written(mut read: Hra, plan: &Plan) -> Hra {
    read.capacity_reservations = plan.reservations.clone();
    read
}

fn times(p: &Plan, name: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let r = p.reservations.iter().find(|r| r.name == name).unwrap();
    (r.effective_time, r.expiration_time)
}

#[test]
fn a_waiting_job_keeps_its_runner_past_the_duration_and_its_start_begins_the_duration() {
    let t = t0();
    // Queued at t: held for the longest queue time, not the 10-minute duration.
    let p = run(&hra(None, vec![]), &[queued("7")], t, started());
    assert_eq!(times(&p, "7"), (t, t + DAY));
    // Still waiting 25 minutes later, past its duration: still held.
    let read = written(hra(None, vec![]), &p);
    assert_eq!(read.reserved_replicas(t + secs(1500)), 1);
    let p = run(&read, &[], t + secs(1500), started());
    assert_eq!(p.counts.after, 1);
    // It starts at t+26m (delivered at t+27m): the duration runs from its start.
    let begun = t + secs(1560);
    let p = run(
        &written(read, &p),
        &[start("7", begun)],
        t + secs(1620),
        started(),
    );
    assert_eq!(times(&p, "7"), (begun, begun + DEFAULT_LIFE));
    assert_eq!((p.counts.started, p.counts.after), (1, 1));
    // Its capacity ends with its own duration after the start.
    let read = written(hra(None, vec![]), &p);
    assert_eq!(read.reserved_replicas(begun + DEFAULT_LIFE - secs(1)), 1);
    let p = run(&read, &[], begun + DEFAULT_LIFE, started());
    assert_eq!((p.counts.expired, p.counts.after), (1, 0));
}

#[test]
fn with_arc_s_clock_a_waiting_job_loses_its_runner_and_a_start_changes_nothing() {
    let t = t0();
    let p = run(
        &hra(None, vec![]),
        &[queued("7")],
        t,
        Rules::new(DEFAULT_LIFE),
    );
    assert_eq!(times(&p, "7"), (t, t + DEFAULT_LIFE));
    let read = written(hra(None, vec![]), &p);
    let with_start = run(
        &read,
        &[start("7", t + secs(60))],
        t + secs(61),
        Rules::new(DEFAULT_LIFE),
    );
    let without = run(&read, &[], t + secs(61), Rules::new(DEFAULT_LIFE));
    assert_eq!(with_start, without);
    let p = run(&read, &[], t + secs(601), Rules::new(DEFAULT_LIFE));
    assert_eq!(p.counts.after, 0, "the job waited past its duration");
}

#[test]
fn a_waiting_job_s_completion_removes_it_and_a_late_start_adds_nothing() {
    let t = t0();
    let p = run(
        &hra(None, vec![]),
        &[queued("7"), queued("8")],
        t,
        started(),
    );
    let read = written(hra(None, vec![]), &p);
    // Cancelled while waiting, an hour later: its capacity ends at once.
    let p = run(&read, &[completed("7")], t + secs(3600), started());
    assert_eq!((p.counts.completed, p.counts.after), (1, 1));
    assert_eq!(p.finished_jobs, vec![Arc::<str>::from("7")]);
    // Its start, redelivered after the completion, gives nothing back.
    let p = run(
        &written(read, &p),
        &[completed("7"), start("7", t + secs(3500))],
        t + secs(3601),
        started(),
    );
    assert_eq!((p.counts.started, p.counts.after), (0, 1));
}

#[test]
fn the_queue_time_bounds_a_job_that_never_starts() {
    let t = t0();
    let p = run(&hra(None, vec![]), &[queued("7")], t, started());
    let read = written(hra(None, vec![]), &p);
    assert_eq!(
        run(&read, &[], t + DAY - secs(1), started()).counts.after,
        1
    );
    let p = run(&read, &[], t + DAY, started());
    assert_eq!((p.counts.expired, p.counts.after), (1, 0));
}

#[test]
fn starts_of_unknown_jobs_change_nothing_and_a_start_already_over_ends_the_reservation() {
    let t = t0();
    let p = run(&hra(None, vec![]), &[queued("7")], t, started());
    let read = written(hra(None, vec![]), &p);
    let p = run(&read, &[start("99", t + secs(5))], t + secs(6), started());
    assert_eq!((p.counts.started, p.counts.after), (0, 1));
    // Delivered long after the job started: its duration is over, so is its capacity.
    let p = run(&read, &[start("7", t + secs(5))], t + secs(700), started());
    assert_eq!(
        (p.counts.expired, p.counts.started, p.counts.after),
        (1, 0, 0)
    );
}

#[test]
fn a_start_delivered_before_its_queued_in_one_batch_still_times_the_job() {
    let t = t0();
    let begun = t + secs(2);
    let p = run(
        &hra(None, vec![]),
        &[start("7", begun), queued("7")],
        t + secs(3),
        started(),
    );
    assert_eq!(times(&p, "7"), (begun, begun + DEFAULT_LIFE));
    assert_eq!((p.counts.added, p.counts.after), (1, 1));
}

#[test]
fn an_event_s_own_duration_and_job_less_units_keep_their_lives() {
    let t = t0();
    let jobless = PlanEvent {
        amount: 3,
        duration: Some(secs(120)),
        job: None,
        started: None,
    };
    let p = run(&hra(None, vec![]), &[jobless, queued("7")], t, started());
    // Units without a job cannot follow one: they live their duration from now.
    let lives: Vec<_> = p.reservations.iter().map(|r| r.life()).collect();
    assert_eq!(lives, [secs(120), secs(120), secs(120), DAY]);
    let read = written(hra(None, vec![]), &p);
    let own = PlanEvent {
        duration: Some(secs(1800)),
        ..start("7", t + secs(10))
    };
    let p = run(&read, &[own], t + secs(11), started());
    assert_eq!(times(&p, "7"), (t + secs(10), t + secs(1810)));
}

#[test]
fn a_grouped_job_s_start_moves_it_to_a_group_of_its_own_times() {
    let t = t0();
    let rules = Rules {
        shape: Shape {
            named: 2,
            group_size: 4,
        },
        ..started()
    };
    let events: Vec<_> = (1..=10).map(|i| queued(&i.to_string())).collect();
    let p = run(&hra(None, vec![]), &events, t, rules);
    let read = written(hra(None, vec![]), &p);
    assert_eq!(read.units(), 10);
    // Job 9 waits in a group; it starts.
    let begun = t + secs(30);
    let p = run(&read, &[start("9", begun)], t + secs(31), rules);
    assert_eq!((p.counts.started, p.counts.after), (1, 10));
    let read = written(hra(None, vec![]), &p);
    let holding: Vec<_> = read
        .capacity_reservations
        .iter()
        .filter(|r| is_group_name(&r.name))
        .filter(|r| read.groups.members(&r.name).unwrap().contains("9"))
        .collect();
    assert_eq!(holding.len(), 1);
    assert_eq!(
        (holding[0].effective_time, holding[0].expiration_time),
        (begun, begun + DEFAULT_LIFE)
    );
    // The others still wait a day; when 9's duration is over, only its unit ends.
    let p = run(&read, &[], begun + DEFAULT_LIFE, rules);
    assert_eq!((p.counts.expired, p.counts.after), (1, 9));
    let read = written(hra(None, vec![]), &p);
    assert!(
        read.capacity_reservations
            .iter()
            .all(|r| r.expiration_time == t + DAY)
    );
}
