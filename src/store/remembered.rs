//! The decoded finished-jobs buckets of every HRA read, kept beside the objects: a read
//! decodes only the buckets whose annotation value changed since the last read of that HRA
//! (a write changes one or two), so reading and planning an HRA does not cost the number of
//! jobs it remembers. Values are matched against a copy of the one decoded (a memory compare,
//! several times faster than hashing them; the copy costs ~3.5 bytes per remembered job).
//! The members of grouped reservations are kept the same way, by the reservation's name (a
//! few KiB each, so hashing them costs little beside decoding them again).

use crate::domain::{
    codec::Members,
    groups::{Groups, is_group_name},
    hra::{CapacityReservation, HraKey},
    tombstones::{Bucket, FinishedJobs},
};
use parking_lot::Mutex;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, LazyLock},
};

/// One decoded bucket and the value it was decoded from.
struct Decoded {
    start: i64,
    value: Arc<str>,
    bucket: Arc<Bucket>,
}

/// The last buckets read of each HRA. One per process: a value decodes the same wherever it
/// was read, and an HRA's entry is replaced at each read of it.
static MEMO: LazyLock<Mutex<HashMap<HraKey, Vec<Decoded>>>> = LazyLock::new(Default::default);

/// The finished-jobs buckets among `annotations` (named `<prefix><start second>`), decoded
/// or taken from the last read of `key` when unchanged. An unreadable bucket is skipped with
/// a warning (someone else wrote it); the next write leaves it as it is.
pub fn finished_jobs(
    key: &HraKey,
    annotations: &BTreeMap<String, String>,
    prefix: &str,
) -> FinishedJobs {
    let values: Vec<(i64, &String)> = annotations
        .range(prefix.to_owned()..)
        .take_while(|(name, _)| name.starts_with(prefix))
        .filter_map(|(name, value)| Some((name[prefix.len()..].parse().ok()?, value)))
        .collect();
    if values.is_empty() {
        MEMO.lock().remove(key);
        return FinishedJobs::default();
    }
    let known: HashMap<i64, (Arc<str>, Arc<Bucket>)> = MEMO
        .lock()
        .get(key)
        .map(|list| {
            list.iter()
                .map(|d| (d.start, (d.value.clone(), d.bucket.clone())))
                .collect()
        })
        .unwrap_or_default();
    let mut decoded = Vec::with_capacity(values.len());
    let mut buckets = BTreeMap::new();
    for (start, value) in values {
        let (value, bucket) = match known.get(&start) {
            Some((old, bucket)) if **old == **value => (old.clone(), bucket.clone()),
            _ => match Bucket::decode(value) {
                Ok(bucket) => (Arc::from(value.as_str()), Arc::new(bucket)),
                Err(e) => {
                    tracing::warn!(hra = %key, bucket = start, error = %e, "ignoring unreadable finished-jobs bucket");
                    continue;
                }
            },
        };
        decoded.push(Decoded {
            start,
            value,
            bucket: bucket.clone(),
        });
        buckets.insert(start, bucket);
    }
    MEMO.lock().insert(key.clone(), decoded);
    FinishedJobs {
        buckets,
        legacy: None,
    }
}

/// The members of each HRA's grouped reservations as last read, by name.
static GROUPS: LazyLock<Mutex<HashMap<HraKey, Groups>>> = LazyLock::new(Default::default);

/// The members of the grouped reservations in `list`, decoded or taken from the last read of
/// `key` when the name is unchanged (a write re-encodes only the groups it changes). A name
/// that does not decode is left out: the reservation counts as an ordinary one.
pub fn groups(key: &HraKey, list: &[CapacityReservation]) -> Groups {
    if !list.iter().any(|r| is_group_name(&r.name)) {
        GROUPS.lock().remove(key);
        return Groups::default();
    }
    let known = GROUPS.lock().remove(key).unwrap_or_default();
    let mut groups = Groups::default();
    for r in list.iter().filter(|r| is_group_name(&r.name)) {
        let members = match known.cached(&r.name) {
            Some(members) => members,
            None => match Members::decode(&r.name) {
                Ok(members) => Arc::new(members),
                Err(e) => {
                    tracing::warn!(hra = %key, error = %e, "ignoring an unreadable grouped reservation's name");
                    continue;
                }
            },
        };
        groups.insert(Arc::from(r.name.as_str()), members);
    }
    GROUPS.lock().insert(key.clone(), groups.clone());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    const FINISHED_JOBS_ANNOTATION: &str = "f";
    const P: &str = "f.";

    #[test]
    fn unchanged_buckets_are_not_decoded_again() {
        let key = HraKey::new("memo", "a");
        let mut jobs = crate::domain::codec::JobSet::default();
        jobs.insert("1", 100);
        let mut annotations = BTreeMap::new();
        annotations.insert(format!("{FINISHED_JOBS_ANNOTATION}.60"), jobs.encode());
        annotations.insert(format!("{FINISHED_JOBS_ANNOTATION}.x"), "ignored".into());
        let one = finished_jobs(&key, &annotations, P);
        let two = finished_jobs(&key, &annotations, P);
        assert!(Arc::ptr_eq(&one.buckets[&60], &two.buckets[&60]), "reused");
        jobs.insert("2", 100);
        annotations.insert(format!("{FINISHED_JOBS_ANNOTATION}.60"), jobs.encode());
        annotations.insert(
            format!("{FINISHED_JOBS_ANNOTATION}.120"),
            "z1:garbage".into(),
        );
        let three = finished_jobs(&key, &annotations, P);
        assert_eq!(
            three.buckets[&60].jobs.len(),
            2,
            "a changed value is decoded"
        );
        assert_eq!(three.buckets.len(), 1, "an unreadable bucket is skipped");
        assert!(finished_jobs(&key, &BTreeMap::new(), P).is_empty());
    }
}
