//! HRAs as the planner sees them: key, bounds, capacity reservations (chrono for all times)
//! and the ids of the batches already applied to them.

use super::{
    codec::{BATCH_IDS_PREFIX, BatchIds, CodecError, batch_hash},
    groups::Groups,
    job_repos::JobRepos,
    tombstones::{FinishedJobs, FinishedWrite},
};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::{fmt, sync::Arc};

/// How many batch ids an HRA remembers as applied (newest last).
pub const APPLIED_BATCHES_KEPT: usize = 1024;

/// Identifies one HRA by namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HraKey {
    /// Namespace of the HRA.
    pub namespace: String,
    /// Name of the HRA.
    pub name: String,
}

impl HraKey {
    /// Builds a key from anything string-like.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `(namespace, name)`, borrowed.
    pub fn parts(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

impl fmt::Display for HraKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One entry of `spec.capacityReservations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReservation {
    /// Optional name; the reference never sets it, we use it for job ids.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// When the reservation started.
    #[serde(with = "k8s_time", default = "k8s_time::zero")]
    pub effective_time: DateTime<Utc>,
    /// When the reservation stops counting.
    #[serde(with = "k8s_time", default = "k8s_time::zero")]
    pub expiration_time: DateTime<Utc>,
    /// Replicas this reservation adds.
    #[serde(default)]
    pub replicas: i32,
}

impl CapacityReservation {
    /// `expiration_time - effective_time`, the life the reservation was given.
    pub fn life(&self) -> TimeDelta {
        self.expiration_time
            .signed_duration_since(self.effective_time)
    }
}

/// What the scaler needs of an HRA, as read from a backend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hra {
    /// Namespace and name.
    pub key: HraKey,
    /// `metadata.resourceVersion` the object was read at.
    pub resource_version: String,
    /// `spec.minReplicas`.
    pub min_replicas: Option<i32>,
    /// `spec.maxReplicas`; `None` means no maximum.
    pub max_replicas: Option<i32>,
    /// `spec.capacityReservations`, in list order.
    pub capacity_reservations: Vec<CapacityReservation>,
    /// Batch ids recorded in the applied-batches annotation, oldest first.
    pub applied_batches: AppliedBatches,
    /// The life of a reservation added by an event that gives none: the duration of the HRA's
    /// single scale-up trigger, when it has exactly one and that duration is positive.
    pub trigger_duration: Option<TimeDelta>,
    /// Jobs remembered as finished in the HRA's finished-jobs annotations.
    pub finished_jobs: FinishedJobs,
    /// The repository of job-named reservations, from the job-repositories annotation.
    pub job_repositories: JobRepos,
    /// The decoded members of the grouped reservations, by name.
    pub groups: Groups,
    /// Size of the whole object as stored (compact JSON), 0 where the store cannot tell.
    pub object_bytes: usize,
    /// The warm-profile annotation (`--warm-runners forecast`: when its jobs arrive), as read.
    pub warm_profile: Option<Arc<str>>,
}

impl Hra {
    /// The life of reservations added by an event that gives none: the trigger's duration,
    /// else `default`.
    pub fn reservation_life(&self, default: TimeDelta) -> TimeDelta {
        self.trigger_duration.unwrap_or(default)
    }

    /// Units of capacity the list holds, expired or not (a grouped reservation holds many).
    pub fn units(&self) -> u64 {
        self.capacity_reservations
            .iter()
            .map(|r| u64::try_from(r.replicas).unwrap_or(0))
            .sum()
    }

    /// Sum of `replicas` over reservations that have not expired at `now`.
    pub fn reserved_replicas(&self, now: DateTime<Utc>) -> u32 {
        let sum: i64 = self
            .capacity_reservations
            .iter()
            .filter(|r| r.expiration_time > now)
            .map(|r| i64::from(r.replicas))
            .sum();
        u32::try_from(sum.max(0)).unwrap_or(u32::MAX)
    }

    /// A floor of the object's size after a write of `reservations` entries, known before any
    /// of them is written out: every entry costs at least [`MIN_RESERVATION_BYTES`].
    pub fn size_floor(&self, reservations: u64) -> u64 {
        let current = serde_json::to_vec(&self.capacity_reservations).map_or(0, |v| v.len());
        (self.object_bytes.saturating_sub(current) as u64)
            .saturating_add(reservations.saturating_mul(MIN_RESERVATION_BYTES as u64))
    }

    /// The object's size after a write replacing the reservations and our annotation values
    /// (applied batches, the finished-jobs buckets it changes, job repositories), estimated
    /// from [`Hra::object_bytes`] and the serialized size of what changes.
    pub fn projected_bytes(
        &self,
        reservations: &[CapacityReservation],
        applied_batches: &str,
        finished_jobs: &FinishedWrite,
        job_repositories: &str,
    ) -> usize {
        let list_bytes =
            |list: &[CapacityReservation]| serde_json::to_vec(list).map_or(0, |v| v.len());
        // Each annotation, when present, also costs its key and JSON punctuation.
        let annotation = |value_len: usize| if value_len == 0 { 0 } else { value_len + 64 };
        let finished = &self.finished_jobs;
        let mut old = list_bytes(&self.capacity_reservations)
            + annotation(self.applied_batches.encoded_len)
            + annotation(self.job_repositories.format().len());
        let mut new = list_bytes(reservations)
            + annotation(applied_batches.len())
            + annotation(job_repositories.len());
        if finished_jobs.remove_legacy {
            old += finished
                .legacy
                .as_ref()
                .map_or(0, |b| annotation(b.encoded_len));
        }
        for (start, value) in &finished_jobs.changes {
            old += finished
                .buckets
                .get(start)
                .map_or(0, |b| annotation(b.encoded_len));
            new += value.as_ref().map_or(0, |v| annotation(v.len()));
        }
        (self.object_bytes + new).saturating_sub(old)
    }
}

/// Fewest bytes of JSON one reservation adds to an HRA: a name-less entry
/// (`{"effectiveTime":"…Z","expirationTime":"…Z","replicas":1}`).
pub const MIN_RESERVATION_BYTES: usize = 93;

/// The ids of the batches recorded in the applied-batches annotation, as 64-bit hashes
/// ([`batch_hash`]) with the second each was written, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedBatches {
    /// The entries.
    pub ids: BatchIds,
    /// Bytes of the annotation value as read.
    pub encoded_len: usize,
}

/// Written at the start of time: an entry of the oldest format, without its time.
const NEVER: i64 = -(1 << 40);

impl AppliedBatches {
    /// Reads the annotation value: the compact form, or the older `ID@UNIX_SECONDS,…` (or
    /// bare `ID`) list, which the next write rewrites compactly. A value that is neither is
    /// an error naming what is wrong.
    pub fn parse(value: &str) -> Result<Self, CodecError> {
        let ids = if value.starts_with(BATCH_IDS_PREFIX) {
            BatchIds::decode(value)?
        } else {
            BatchIds(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|entry| match entry.split_once('@') {
                        Some((id, at)) => (batch_hash(id), at.parse().unwrap_or(NEVER)),
                        None => (batch_hash(entry), NEVER),
                    })
                    .collect(),
            )
        };
        Ok(Self {
            ids,
            encoded_len: value.len(),
        })
    }

    /// True if a write carrying `batch_id` is recorded.
    pub fn contains(&self, batch_id: &str) -> bool {
        let hash = batch_hash(batch_id);
        self.ids.0.iter().any(|(h, _)| *h == hash)
    }

    /// How many writes are recorded.
    pub fn len(&self) -> usize {
        self.ids.0.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.ids.0.is_empty()
    }
}

/// The applied-batches annotation value after recording `batch_id` written at `now`: every
/// entry younger than `keep_for` (however many other writes came since, so a batch retrying
/// within its retry deadline always finds its own write), at most [`APPLIED_BATCHES_KEPT`]
/// of them, oldest first.
///
/// ```
/// # use batch_scaler::domain::hra::{record_batch, AppliedBatches};
/// # use chrono::{DateTime, TimeDelta};
/// let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
/// let kept = AppliedBatches::parse("a@999990,b@100").unwrap();
/// let value = record_batch(&kept, "c", now, TimeDelta::minutes(15));
/// let written = AppliedBatches::parse(&value).unwrap();
/// assert!(written.contains("a") && written.contains("c") && !written.contains("b"));
/// ```
pub fn record_batch(
    existing: &AppliedBatches,
    batch_id: &str,
    now: DateTime<Utc>,
    keep_for: TimeDelta,
) -> String {
    let oldest = now
        .checked_sub_signed(keep_for)
        .map_or(i64::MIN, |t| t.timestamp());
    let young: Vec<(u64, i64)> = existing
        .ids
        .0
        .iter()
        .copied()
        .filter(|(_, at)| *at >= oldest)
        .collect();
    let start = young.len().saturating_sub(APPLIED_BATCHES_KEPT - 1);
    let mut entries = young[start..].to_vec();
    entries.push((batch_hash(batch_id), now.timestamp()));
    BatchIds(entries).encode()
}

/// Formats a time the way Kubernetes writes `metav1.Time`: RFC 3339, UTC, whole seconds.
pub fn format_k8s_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serde helpers for `metav1.Time`-shaped timestamps.
pub mod k8s_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Go's zero time, what a missing or null timestamp means.
    pub fn zero() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z")
            .expect("valid constant")
            .with_timezone(&Utc)
    }

