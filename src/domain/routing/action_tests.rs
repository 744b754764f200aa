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
    let progress = route(
        &index,
        &WorkflowJob {
            action: "in_progress".into(),
            ..job("octo/app", &[])
        },
    );
    assert_eq!(
        (progress.amount, progress.result),
        (0, RouteResult::Ignored)
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
    let field = |j: WorkflowJob| j.validate().unwrap_err().field;
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
    assert!(progress.validate().is_ok(), "other actions need no job id");
}
