//! Table tests of what a job's action means, its validation and its reservation life.

use super::tests::{hra, index_of, job, rd, route, target, target_of};
use super::*;

#[test]
fn completed_skipped_and_runnerless_success_and_other_actions_are_ignored() {
    let index = index_of(vec![rd(target(
        "ci",
        "a",
        &[("organization", "octo")],
        &[],
    ))]);
    let done = |conclusion: &str, has_runner: bool| WorkflowJob {
        action: "completed".into(),
        conclusion: conclusion.into(),
        has_runner,
        ..job("octo/app", &[])
    };
    let skipped = route(&index, &done("skipped", true));
    assert_eq!((skipped.amount, skipped.result), (0, RouteResult::Ignored));
    assert!(skipped.reason.contains("skipped"));
    let check_run = route(&index, &done("success", false));
    assert_eq!((check_run.amount, check_run.target.clone()), (0, None));
    assert!(check_run.reason.contains("without a runner"));
    let failed = route(&index, &done("failure", false));
    assert_eq!(
        (failed.amount, target_of(&failed).as_deref()),
        (-1, Some("ci/a")),
        "failure without runner still completes"
    );
    let succeeded = route(&index, &done("success", true));
    assert_eq!(succeeded.amount, -1);
    let waiting = route(
        &index,
        &WorkflowJob {
            action: "waiting".into(),
            ..job("octo/app", &[])
        },
    );
    assert_eq!((waiting.amount, waiting.result), (0, RouteResult::Ignored));
    assert!(!waiting.starts);
}

#[test]
fn a_start_goes_where_its_queued_went_scaling_nothing() {
    let index = RoutingIndex::build(
        [hra("ci", "a", "RunnerDeployment", "a")],
        [rd(target("ci", "a", &[("organization", "octo")], &[]))],
    );
    let progress = WorkflowJob {
        action: "in_progress".into(),
        ..job("octo/app", &[])
    };
    let started = route(&index, &progress);
    let queued = route(&index, &job("octo/app", &[]));
    assert_eq!(target_of(&started), target_of(&queued));
    assert_eq!((started.amount, started.starts), (0, true));
    assert_eq!(started.result, RouteResult::Routed);
    assert_eq!(started.duration, queued.duration);
    // Without its job id there is no reservation to start.
    let anonymous = WorkflowJob {
        job_id: String::new(),
        ..progress
    };
    let r = route(&index, &anonymous);
    assert_eq!(
        (r.target, r.starts, r.result),
        (None, false, RouteResult::Ignored)
    );
}

#[test]
fn duration_is_the_job_s_then_the_trigger_s_then_left_to_the_default() {
    let t = rd(target("ci", "a", &[("organization", "octo")], &[]));
    let mut h = hra("ci", "a", "RunnerDeployment", "a");
    let index = RoutingIndex::build([h.clone()], [t.clone()]);
    assert_eq!(
        route(&index, &job("octo/app", &[])).duration,
        Some(TimeDelta::minutes(30))
    );
    let own = WorkflowJob {
        duration: Some(TimeDelta::minutes(5)),
        ..job("octo/app", &[])
    };
    assert_eq!(route(&index, &own).duration, Some(TimeDelta::minutes(5)));
    h.trigger_duration = None;
    let index = RoutingIndex::build([h], [t]);
    assert_eq!(route(&index, &job("octo/app", &[])).duration, None);
}

#[test]
fn jobs_are_validated_naming_the_field() {
    let field = |j: WorkflowJob| j.validate(chrono::Utc::now()).unwrap_err().field;
    assert_eq!(
        field(WorkflowJob {
            action: String::new(),
            ..job("o/r", &[])
        }),
        "action"
    );
    for repo in ["", "octo", "/r", "o/", "o/r/x"] {
        assert_eq!(field(job(repo, &[])), "repository", "{repo:?}");
    }
    let many: Vec<&str> = vec!["x"; 65];
    assert_eq!(field(job("o/r", &many)), "labels");
    let long = "x".repeat(257);
    assert_eq!(field(job("o/r", &["ok", &long])), "labels[1]");
    assert_eq!(
        field(WorkflowJob {
            job_id: String::new(),
            ..job("o/r", &[])
        }),
        "job_id"
    );
    let progress = WorkflowJob {
        action: "in_progress".into(),
        job_id: String::new(),
        ..job("o/r", &[])
    };
    assert!(
        progress.validate(chrono::Utc::now()).is_ok(),
        "other actions need no job id"
    );
}

#[test]
fn job_times_from_2008_to_an_hour_ahead_are_accepted_others_named() {
    use chrono::{DateTime, Utc};
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0);
    let with = |created: Option<DateTime<Utc>>, started, completed| WorkflowJob {
        created_at: created,
        started_at: started,
        completed_at: completed,
        ..job("o/r", &[])
    };
    assert!(
        with(at(1_199_145_600), at(1_800_003_600), None)
            .validate(now)
            .is_ok()
    );
    let field = |j: WorkflowJob| j.validate(now).unwrap_err().field;
    assert_eq!(field(with(at(1_199_145_599), None, None)), "created_at");
    assert_eq!(field(with(None, at(1_800_003_601), None)), "started_at");
    assert_eq!(field(with(None, None, at(0))), "completed_at");
    let long = WorkflowJob {
        runner_name: "r".repeat(257),
        ..job("o/r", &[])
    };
    assert_eq!(field(long), "runner_name");
}