    /// Writes whole seconds in UTC (`2026-05-29T17:04:57Z`).
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_k8s_time(t))
    }

    /// Reads any RFC 3339 time, fractional seconds and offsets included; null is zero time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(zero()),
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| D::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reservation_times_serialize_to_whole_seconds_in_utc() {
        let t = DateTime::parse_from_rfc3339("2026-05-29T19:04:57.987654+02:00")
            .unwrap()
            .with_timezone(&Utc);
        let r = CapacityReservation {
            name: String::new(),
            effective_time: t,
            expiration_time: t + TimeDelta::minutes(30),
            replicas: 1,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"effectiveTime": "2026-05-29T17:04:57Z", "expirationTime": "2026-05-29T17:34:57Z", "replicas": 1})
        );
    }

    #[test]
    fn record_batch_keeps_every_young_entry_whatever_came_since() {
        let now = DateTime::from_timestamp(10_000, 0).unwrap();
        let keep = TimeDelta::seconds(100);
        // Forty writes within the last 100 s (another replica's), one too old, one bare, in
        // the older format.
        let mut entries: Vec<String> = (0..40).map(|i| format!("b{i}@{}", 9_950 + i)).collect();
        entries.insert(0, "old@9000".into());
        entries.insert(0, "bare".into());
        let read = AppliedBatches::parse(&entries.join(",")).unwrap();
        assert!(read.contains("bare") && read.contains("old") && read.contains("b39"));
        let v = record_batch(&read, "new", now, keep);
        let kept = AppliedBatches::parse(&v).unwrap();
        assert_eq!(kept.len(), 41);
        assert!(kept.contains("b0") && kept.contains("new") && !kept.contains("old"));
        assert!(
            !kept.contains("bare"),
            "an entry without its time goes first"
        );
        assert!(v.len() <= 41 * 20, "{} bytes for 41 ids", v.len());
        // Past the cap, the oldest go first.
        let many: Vec<String> = (0..APPLIED_BATCHES_KEPT + 10)
            .map(|i| format!("m{i}@9999"))
            .collect();
        let read = AppliedBatches::parse(&many.join(",")).unwrap();
        let v = AppliedBatches::parse(&record_batch(&read, "new", now, keep)).unwrap();
        assert_eq!(v.len(), APPLIED_BATCHES_KEPT);
        assert!(!v.contains("m10") && v.contains("m11"));
        assert!(AppliedBatches::parse("b1:!").is_err());
    }

    #[test]
    fn reserved_replicas_counts_only_unexpired() {
        let now = Utc::now();
        let mk = |exp: DateTime<Utc>, replicas| CapacityReservation {
            name: String::new(),
            effective_time: now,
            expiration_time: exp,
            replicas,
        };
        let hra = Hra {
            key: HraKey::new("n", "a"),
            resource_version: "1".into(),
            min_replicas: None,
            max_replicas: None,
            capacity_reservations: vec![
                mk(now + TimeDelta::seconds(5), 2),
                mk(now, 1),
                mk(now + TimeDelta::seconds(1), 1),
            ],
            ..Hra::default()
        };
        assert_eq!(hra.reserved_replicas(now), 3);
    }

    #[test]
    fn no_reservation_serializes_shorter_than_the_floor() {
        let at = DateTime::parse_from_rfc3339("2026-05-29T17:04:57Z")
            .unwrap()
            .with_timezone(&Utc);
        let entry = CapacityReservation {
            name: String::new(),
            effective_time: at,
            expiration_time: at,
            replicas: 1,
        };
        let json = serde_json::to_vec(&entry).unwrap();
        assert_eq!(json.len(), MIN_RESERVATION_BYTES);
    }
}
