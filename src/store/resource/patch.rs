//! The merge patch a write sends: built from the write, serialized straight to the request.

use super::{
    APPLIED_BATCHES_ANNOTATION, CapacityReservation, JOB_REPOSITORIES_ANNOTATION,
    WARM_PROFILE_ANNOTATION, Write,
};
use serde::Serialize;
use serde_json::Value;

/// The merge patch of one write: the resourceVersion precondition, the whole reservation list
/// (null removes it) and our annotations (an empty job-repositories value, or a finished-jobs
/// bucket set to `None`, removes that one). Nothing else of the object. It borrows the write
/// and serializes straight to the request body (a 1 MiB list is never held as a JSON tree).
pub fn merge_patch<'a>(write: &Write<'a>) -> MergePatch<'a> {
    MergePatch {
        metadata: PatchMetadata {
            resource_version: write.resource_version,
            annotations: PatchAnnotations {
                applied_batches: write.applied_batches,
                finished_jobs: write.finished_jobs,
                job_repositories: write
                    .job_repositories
                    .map(|repos| (!repos.is_empty()).then_some(repos)),
                warm_profile: write.warm_profile,
            },
        },
        spec: PatchSpec {
            capacity_reservations: (!write.reservations.is_empty()).then_some(write.reservations),
        },
    }
}

/// The body of a write's merge patch (see [`merge_patch`]).
#[derive(Debug, Serialize)]
pub struct MergePatch<'a> {
    metadata: PatchMetadata<'a>,
    spec: PatchSpec<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PatchMetadata<'a> {
    resource_version: &'a str,
    annotations: PatchAnnotations<'a>,
}

/// Our annotations ([`APPLIED_BATCHES_ANNOTATION`], the finished-jobs buckets,
/// [`JOB_REPOSITORIES_ANNOTATION`]), each set, removed (null) or left out.
#[derive(Debug)]
struct PatchAnnotations<'a> {
    applied_batches: &'a str,
    finished_jobs: &'a [(String, Option<String>)],
    /// Absent: left as it is; `Some(None)`: removed.
    job_repositories: Option<Option<&'a str>>,
    /// Absent: left as it is.
    warm_profile: Option<&'a str>,
}

impl Serialize for PatchAnnotations<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(APPLIED_BATCHES_ANNOTATION, self.applied_batches)?;
        for (name, value) in self.finished_jobs {
            map.serialize_entry(name, value)?;
        }
        if let Some(repos) = self.job_repositories {
            map.serialize_entry(JOB_REPOSITORIES_ANNOTATION, &repos)?;
        }
        if let Some(profile) = self.warm_profile {
            map.serialize_entry(WARM_PROFILE_ANNOTATION, profile)?;
        }
        map.end()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PatchSpec<'a> {
    /// `None`: null, which removes the list.
    capacity_reservations: Option<&'a [CapacityReservation]>,
}

impl MergePatch<'_> {
    /// The patch as a JSON tree (for stores that apply it themselves).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
