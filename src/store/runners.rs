//! RunnerDeployments and RunnerSets, and the routing view of an HRA: what the routing index
//! is built from (only the fields routing reads; everything else is ignored).

use super::resource::HorizontalRunnerAutoscaler;
use crate::domain::{
    hra::HraKey,
    routing::{RoutableHra, RunnerTarget, TargetKind},
};
use serde::Deserialize;
use serde_json::Value;

/// Kind of a RunnerDeployment object.
pub const RUNNER_DEPLOYMENT: &str = "RunnerDeployment";
/// Kind of a RunnerSet object.
pub const RUNNER_SET: &str = "RunnerSet";
/// Plural resource name of RunnerDeployments.
pub const RUNNER_DEPLOYMENTS: &str = "runnerdeployments";
/// Plural resource name of RunnerSets.
pub const RUNNER_SETS: &str = "runnersets";

#[derive(Debug, Default, Deserialize)]
struct RunnerFields {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    enterprise: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    labels: Option<Vec<String>>,
}

/// The routing fields of a RunnerDeployment (`spec.template.spec`) or RunnerSet (`spec`).
pub fn runner_target(kind: TargetKind, object: &Value) -> Result<RunnerTarget, serde_json::Error> {
    let fields = match kind {
        TargetKind::RunnerDeployment => object.pointer("/spec/template/spec"),
        TargetKind::RunnerSet => object.get("spec"),
    };
    let fields = match fields {
        Some(f) => RunnerFields::deserialize(f)?,
        None => RunnerFields::default(),
    };
    let meta = |f: &str| {
        object["metadata"][f]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    Ok(RunnerTarget {
        namespace: meta("namespace"),
        name: meta("name"),
        repository: fields.repository.unwrap_or_default(),
        organization: fields.organization.unwrap_or_default(),
        enterprise: fields.enterprise.unwrap_or_default(),
        group: fields.group.unwrap_or_default(),
        labels: fields.labels.unwrap_or_default(),
    })
}

/// What routing needs of an HRA.
pub fn routable_hra(hra: &HorizontalRunnerAutoscaler) -> RoutableHra {
    let meta = &hra.metadata;
    let triggers = hra.spec.scale_up_triggers.as_deref().unwrap_or_default();
    let target = hra.spec.scale_target_ref.clone().unwrap_or_default();
    RoutableHra {
        key: HraKey::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        ),
        deleting: meta.deletion_timestamp.is_some(),
        triggers: triggers.len(),
        workflow_job_trigger: triggers.first().is_some_and(|t| {
            t.github_event
                .as_ref()
                .and_then(|e| e.get("workflowJob"))
                .is_some_and(|w| !w.is_null())
        }),
        trigger_duration: hra.spec.trigger_duration(),
        target_kind: target.kind.unwrap_or_default(),
        target_name: target.name.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_routing_fields_of_each_kind() {
        let rd = json!({"kind": RUNNER_DEPLOYMENT, "metadata": {"name": "linux", "namespace": "ci"},
            "spec": {"template": {"spec": {"organization": "octo", "labels": ["linux"], "image": "x"}}}});
        let t = runner_target(TargetKind::RunnerDeployment, &rd).unwrap();
        assert_eq!((t.namespace.as_str(), t.name.as_str()), ("ci", "linux"));
        assert_eq!(
            (t.organization.as_str(), t.labels.clone()),
            ("octo", vec!["linux".to_owned()])
        );
        let rs = json!({"kind": RUNNER_SET, "metadata": {"name": "gpu", "namespace": "ci"},
            "spec": {"enterprise": "acme", "group": "gpu"}});
        let t = runner_target(TargetKind::RunnerSet, &rs).unwrap();
        assert_eq!((t.enterprise.as_str(), t.group.as_str()), ("acme", "gpu"));
        let bad = json!({"metadata": {"name": "x"}, "spec": {"labels": "linux"}});
        assert!(runner_target(TargetKind::RunnerSet, &bad).is_err());
    }

    #[test]
    fn an_hra_s_routing_view() {
        let hra = HorizontalRunnerAutoscaler::from_value(&json!({
            "metadata": {"name": "a", "namespace": "ci", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"scaleTargetRef": {"kind": "RunnerSet", "name": "gpu"},
                "scaleUpTriggers": [{"githubEvent": {"workflowJob": {}}, "duration": "20m"}]}
        }))
        .unwrap();
        let r = routable_hra(&hra);
        assert!(r.deleting && r.workflow_job_trigger);
        assert_eq!(
            (r.triggers, r.target_kind.as_str(), r.target_name.as_str()),
            (1, "RunnerSet", "gpu")
        );
        assert_eq!(r.trigger_duration, Some(chrono::TimeDelta::minutes(20)));
        let plain = HorizontalRunnerAutoscaler::from_value(&json!({"metadata": {"name": "b"},
            "spec": {"scaleUpTriggers": [{"githubEvent": {"checkRun": {}}}]}}))
        .unwrap();
        let r = routable_hra(&plain);
        assert!(!r.workflow_job_trigger && !r.deleting);
        assert_eq!((r.target_kind.as_str(), r.target_name.as_str()), ("", ""));
    }
}
