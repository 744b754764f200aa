//! Table tests of the routing rules (routing.md), one case per rule.

use super::*;
use crate::domain::namespaces::Allowlist;

pub(super) fn hra(ns: &str, name: &str, kind: &str, target: &str) -> RoutableHra {
    RoutableHra {
        key: HraKey::new(ns, name),
        deleting: false,
        triggers: 1,
        workflow_job_trigger: true,
        trigger_duration: Some(TimeDelta::minutes(30)),
        target_kind: kind.into(),
        target_name: target.into(),
    }
}

pub(super) fn target(
    ns: &str,
    name: &str,
    fields: &[(&str, &str)],
    labels: &[&str],
) -> RunnerTarget {
    let mut t = RunnerTarget {
        namespace: ns.into(),
        name: name.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ..RunnerTarget::default()
    };
    for (field, value) in fields {
        let slot = match *field {
            "repository" => &mut t.repository,
            "organization" => &mut t.organization,
            "enterprise" => &mut t.enterprise,
            "group" => &mut t.group,
            other => panic!("unknown field {other}"),
        };
        *slot = value.to_string();
    }
    t
}

pub(super) fn rd(t: RunnerTarget) -> (TargetKind, RunnerTarget) {
    (TargetKind::RunnerDeployment, t)
}

pub(super) fn rs(t: RunnerTarget) -> (TargetKind, RunnerTarget) {
    (TargetKind::RunnerSet, t)
}

pub(super) fn job(repository: &str, labels: &[&str]) -> WorkflowJob {
    WorkflowJob {
        action: "queued".into(),
        repository: repository.into(),
        owner_type: "Organization".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        job_id: "1".into(),
        ..WorkflowJob::default()
    }
}

pub(super) fn route(index: &RoutingIndex, job: &WorkflowJob) -> Route {
    index.route(job, &Allowlist::default())
}

pub(super) fn target_of(r: &Route) -> Option<String> {
    r.target.as_ref().map(ToString::to_string)
}

/// One HRA per target, named after it, in namespace `ci`.
pub(super) fn index_of(targets: Vec<(TargetKind, RunnerTarget)>) -> RoutingIndex {
    let hras: Vec<RoutableHra> = targets
        .iter()
        .map(|(kind, t)| {
            let kind = if *kind == TargetKind::RunnerSet {
                "RunnerSet"
            } else {
                "RunnerDeployment"
            };
            hra(&t.namespace, &t.name, kind, &t.name)
        })
        .collect();
    RoutingIndex::build(hras, targets)
}

#[test]
fn repository_runners_come_before_organization_runners() {
    let index = index_of(vec![
        rd(target("ci", "org", &[("organization", "octo")], &[])),
        rd(target("ci", "repo", &[("repository", "octo/app")], &[])),
    ]);
    let r = route(&index, &job("octo/app", &[]));
    assert_eq!(target_of(&r).as_deref(), Some("ci/repo"));
    assert!(
        r.reason.contains("repository runners: key octo/app"),
        "{}",
        r.reason
    );
    assert_eq!((r.amount, r.result), (1, RouteResult::Routed));
    let other = route(&index, &job("octo/web", &[]));
    assert_eq!(target_of(&other).as_deref(), Some("ci/org"));
    assert!(
        other.reason.contains("default organization runner group"),
        "{}",
        other.reason
    );
}

#[test]
fn a_user_repository_has_only_repository_runners() {
    let index = index_of(vec![rd(target(
        "ci",
        "org",
        &[("organization", "alice")],
        &[],
    ))]);
    let mut j = job("alice/dotfiles", &[]);
    j.owner_type = "User".into();
    let r = route(&index, &j);
    assert_eq!((r.target.clone(), r.result), (None, RouteResult::Unmatched));
    assert!(r.reason.contains("user's repository"), "{}", r.reason);
    j.owner_type = "Organization".into();
    assert_eq!(target_of(&route(&index, &j)).as_deref(), Some("ci/org"));
}

