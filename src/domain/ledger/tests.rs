//! Table tests of the ledger: exact sums and counts, percentiles within the sketch's error,
//! each job once, expiries placed by the job's own times, the window's honest `since`.

use super::*;

const DAY: TimeDelta = TimeDelta::hours(24);

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

fn id(n: u64) -> Arc<str> {
    Arc::from(n.to_string())
}

fn queued(created: i64) -> JobEvent {
    JobEvent::Queued {
        created: Some(t(created)),
    }
}

fn started(created: i64, started: i64) -> JobEvent {
    JobEvent::Started {
        created: Some(t(created)),
        started: t(started),
    }
}

fn completed(created: i64, started: i64, done: i64) -> JobEvent {
    JobEvent::Completed {
        created: Some(t(created)),
        started: Some(t(started)),
        completed: t(done),
        ran: true,
    }
}

/// Within the sketch's 1 % of the nearest-rank value.
fn close(got: Option<f64>, want: f64) -> bool {
    got.is_some_and(|g| (g - want).abs() <= want * RELATIVE_ERROR + 1e-9)
}

#[test]
fn a_known_set_of_jobs_adds_up_exactly_and_its_percentiles_within_the_error() {
    let mut l = Ledger::new(t(0), DAY);
    // Job i waits i seconds and runs 2i seconds (i = 1..=1000).
    for i in 1..=1000u64 {
        let s = i as i64;
        l.record(&id(i), queued(10), t(10));
        l.record(&id(i), started(10, 10 + s), t(10 + s));
        l.record(&id(i), completed(10, 10 + s, 10 + 3 * s), t(10 + 3 * s));
    }
    let (f, _) = l.figures(t(4000));
    let (wait, run) = (&f.sums.wait, &f.sums.run);
    assert_eq!(
        (wait.count, run.count, f.sums.completed),
        (1000, 1000, 1000)
    );
    assert_eq!(wait.sum, 500_500.0);
    assert_eq!(run.sum, 1_001_000.0);
    assert_eq!(f.busy_seconds(), 1_001_000.0);
    assert_eq!((wait.max, run.max), (1000.0, 2000.0));
    // Nearest rank: p50 is the 500th value, p90 the 900th, p99 the 990th.
    for (q, rank) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
        assert!(
            close(wait.quantile(q), rank),
            "wait p{q}: {:?}",
            wait.quantile(q)
        );
        assert!(
            close(run.quantile(q), 2.0 * rank),
            "run p{q}: {:?}",
            run.quantile(q)
        );
    }
    assert_eq!((f.jobs_waiting, f.jobs_running), (0, 0));
}

#[test]
fn each_job_counts_once_whatever_the_redeliveries() {
    let mut l = Ledger::new(t(0), DAY);
    let job = id(7);
    for _ in 0..3 {
        l.record(&job, queued(0), t(1));
    }
    let first = l.record(&job, started(0, 30), t(31));
    assert_eq!(first.wait, Some(30.0));
    assert_eq!(l.record(&job, started(0, 40), t(41)), Added::default());
    let (f, _) = l.figures(t(50));
    assert_eq!((f.jobs_waiting, f.jobs_running), (0, 1));
    let done = l.record(&job, completed(0, 30, 90), t(91));
    assert_eq!((done.wait, done.run), (None, Some(60.0)));
    // Repeated completed events with new delivery ids, and a late queued: nothing.
    assert_eq!(
        l.record(&job, completed(0, 30, 95), t(96)),
        Added::default()
    );
    assert_eq!(l.record(&job, queued(0), t(97)), Added::default());
    let (f, _) = l.figures(t(100));
    assert_eq!(
        (f.sums.wait.count, f.sums.run.count, f.sums.completed),
        (1, 1, 1)
    );
    assert_eq!((f.jobs_waiting, f.jobs_running), (0, 0));
}

#[test]
fn a_job_never_seen_queued_still_counts_its_wait_and_run_and_skew_counts_as_zero() {
    let mut l = Ledger::new(t(0), DAY);
    let added = l.record(&id(1), completed(0, 20, 80), t(81));
    assert_eq!((added.wait, added.run), (Some(20.0), Some(60.0)));
    // Clock skew: started before created, completed before started.
    let skewed = l.record(&id(2), completed(50, 40, 30), t(82));
    assert_eq!((skewed.wait, skewed.run), (Some(0.0), Some(0.0)));
    // Cancelled while queued: no runner, so no wait and no run, but it completed.
    let cancelled = JobEvent::Completed {
        created: Some(t(0)),
        started: Some(t(0)),
        completed: t(500),
        ran: false,
    };
    l.record(&id(3), queued(0), t(1));
    assert_eq!(l.record(&id(3), cancelled, t(501)), Added::default());
    let (f, _) = l.figures(t(600));
    assert_eq!(
        (f.sums.completed, f.sums.wait.count, f.jobs_waiting),
        (3, 2, 0)
    );
}

