//! The one HorizontalRunnerAutoscaler resource type, used by every store (and the test API
//! server): only the fields we use are parsed, everything else in the object is ignored on
//! read and never sent back. Also the one merge patch a write sends.

use super::{Write, objects::SchemaViolation};
use crate::domain::{
    duration::parse_go_duration,
    hra::{CapacityReservation, Hra, HraKey, parse_batch_ids},
};
use chrono::TimeDelta;
use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::Resource;
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// API group of the HorizontalRunnerAutoscaler CRD.
pub const GROUP: &str = "actions.summerwind.dev";
/// API version of the HorizontalRunnerAutoscaler CRD we read and write.
pub const VERSION: &str = "v1alpha1";
/// Kind of the CRD.
pub const KIND: &str = "HorizontalRunnerAutoscaler";
/// Plural resource name of the CRD.
pub const PLURAL: &str = "horizontalrunnerautoscalers";
/// Annotation holding the ids of the most recent batches written to an HRA.
pub const APPLIED_BATCHES_ANNOTATION: &str = "batch-scaler.actions.summerwind.dev/applied-batches";

/// A HorizontalRunnerAutoscaler with only the fields we use.
#[derive(Clone, Debug, Deserialize)]
pub struct HorizontalRunnerAutoscaler {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The part of the spec we read.
    #[serde(default)]
    pub spec: HraSpec,
}

/// The spec fields the scaler reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HraSpec {
    /// `spec.minReplicas`.
    #[serde(default)]
    pub min_replicas: Option<i32>,
    /// `spec.maxReplicas`.
    #[serde(default)]
    pub max_replicas: Option<i32>,
    /// `spec.capacityReservations`.
    #[serde(default)]
    pub capacity_reservations: Option<Vec<CapacityReservation>>,
    /// `spec.scaleUpTriggers`.
    #[serde(default)]
    pub scale_up_triggers: Option<Vec<ScaleUpTrigger>>,
    /// `spec.scaleTargetRef`.
    #[serde(default)]
    pub scale_target_ref: Option<ScaleTargetRef>,
}

/// `spec.scaleTargetRef`: the RunnerDeployment or RunnerSet the HRA scales.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ScaleTargetRef {
    /// `RunnerDeployment` (also when empty) or `RunnerSet`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The target's name, in the HRA's namespace.
    #[serde(default)]
    pub name: Option<String>,
}

/// One entry of `spec.scaleUpTriggers`, as far as we read it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUpTrigger {
    /// `githubEvent` (routing needs `githubEvent.workflowJob` to be set).
    #[serde(default)]
    pub github_event: Option<Value>,
    /// `duration`, a Go duration (`30m`).
    #[serde(default)]
    pub duration: Option<String>,
}

impl HraSpec {
    /// The duration of the single scale-up trigger, when there is exactly one and its
    /// duration parses and is positive.
    pub fn trigger_duration(&self) -> Option<TimeDelta> {
        match self.scale_up_triggers.as_deref() {
            Some([trigger]) => trigger
                .duration
                .as_deref()
                .and_then(|d| parse_go_duration(d).ok())
                .filter(|d| *d > TimeDelta::zero()),
            _ => None,
        }
    }
}

impl Resource for HorizontalRunnerAutoscaler {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A stored object that is not a readable HorizontalRunnerAutoscaler.
#[derive(Debug, thiserror::Error)]
#[error("malformed HorizontalRunnerAutoscaler object: {0}")]
pub struct ParseError(#[from] serde_json::Error);

impl HorizontalRunnerAutoscaler {
    /// Parses the fields we use out of a whole object (JSON), ignoring all others.
    pub fn from_value(object: &Value) -> Result<Self, ParseError> {
        Ok(Self::deserialize(object)?)
    }
}

impl From<HorizontalRunnerAutoscaler> for Hra {
    fn from(o: HorizontalRunnerAutoscaler) -> Self {
        let ObjectMeta {
            name,
            namespace,
            resource_version,
            annotations,
            ..
        } = o.metadata;
        let applied_batches = annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_BATCHES_ANNOTATION))
            .map(|v| parse_batch_ids(v))
            .unwrap_or_default();
        Hra {
            key: HraKey::new(namespace.unwrap_or_default(), name.unwrap_or_default()),
            resource_version: resource_version.unwrap_or_default(),
            trigger_duration: o.spec.trigger_duration(),
            min_replicas: o.spec.min_replicas,
            max_replicas: o.spec.max_replicas,
            capacity_reservations: o.spec.capacity_reservations.unwrap_or_default(),
            applied_batches,
        }
    }
}

/// Reads an [`Hra`] out of a whole object.
pub fn parse_hra(object: &Value) -> Result<Hra, ParseError> {
    HorizontalRunnerAutoscaler::from_value(object).map(Hra::from)
}

/// The CRD's structural schema, as far as we read or write it: `capacityReservations[]`
/// items of `{name: string, effectiveTime: date-time, expirationTime: date-time, replicas:
/// integer}`, and the fields we parse of the right types.
pub fn hra_schema(object: &Value) -> Result<(), SchemaViolation> {
    if let Some(list) = object.pointer("/spec/capacityReservations") {
        let violation = |m: String| SchemaViolation(m);
        let items = list
            .as_array()
            .ok_or_else(|| violation("spec.capacityReservations: must be an array".into()))?;
        for (i, item) in items.iter().enumerate() {
            let item = item.as_object().ok_or_else(|| {
                violation(format!("spec.capacityReservations[{i}]: must be an object"))
            })?;
            for (field, value) in item {
                let ok = match field.as_str() {
                    "name" => value.is_string(),
                    "effectiveTime" | "expirationTime" => value
                        .as_str()
                        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
                    "replicas" => value.is_i64(),
                    _ => true,
                };
                if !ok {
                    return Err(violation(format!(
                        "spec.capacityReservations[{i}].{field}: invalid value {value}"
                    )));
                }
            }
        }
    }
    HorizontalRunnerAutoscaler::from_value(object)
        .map(drop)
        .map_err(|e| SchemaViolation(e.to_string()))
}