#[test]
fn default_groups_before_custom_and_organization_before_enterprise() {
    let custom_org = target(
        "ci",
        "custom-org",
        &[("organization", "octo"), ("group", "gpu")],
        &[],
    );
    let default_ent = target("ci", "default-ent", &[("enterprise", "acme")], &[]);
    let custom_ent = target(
        "ci",
        "custom-ent",
        &[("enterprise", "acme"), ("group", "arm")],
        &[],
    );
    let default_org = target("ci", "default-org", &[("organization", "octo")], &[]);
    let mut j = job("octo/app", &[]);
    j.enterprise = "acme".into();
    let all = index_of(vec![
        rd(custom_org.clone()),
        rd(default_ent.clone()),
        rd(custom_ent.clone()),
        rd(default_org),
    ]);
    assert_eq!(
        target_of(&route(&all, &j)).as_deref(),
        Some("ci/default-org")
    );
    let no_default_org = index_of(vec![
        rd(custom_org.clone()),
        rd(default_ent),
        rd(custom_ent.clone()),
    ]);
    let r = route(&no_default_org, &j);
    assert_eq!(
        target_of(&r).as_deref(),
        Some("ci/default-ent"),
        "{}",
        r.reason
    );
    assert!(r.reason.contains("key enterprises/acme"), "{}", r.reason);
    let customs = index_of(vec![rd(custom_org), rd(custom_ent)]);
    let r = route(&customs, &j);
    assert_eq!(target_of(&r).as_deref(), Some("ci/custom-org"));
    assert!(r.reason.contains("key octo/group/gpu"), "{}", r.reason);
}

#[test]
fn custom_groups_of_one_scope_are_visited_by_name() {
    let index = index_of(vec![
        rd(target(
            "ci",
            "zeta",
            &[("organization", "octo"), ("group", "zeta")],
            &[],
        )),
        rd(target(
            "ci",
            "alpha",
            &[("organization", "octo"), ("group", "alpha")],
            &[],
        )),
    ]);
    assert_eq!(
        target_of(&route(&index, &job("octo/app", &[]))).as_deref(),
        Some("ci/alpha")
    );
}

#[test]
fn organization_and_enterprise_scopes_need_their_own_match() {
    let index = index_of(vec![rd(target(
        "ci",
        "ent",
        &[("enterprise", "acme")],
        &[],
    ))]);
    let mut j = job("octo/app", &[]);
    assert_eq!(route(&index, &j).target, None, "no enterprise on the job");
    j.enterprise = "other".into();
    assert_eq!(route(&index, &j).target, None, "another enterprise");
    j.enterprise = "acme".into();
    assert_eq!(target_of(&route(&index, &j)).as_deref(), Some("ci/ent"));
    let org = index_of(vec![rd(target(
        "ci",
        "org",
        &[("organization", "other")],
        &[],
    ))]);
    assert_eq!(
        route(&org, &job("octo/app", &[])).target,
        None,
        "another organization"
    );
}

#[test]
fn a_runner_set_with_a_group_also_serves_its_organization_key() {
    // `other` forms the default organization group (key octo) but wants other labels.
    let other = rd(target(
        "ci",
        "other",
        &[("organization", "octo")],
        &["other"],
    ));
    let fields = [("organization", "octo"), ("group", "gpu")];
    let set = RoutingIndex::build(
        [
            hra("ci", "other", "RunnerDeployment", "other"),
            hra("ci", "set", "RunnerSet", "set"),
        ],
        [other.clone(), rs(target("ci", "set", &fields, &["gpu"]))],
    );
    let deployment = RoutingIndex::build(
        [
            hra("ci", "other", "RunnerDeployment", "other"),
            hra("ci", "dep", "RunnerDeployment", "dep"),
        ],
        [other, rd(target("ci", "dep", &fields, &["gpu"]))],
    );
    let j = job("octo/app", &["gpu"]);
    // A RunnerSet answers to OWNER as well, so the default group already finds it.
    let r = route(&set, &j);
    assert_eq!(target_of(&r).as_deref(), Some("ci/set"));
    assert!(
        r.reason
            .contains("default organization runner group: key octo matched"),
        "{}",
        r.reason
    );
    // A RunnerDeployment with a group serves only its group's key.
    let r = route(&deployment, &j);
    assert_eq!(target_of(&r).as_deref(), Some("ci/dep"));
    assert!(r.reason.contains("key octo/group/gpu"), "{}", r.reason);
    // With an enterprise, the group is the enterprise's.
    let ent = [
        ("organization", "octo"),
        ("enterprise", "acme"),
        ("group", "gpu"),
    ];
    let index = index_of(vec![rd(target("ci", "e", &ent, &[]))]);
    let r = route(
        &index,
        &WorkflowJob {
            enterprise: "acme".into(),
            ..job("octo/app", &[])
        },
    );
    assert!(
        r.reason.contains("key enterprises/acme/group/gpu"),
        "{}",
        r.reason
    );
}