#[test]
fn expiries_are_placed_by_the_job_s_own_times_once() {
    let mut l = Ledger::new(t(0), DAY);
    let (waiting, running, ran_out, late, done_first) = (id(1), id(2), id(3), id(4), id(5));
    for j in [&waiting, &running, &ran_out, &late, &done_first] {
        l.record(j, queued(0), t(0));
    }
    // Every reservation expired at 150; the next write reports it at 400.
    l.record(&running, started(0, 100), t(100));
    l.record(&ran_out, started(0, 100), t(100));
    l.record(&ran_out, completed(0, 100, 300), t(300));
    l.record(&late, started(0, 200), t(200));
    l.record(&done_first, completed(0, 10, 120), t(120));
    let expired: Vec<_> = [&waiting, &running, &ran_out, &late, &done_first, &id(6)]
        .into_iter()
        .map(|j| (j.clone(), t(150)))
        .collect();
    let added = l.written(Profile::default(), &expired, t(400));
    // Before start: the waiting job and the one that started at 200. While running: the
    // running one and the one that ran from 100 to 300. The job done at 120: neither.
    assert_eq!(
        (added.expired_before_start, added.expired_while_running),
        (2, 2)
    );
    let again = l.written(Profile::default(), &expired, t(401));
    assert_eq!(
        (again.expired_before_start, again.expired_while_running),
        (0, 0)
    );
    let (f, _) = l.figures(t(402));
    assert_eq!(
        (f.sums.expired_before_start, f.sums.expired_while_running),
        (2, 2)
    );
}

#[test]
fn reserved_runner_seconds_integrate_the_capped_reservations_between_writes() {
    let mut l = Ledger::new(t(0), DAY);
    // Written at 0: 5 units until 600, capped at 3 by maxReplicas.
    l.written(Profile::new(t(0), Some(3), vec![(t(600), 5)]), &[], t(0));
    let (f, added) = l.figures(t(300));
    assert_eq!((added, f.sums.reserved_seconds), (900.0, 900.0));
    // Written at 400: 1 unit until 1000.
    let w = l.written(
        Profile::new(t(400), Some(3), vec![(t(1000), 1)]),
        &[],
        t(400),
    );
    assert_eq!(w.reserved_seconds, 300.0);
    let (f, _) = l.figures(t(2000));
    assert_eq!(f.sums.reserved_seconds, 1200.0 + 600.0);
}

#[test]
fn the_window_forgets_old_events_and_since_says_what_is_covered() {
    let window = TimeDelta::hours(24);
    let mut l = Ledger::new(t(0), window);
    l.record(&id(1), completed(0, 10, 20), t(20));
    let (f, _) = l.figures(t(30));
    assert_eq!(f.since, t(0), "since the ledger started");
    assert_eq!(f.sums.completed, 1);
    // Two days later the first job is out of the window; a new one is in.
    let later = 2 * 86_400;
    l.record(
        &id(2),
        completed(later, later + 5, later + 10),
        t(later + 10),
    );
    let (f, _) = l.figures(t(later + 20));
    assert_eq!(f.sums.completed, 1);
    assert_eq!(f.sums.run.sum, 5.0);
    assert!(f.since > t(later) - window - window / BUCKETS);
    assert!(f.since <= t(later + 10));
}

#[test]
fn advice_suggests_a_covering_duration_and_names_what_to_do() {
    let mut l = Ledger::new(t(0), DAY);
    let empty = l.figures(t(1)).0;
    let a = advise(&empty, TimeDelta::minutes(30));
    assert_eq!(a.suggested, None);
    assert!(a.text.contains("0 of 20 jobs"), "{}", a.text);
    // 20 jobs of 4 minutes from creation to completion: p99 × 1.25 = 5 min.
    for i in 1..=20 {
        l.record(&id(i), completed(0, 60, 240), t(240));
    }
    let f = l.figures(t(300)).0;
    let a = advise(&f, TimeDelta::hours(2));
    assert_eq!(a.suggested, Some(TimeDelta::minutes(5)));
    assert!(a.text.contains("2h is 24×"), "{}", a.text);
    assert!(
        advise(&f, TimeDelta::minutes(3))
            .text
            .contains("raise it to 5m")
    );
    assert!(advise(&f, TimeDelta::minutes(6)).text.contains("fits"));
    l.record(&id(99), queued(0), t(0));
    l.written(Profile::default(), &[(id(99), t(100))], t(400));
    let f = l.figures(t(401)).0;
    let a = advise(&f, TimeDelta::minutes(1));
    assert!(
        a.text.starts_with(
            "1 jobs lost their reservation before they started: raise the duration from 1m to 5m"
        ),
        "{}",
        a.text
    );
}

#[test]
fn bounded_jobs_forget_the_oldest_and_keep_counting_their_own_times() {
    let mut l = Ledger::new(t(0), DAY);
    for i in 0..(ACTIVE_CAPACITY as u64 + 10) {
        l.record(&id(i), queued(0), t(1));
    }
    let (f, _) = l.figures(t(2));
    assert_eq!(f.jobs_waiting, ACTIVE_CAPACITY as u64);
    // A forgotten job's completion still counts its wait and run from its payload.
    let added = l.record(&id(0), completed(0, 10, 20), t(21));
    assert_eq!((added.wait, added.run), (Some(10.0), Some(10.0)));
}

#[test]
fn the_overview_summary_agrees_with_the_full_figures() {
    let mut l = Ledger::new(t(0), TimeDelta::hours(24));
    for n in 0..300u64 {
        let c = n as i64 * 100;
        l.record(
            &id(n),
            completed(c, c + (n as i64 % 37), c + 60 + n as i64),
            t(c + 90),
        );
    }
    l.record(&id(999), queued(40_000), t(40_000));
    let summary = l.summary(t(40_001));
    let (figures, _) = l.figures(t(40_001));
    assert_eq!(summary.wait_p90, figures.sums.wait.quantile(0.9));
    assert_eq!(summary.jobs_waiting, 1);
    assert_eq!(
        summary.expired_before_start,
        figures.sums.expired_before_start
    );
}