/// The merge patch of one write: the resourceVersion precondition, the whole reservation list
/// (null removes it) and the applied-batches annotation. Nothing else of the object.
pub fn merge_patch(write: &Write<'_>) -> Value {
    let reservations = if write.reservations.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(write.reservations).expect("reservations always serialize")
    };
    json!({
        "metadata": {
            "resourceVersion": write.resource_version,
            "annotations": {APPLIED_BATCHES_ANNOTATION: write.applied_batches},
        },
        "spec": {"capacityReservations": reservations},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hra::k8s_time;
    use chrono::Utc;

    #[test]
    fn parses_only_what_it_needs_and_accepts_fractional_seconds() {
        let obj = json!({
            "apiVersion": "actions.summerwind.dev/v1alpha1",
            "kind": "HorizontalRunnerAutoscaler",
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "42",
                "annotations": {APPLIED_BATCHES_ANNOTATION: "b1, b2"}},
            "spec": {"maxReplicas": 3, "scaleTargetRef": {"name": "x"},
                "capacityReservations": [{"effectiveTime": "2026-05-29T17:04:57.5Z",
                    "expirationTime": "2026-05-29T17:34:57Z", "replicas": 2, "name": "j"}]},
            "status": {"desiredReplicas": 4}
        });
        let hra = parse_hra(&obj).unwrap();
        assert_eq!(hra.key, HraKey::new("ns", "a"));
        assert_eq!(hra.resource_version, "42");
        assert_eq!(hra.max_replicas, Some(3));
        assert_eq!(hra.min_replicas, None);
        assert_eq!(hra.applied_batches, vec!["b1", "b2"]);
        let r = &hra.capacity_reservations[0];
        assert_eq!(r.name, "j");
        assert_eq!(r.life(), TimeDelta::milliseconds(29 * 60 * 1000 + 59_500));
    }

    #[test]
    fn the_single_positive_trigger_duration_is_read() {
        let with = |triggers: Value| {
            parse_hra(&json!({"metadata": {"name": "a"}, "spec": {"scaleUpTriggers": triggers}}))
                .unwrap()
                .trigger_duration
        };
        let trigger = |d: &str| json!({"githubEvent": {"workflowJob": {}}, "duration": d});
        assert_eq!(with(json!([trigger("30m")])), Some(TimeDelta::minutes(30)));
        assert_eq!(
            with(json!([trigger("1h30m")])),
            Some(TimeDelta::minutes(90))
        );
        assert_eq!(with(json!([trigger("0s")])), None, "not positive");
        assert_eq!(with(json!([trigger("soon")])), None, "not a duration");
        assert_eq!(with(json!([{"githubEvent": {}}])), None, "no duration");
        assert_eq!(
            with(json!([trigger("5m"), trigger("7m")])),
            None,
            "two triggers"
        );
        assert_eq!(with(json!([])), None);
    }

    #[test]
    fn null_times_read_as_go_zero_time() {
        let obj = json!({"metadata": {"name": "a"}, "spec": {"capacityReservations": [
            {"effectiveTime": null, "replicas": 1}]}});
        let hra = parse_hra(&obj).unwrap();
        assert_eq!(
            hra.capacity_reservations[0].expiration_time,
            k8s_time::zero()
        );
        assert_eq!(hra.reserved_replicas(Utc::now()), 0);
    }

    #[test]
    fn bad_time_is_an_error() {
        let obj = json!({"metadata": {"name": "a"}, "spec": {"capacityReservations": [
            {"effectiveTime": "yesterday", "expirationTime": "2026-05-29T17:34:57Z"}]}});
        let err = parse_hra(&obj).unwrap_err().to_string();
        assert!(err.contains("yesterday"), "{err}");
    }

    #[test]
    fn the_patch_carries_only_version_reservations_and_batch_ids() {
        let key = HraKey::new("ns", "a");
        let t = chrono::DateTime::parse_from_rfc3339("2026-05-29T17:04:57.9Z")
            .unwrap()
            .to_utc();
        let list = [CapacityReservation {
            name: "42".into(),
            effective_time: t,
            expiration_time: t + TimeDelta::minutes(30),
            replicas: 1,
        }];
        let w = Write {
            key: &key,
            resource_version: "7",
            reservations: &list,
            applied_batches: "b1,b2",
            dry_run: false,
        };
        assert_eq!(
            merge_patch(&w),
            json!({
                "metadata": {"resourceVersion": "7", "annotations": {APPLIED_BATCHES_ANNOTATION: "b1,b2"}},
                "spec": {"capacityReservations": [{"name": "42", "effectiveTime": "2026-05-29T17:04:57Z",
                    "expirationTime": "2026-05-29T17:34:57Z", "replicas": 1}]}
            })
        );
        let empty = Write {
            reservations: &[],
            ..w
        };
        assert_eq!(
            merge_patch(&empty)["spec"]["capacityReservations"],
            Value::Null
        );
    }
}
