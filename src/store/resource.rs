//! The one HorizontalRunnerAutoscaler resource type, used by every store (and the test API
//! server): only the fields we use are parsed, everything else in the object is ignored on
//! read and never sent back. Also the one merge patch a write sends.

use super::{
    Write,
    objects::{SchemaViolation, json_len},
};
use crate::domain::{
    duration::parse_go_duration,
    hra::{AppliedBatches, CapacityReservation, Hra, HraKey},
    job_repos::JobRepos,
    tombstones::{FinishedWrite, parse_legacy},
};
use chrono::TimeDelta;
use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::Resource;
use serde::Deserialize;
use serde_json::Value;
use std::{borrow::Cow, sync::Arc};

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
/// Annotation that held the jobs remembered as finished before they were kept in buckets (read
/// once on upgrade, then removed); each bucket is this name, a dot and the bucket's start
/// second (see [`crate::domain::tombstones`]).
pub const FINISHED_JOBS_ANNOTATION: &str = "batch-scaler.actions.summerwind.dev/finished-jobs";

/// The annotation name of the finished-jobs bucket starting at `start`.
pub fn finished_jobs_annotation(start: i64) -> String {
    format!("{FINISHED_JOBS_ANNOTATION}.{start}")
}

/// The annotation changes of a finished-jobs write, by name (the older single annotation
/// removed when the write moves its jobs into buckets).
pub fn finished_jobs_changes(write: FinishedWrite) -> Vec<(String, Option<String>)> {
    let legacy = write
        .remove_legacy
        .then(|| (FINISHED_JOBS_ANNOTATION.to_owned(), None));
    write
        .changes
        .into_iter()
        .map(|(start, value)| (finished_jobs_annotation(start), value))
        .chain(legacy)
        .collect()
}
/// Annotation holding the repository of each job-named reservation (see `domain::job_repos`).
pub const JOB_REPOSITORIES_ANNOTATION: &str =
    "batch-scaler.actions.summerwind.dev/job-repositories";

/// Annotation holding an HRA's arrival profile (`--warm-runners forecast`, see
/// `domain::forecast`), written by its owner at most hourly, with a batch.
pub const WARM_PROFILE_ANNOTATION: &str = "batch-scaler.actions.summerwind.dev/warm-profile";

/// A HorizontalRunnerAutoscaler with only the fields we use, and the size of the whole object.
#[derive(Clone, Debug)]
pub struct HorizontalRunnerAutoscaler {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The part of the spec we read.
    pub spec: HraSpec,
    /// Size of the whole object as compact JSON (what `--max-hra-bytes` is measured on).
    pub object_bytes: usize,
}

/// The fields we parse, before the object's size is attached.
#[derive(Deserialize)]
struct Fields {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: HraSpec,
}

impl<'de> Deserialize<'de> for HorizontalRunnerAutoscaler {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let object = Value::deserialize(d)?;
        let Fields { metadata, spec } =
            Fields::deserialize(&object).map_err(serde::de::Error::custom)?;
        Ok(Self {
            metadata,
            spec,
            object_bytes: json_len(&object),
        })
    }
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
        Self::from_value_sized(object, json_len(object))
    }

    /// As [`HorizontalRunnerAutoscaler::from_value`], for an object whose size as compact
    /// JSON is known.
    pub fn from_value_sized(object: &Value, object_bytes: usize) -> Result<Self, ParseError> {
        // Straight from the tree: no copy of it is made.
        let Fields { metadata, spec } = Fields::deserialize(object)?;
        Ok(Self {
            metadata,
            spec,
            object_bytes,
        })
    }
}

impl From<HorizontalRunnerAutoscaler> for Hra {
    fn from(mut o: HorizontalRunnerAutoscaler) -> Self {
        let ObjectMeta {
            name,
            namespace,
            resource_version,
            annotations,
            ..
        } = o.metadata;
        let key = HraKey::new(namespace.unwrap_or_default(), name.unwrap_or_default());
        let read = |name| {
            annotations
                .as_ref()
                .and_then(|a| a.get(name))
                .map(|v| (name, v))
        };
        let applied_batches = readable(
            &key,
            read(APPLIED_BATCHES_ANNOTATION),
            AppliedBatches::parse,
        )
        .unwrap_or_default();
        let mut finished_jobs = annotations
            .as_ref()
            .map(|a| {
                super::remembered::finished_jobs(&key, a, &format!("{FINISHED_JOBS_ANNOTATION}."))
            })
            .unwrap_or_default();
        finished_jobs.legacy =
            readable(&key, read(FINISHED_JOBS_ANNOTATION), parse_legacy).map(Into::into);
        let job_repositories =
            readable(&key, read(JOB_REPOSITORIES_ANNOTATION), JobRepos::parse).unwrap_or_default();
        let capacity_reservations = o.spec.capacity_reservations.take().unwrap_or_default();
        let groups = super::remembered::groups(&key, &capacity_reservations);
        Hra {
            key,
            resource_version: resource_version.unwrap_or_default(),
            trigger_duration: o.spec.trigger_duration(),
            min_replicas: o.spec.min_replicas,
            max_replicas: o.spec.max_replicas,
            capacity_reservations,
            applied_batches,
            groups,
            finished_jobs,
            job_repositories,
            object_bytes: o.object_bytes,
            warm_profile: read(WARM_PROFILE_ANNOTATION).map(|(_, v)| Arc::from(v.as_str())),
        }
    }
}

/// One of our annotations, read; `None` when it is absent, or unreadable: someone else edited
/// it, and starting over (with a warning) beats failing every batch of the HRA.
fn readable<T, E: std::fmt::Display>(
    key: &HraKey,
    annotation: Option<(&str, &String)>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    let (name, value) = annotation?;
    parse(value)
        .inspect_err(|e| {
            tracing::warn!(hra = %key, annotation = name, error = %e, "ignoring an unreadable annotation")
        })
        .ok()
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
    Checked::deserialize(object)
        .map(drop)
        .map_err(|e| SchemaViolation(format!("malformed HorizontalRunnerAutoscaler object: {e}")))
}

/// What the schema checks beyond the reservations, read in place (no string is copied).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Checked<'a> {
    #[serde(borrow)]
    metadata: CheckedMeta<'a>,
    #[serde(default)]
    spec: HraSpec,
}

/// Labels and annotations are maps of strings.
#[derive(Deserialize)]
#[allow(dead_code)]
struct CheckedMeta<'a> {
    #[serde(borrow, default)]
    labels: Option<std::collections::BTreeMap<&'a str, &'a str>>,
    #[serde(borrow, default)]
    annotations: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

mod patch;
pub use patch::{MergePatch, merge_patch};

#[cfg(test)]
mod tests;
