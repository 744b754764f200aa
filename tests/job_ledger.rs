//! The job ledger over gRPC on the memory backend: workflow jobs with GitHub's times go in
//! through `ScaleJob`, `GetJobStats` answers exact counts and sums and percentiles within the
//! sketch's error, each job once under redelivery, expiries counted with a short duration,
//! the metrics agreeing with it, and bad input named.

mod common;

use batch_scaler::{api::pb, config::Settings, store::MemoryStore};
use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use serde_json::json;
use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};
use tonic::Code;

/// The service's clock: the wall clock plus a skew the test advances.
#[derive(Clone, Default)]
struct Skew(Arc<AtomicI64>);

impl Skew {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::seconds(self.0.load(Ordering::SeqCst))
    }
}

fn settings(skew: &Skew) -> Settings {
    let mut s = test_settings(Duration::from_millis(100));
    let skew = skew.clone();
    s.engine.clock = Arc::new(move || skew.now());
    s
}

fn store() -> MemoryStore {
    MemoryStore::with_objects([
        hra_object("ci", "app", Some(10)),
        json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
            "metadata": {"name": "app", "namespace": "ci"},
            "spec": {"template": {"spec": {"repository": "octo/app"}}}}),
    ])
    .unwrap()
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

/// A delivery of `action` for job `id` with GitHub's times (as the frontend sends them).
fn delivery(
    action: &str,
    id: u64,
    created: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    guid: &str,
) -> pb::WorkflowJob {
    pb::WorkflowJob {
        action: action.into(),
        created_at: ts(created),
        started_at: started.and_then(ts),
        completed_at: completed.and_then(ts),
        conclusion: if action == "completed" { "success" } else { "" }.into(),
        has_runner: action != "queued",
        runner_name: if action == "queued" { "" } else { "app-x1" }.into(),
        event_id: guid.into(),
        wait: true,
        ..queued_job("octo/app", &["self-hosted"], &id.to_string())
    }
}