#[test]
fn labels_match_case_insensitively_ignore_self_hosted_and_none_match_any() {
    let index = index_of(vec![rd(target(
        "ci",
        "linux",
        &[("organization", "octo")],
        &["Linux", "X64"],
    ))]);
    for labels in [
        &["self-hosted", "linux", "x64"][..],
        &["LINUX"],
        &[],
        &["self-hosted"],
    ] {
        assert_eq!(
            target_of(&route(&index, &job("octo/app", labels))).as_deref(),
            Some("ci/linux"),
            "{labels:?}"
        );
    }
    let r = route(&index, &job("octo/app", &["self-hosted", "gpu"]));
    assert_eq!(r.target, None);
    assert!(
        r.reason.contains("label \"gpu\" is not among"),
        "{}",
        r.reason
    );
    // Only the exact string `self-hosted` is skipped.
    assert_eq!(
        route(&index, &job("octo/app", &["Self-Hosted"])).target,
        None
    );
}

#[test]
fn an_hra_needs_exactly_one_workflow_job_trigger() {
    let t = rd(target("ci", "a", &[("organization", "octo")], &[]));
    let with = |change: fn(&mut RoutableHra)| {
        let mut h = hra("ci", "a", "RunnerDeployment", "a");
        change(&mut h);
        route(
            &RoutingIndex::build([h], [t.clone()]),
            &job("octo/app", &[]),
        )
    };
    let none = with(|h| h.triggers = 0);
    assert!(none.reason.contains("0 scaleUpTriggers"), "{}", none.reason);
    let two = with(|h| h.triggers = 2);
    assert!(two.reason.contains("2 scaleUpTriggers"), "{}", two.reason);
    let other = with(|h| h.workflow_job_trigger = false);
    assert!(
        other.reason.contains("no githubEvent.workflowJob"),
        "{}",
        other.reason
    );
    let deleting = with(|h| h.deleting = true);
    assert!(
        deleting.reason.contains("being deleted"),
        "{}",
        deleting.reason
    );
    for r in [none, two, other, deleting] {
        assert_eq!((r.target, r.result), (None, RouteResult::Unmatched));
    }
}

#[test]
fn a_missing_target_or_an_unknown_kind_is_skipped_with_a_reason() {
    let t = rd(target("ci", "there", &[("organization", "octo")], &[]));
    let missing = hra("ci", "a", "RunnerDeployment", "gone");
    let unknown = hra("ci", "b", "Deployment", "there");
    let empty_kind = hra("ci", "c", "", "there");
    let index = RoutingIndex::build([missing, unknown, empty_kind], [t]);
    // Only `c` (empty kind = RunnerDeployment) has keys; the others have none.
    let r = route(&index, &job("octo/app", &[]));
    assert_eq!(target_of(&r).as_deref(), Some("ci/c"));
    assert!(r.also_matched.is_empty());
    assert_eq!(index.len(), 3);
}

#[test]
fn several_qualifying_hras_are_ambiguous_first_by_namespace_then_name() {
    let t1 = target("team-b", "linux", &[("organization", "octo")], &[]);
    let t2 = target("team-a", "linux", &[("organization", "octo")], &[]);
    let t3 = target("team-a", "another", &[("organization", "octo")], &[]);
    let index = index_of(vec![rd(t1), rd(t2), rd(t3)]);
    let r = route(&index, &job("octo/app", &[]));
    assert_eq!(r.result, RouteResult::Ambiguous);
    assert_eq!(target_of(&r).as_deref(), Some("team-a/another"));
    let also: Vec<String> = r.also_matched.iter().map(ToString::to_string).collect();
    assert_eq!(also, ["team-a/linux", "team-b/linux"]);
    // Only allowed namespaces are candidates.
    let r = index.route(
        &job("octo/app", &[]),
        &Allowlist::new(["team-b".to_owned()]),
    );
    assert_eq!(
        (target_of(&r).as_deref(), r.result),
        (Some("team-b/linux"), RouteResult::Routed)
    );
}