async fn stats(server: &TestServer) -> pb::JobStats {
    server
        .client()
        .await
        .get_job_stats(pb::TargetRef {
            namespace: "ci".into(),
            name: "app".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The HRA's row as the overview lists it.
async fn overview_row(server: &TestServer) -> pb::Target {
    let mut client = server.client().await;
    let list = client.list_targets(pb::ListTargetsRequest::default()).await;
    let targets = list.unwrap().into_inner().targets;
    targets.into_iter().find(|t| t.name == "app").unwrap()
}

fn secs(d: &Option<prost_types::Duration>) -> f64 {
    d.as_ref()
        .map_or(-1.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

#[tokio::test]
async fn job_stats_add_up_each_job_once_and_agree_with_the_metrics() {
    let skew = Skew::default();
    let (server, _store) = TestServer::with_store(store(), settings(&skew)).await;
    let mut client = server.client().await;
    let t0 = skew.now() - TimeDelta::minutes(50);
    // 40 jobs: job i waits 10·i s and runs 100 + i s. Two more wait; one more runs.
    let job = |i: u64| {
        let created = t0 + TimeDelta::seconds(i as i64);
        let started = created + TimeDelta::seconds(10 * i as i64);
        let completed = started + TimeDelta::seconds(100 + i as i64);
        (created, started, completed)
    };
    for round in ["a", "b"] {
        // The second round redelivers every event under new delivery ids: nothing changes.
        for i in 1..=40 {
            let (c, s, d) = job(i);
            for (action, started, completed) in [
                ("queued", None, None),
                ("in_progress", Some(s), None),
                ("completed", Some(s), Some(d)),
            ] {
                let guid = format!("{round}-{action}-{i}");
                client
                    .scale_job(delivery(action, i, c, started, completed, &guid))
                    .await
                    .unwrap();
            }
        }
    }
    for i in [101, 102] {
        let guid = format!("q-{i}");
        client
            .scale_job(delivery("queued", i, t0, None, None, &guid))
            .await
            .unwrap();
    }
    let guid = "p-103";
    client
        .scale_job(delivery(
            "in_progress",
            103,
            t0,
            Some(t0 + TimeDelta::seconds(5)),
            None,
            guid,
        ))
        .await
        .unwrap();

    let s = stats(&server).await;
    assert_eq!(
        (s.jobs_completed, s.jobs_waiting, s.jobs_running),
        (40, 2, 1)
    );
    let (wait, run) = (s.wait.unwrap(), s.run.unwrap());
    // Job 103 started too: 41 waits.
    assert_eq!((wait.count, run.count), (41, 40));
    assert_eq!(secs(&wait.sum), 10.0 * 820.0 + 5.0);
    assert_eq!(secs(&run.sum), 4000.0 + 820.0);
    assert_eq!(s.busy_runner_seconds, 4820.0);
    assert_eq!(secs(&run.max), 140.0);
    // Nearest rank of the runs 101..=140: p50 the 20th (120), p90 the 36th (136).
    for (got, want) in [(secs(&run.p50), 120.0), (secs(&run.p90), 136.0)] {
        assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
    }
    assert_eq!(s.trigger_duration.unwrap().seconds, 1800);
    // created → completed p99 ≈ 540 s; × 1.25 = 675 s: 12 minutes.
    assert_eq!(s.suggested_duration.unwrap().seconds, 720);
    assert!(s.advice.contains("30m"), "{}", s.advice);
    assert!(s.since.unwrap().seconds <= Utc::now().timestamp());

    // The overview's columns: the same wait p90, and a utilization.
    let app = overview_row(&server).await;
    assert_eq!(secs(&app.job_wait_p90), secs(&wait.p90));
    assert!(
        app.utilization.is_some_and(|u| u > 0.0),
        "{:?}",
        app.utilization
    );

    // The metrics say the same.
    let text = scrape(server.http_addr).await;
    let labels = r#"{namespace="ci",hra="app"}"#;
    let m = |name: &str| sample(&text, &format!("batch_scaler_{name}{labels}"));
    assert_eq!(m("job_startup_duration_seconds_count"), 41.0);
    assert_eq!(m("job_startup_duration_seconds_sum"), 8205.0);
    assert_eq!(m("job_execution_duration_seconds_count"), 40.0);
    assert_eq!(m("busy_runner_seconds_total"), 4820.0);
    assert_eq!((m("jobs_waiting"), m("jobs_running")), (2.0, 1.0));
    assert!(m("reserved_runner_seconds_total") > 0.0);
    assert!(m("reserved_runner_seconds_total") <= s.reserved_runner_seconds + 1e-6);
}

#[tokio::test]
async fn reservations_that_end_before_their_job_starts_or_while_it_runs_are_counted() {
    let skew = Skew::default();
    let (server, _store) = TestServer::with_store(store(), settings(&skew)).await;
    let mut client = server.client().await;
    let t = skew.now();
    for i in [1, 2] {
        client
            .scale_job(delivery("queued", i, t, None, None, &format!("q{i}")))
            .await
            .unwrap();
    }
    // Job 1 starts at once; job 2 waits past the 30-minute duration.
    let started = Some(t + TimeDelta::seconds(30));
    client
        .scale_job(delivery("in_progress", 1, t, started, None, "p1"))
        .await
        .unwrap();
    skew.0.fetch_add(35 * 60, Ordering::SeqCst);
    let late = Some(skew.now() - TimeDelta::seconds(10));
    client
        .scale_job(delivery("in_progress", 2, t, late, None, "p2"))
        .await
        .unwrap();
    // The next write drops both expired reservations and tells the ledger.
    client
        .scale_job(delivery("queued", 3, skew.now(), None, None, "q3"))
        .await
        .unwrap();
    let s = stats(&server).await;
    assert_eq!((s.expired_before_start, s.expired_while_running), (1, 1));
    // The overview's row says so too (the dashboard lists the HRA as needing attention).
    let app = overview_row(&server).await;
    assert_eq!((app.jobs_expired_before_start, app.jobs_waiting), (1, 1));
    assert!(
        s.advice
            .contains("1 jobs lost their reservation before they started"),
        "{}",
        s.advice
    );
    let text = scrape(server.http_addr).await;
    let expired = |when: &str| {
        sample(
            &text,
            &format!(
                r#"batch_scaler_reservations_expired_total{{namespace="ci",hra="app",when="{when}"}}"#
            ),
        )
    };
    assert_eq!(
        (expired("before_start"), expired("while_running")),
        (1.0, 1.0)
    );
}

#[tokio::test]
async fn bad_times_and_missing_hras_are_refused_naming_them() {
    let skew = Skew::default();
    let (server, _store) = TestServer::with_store(store(), settings(&skew)).await;
    let mut client = server.client().await;
    let old = DateTime::from_timestamp(1_100_000_000, 0).unwrap();
    let e = client
        .scale_job(delivery("queued", 1, old, None, None, "old"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("created_at: must not be before 2008"),
        "{}",
        e.message()
    );
    let ahead = Utc::now() + TimeDelta::hours(2);
    let event = pb::ScaleEvent {
        job_times: Some(pb::JobTimes {
            completed_at: ts(ahead),
            ..Default::default()
        }),
        ..job_ev("ci", "app", -1, "9", "ahead")
    };
    let e = client.scale(event).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("job_times.completed_at: must not be more than 1h"),
        "{}",
        e.message()
    );
    let e = client
        .get_job_stats(pb::TargetRef {
            namespace: "ci".into(),
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // An HRA without events: zero figures since the service started, no suggestion yet.
    let s = stats(&server).await;
    assert_eq!((s.jobs_completed, s.wait.unwrap().count), (0, 0));
    assert!(s.suggested_duration.is_none());
    assert!(s.advice.contains("0 of 20 jobs"), "{}", s.advice);
}
