//! Finished jobs (tombstones) kept in the HRA itself, so that a `queued` arriving after its
//! own `completed` adds nothing on any replica and after any restart.
//!
//! They live in buckets by expiry: one annotation per bucket (`finished-jobs.<start second>`),
//! each a [`JobSet`] in the compact codec, written in the same conditional write as the batch.
//! New jobs all expire at `now + ttl`, so a write re-encodes only the newest bucket (and any
//! bucket a refreshed or dropped job leaves); a bucket whose jobs have all expired is removed
//! whole. The cost of a write follows what changed, not how many jobs are remembered. The
//! older format, one JSON array of `[job_id, expiry]` pairs, is read and moved into buckets by
//! the next write.

use super::codec::{CodecError, JobSet};
use chrono::{DateTime, TimeDelta, Utc};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

/// Most bytes all finished-jobs buckets of one HRA take. Kubernetes allows 256 KiB for all of
/// an object's annotations; this leaves room for the applied batches, the job repositories
/// and annotations of others. At ~4 bytes a GitHub job id it holds ~40,000 jobs.
pub const MAX_FINISHED_BYTES: usize = 160 * 1024;

/// Most finished jobs one HRA remembers unless configured (`--tombstone-capacity`): the
/// one-hour TTL holds for an HRA finishing 5 jobs a second (18,000 in an hour).
pub const DEFAULT_CAPACITY: usize = 20_000;

/// How many buckets a TTL is spread over (each is `ttl / BUCKETS`, at least a minute).
const BUCKETS: i64 = 30;

/// How long and how many finished jobs an HRA remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneLimits {
    /// How long a finished job is remembered.
    pub ttl: TimeDelta,
    /// Most finished jobs one HRA remembers.
    pub capacity: usize,
}

impl TombstoneLimits {
    /// Seconds of expiry one bucket covers.
    pub fn bucket_width(&self) -> i64 {
        let per = self.ttl.num_seconds().max(0) / BUCKETS;
        ((per + 59) / 60 * 60).max(60)
    }
}

/// One bucket as read: its jobs, the latest expiry among them and its annotation's size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Job ids with their expiry second.
    pub jobs: JobSet,
    /// The latest expiry in the bucket (the bucket is dropped once it has passed).
    pub last: i64,
    /// Bytes of its annotation value.
    pub encoded_len: usize,
}

impl Bucket {
    /// A bucket read from its annotation value.
    pub fn decode(value: &str) -> Result<Self, CodecError> {
        Ok(Self::of(JobSet::decode(value)?, value.len()))
    }

    fn of(jobs: JobSet, encoded_len: usize) -> Self {
        Self {
            last: jobs.max_second().unwrap_or(i64::MIN),
            jobs,
            encoded_len,
        }
    }
}

/// The finished jobs an HRA holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinishedJobs {
    /// Buckets by their start second (the number in the annotation's name).
    pub buckets: BTreeMap<i64, Arc<Bucket>>,
    /// Jobs of the older single annotation, with the size of its value; the next write moves
    /// them into buckets and removes it.
    pub legacy: Option<Arc<Bucket>>,
}

impl FinishedJobs {
    /// When `job` is remembered until, if it is remembered at `now`.
    pub fn until(&self, job: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now = now.timestamp();
        self.legacy
            .iter()
            .chain(self.buckets.values())
            .filter(|b| b.last > now)
            .filter_map(|b| b.jobs.get(job))
            .filter(|&s| s > now)
            .max()
            .and_then(|s| DateTime::from_timestamp(s, 0))
    }

    /// True if `job` is remembered as finished at `now`.
    pub fn contains(&self, job: &str, now: DateTime<Utc>) -> bool {
        self.until(job, now).is_some()
    }

    /// Jobs held, expired ones included until their bucket goes.
    pub fn len(&self) -> usize {
        let legacy = self.legacy.as_ref().map_or(0, |b| b.jobs.len());
        legacy + self.buckets.values().map(|b| b.jobs.len()).sum::<usize>()
    }

    /// True when no job is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of all the annotation values.
    pub fn encoded_len(&self) -> usize {
        let legacy = self.legacy.as_ref().map_or(0, |b| b.encoded_len);
        legacy + self.buckets.values().map(|b| b.encoded_len).sum::<usize>()
    }
}

/// What a write does to the finished jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinishedWrite {
    /// Buckets to write (`Some(value)`) or remove (`None`), by start second.
    pub changes: Vec<(i64, Option<String>)>,
    /// The older single annotation is to be removed.
    pub remove_legacy: bool,
    /// The finished jobs after the write.
    pub after: FinishedJobs,
    /// Unexpired entries dropped because the capacity or [`MAX_FINISHED_BYTES`] was reached.
    pub dropped: u64,
}

/// Reads the older annotation value, a JSON array of `[job_id, expiry_unix_seconds]`.
pub fn parse_legacy(value: &str) -> Result<Bucket, serde_json::Error> {
    let pairs: Vec<(String, i64)> = serde_json::from_str(value)?;
    let jobs: JobSet = pairs.into_iter().map(|(j, s)| (j.into(), s)).collect();
    Ok(Bucket::of(jobs, value.len()))
}

/// The write after a batch at `now` that finished `jobs`: buckets whose jobs all expired are
/// removed, each job is (re)remembered until `now + ttl` in the newest bucket, and beyond the
/// capacity (or [`MAX_FINISHED_BYTES`]) the soonest-expiring jobs are dropped first. Only
/// buckets that changed are encoded.
///
/// ```
/// # use batch_scaler::domain::tombstones::{next, FinishedJobs, TombstoneLimits};
/// # use chrono::{TimeDelta, Utc};
/// let limits = TombstoneLimits { ttl: TimeDelta::hours(1), capacity: 2 };
/// let now = Utc::now();
/// let w = next(&FinishedJobs::default(), &["a".into(), "b".into(), "c".into()], now, limits);
/// assert_eq!((w.after.len(), w.dropped, w.changes.len()), (2, 1, 1));
/// ```
pub fn next(
    read: &FinishedJobs,
    jobs: &[Arc<str>],
    now: DateTime<Utc>,
    limits: TombstoneLimits,
) -> FinishedWrite {
    let now_s = now.timestamp();
    let width = limits.bucket_width();
    let start_of = |second: i64| second.div_euclid(width) * width;
    let expires = super::duration::saturating_add(now, limits.ttl).timestamp();
    let target = start_of(expires);
    let mut buckets = read.buckets.clone();
    let mut touched = BTreeSet::new();
    buckets.retain(|start, b| {
        let live = b.last > now_s;
        if !live {
            touched.insert(*start);
        }
        live
    });
    let remove_legacy = read.legacy.is_some();
    if let Some(legacy) = &read.legacy {
        for (job, at) in legacy.jobs.iter().filter(|(_, at)| *at > now_s) {
            let b = Arc::make_mut(buckets.entry(start_of(at)).or_default());
            b.jobs.insert(&job.text(), at);
            touched.insert(start_of(at));
        }
    }
    for job in jobs {
        // A job finishing again moves to the newest bucket: one entry per job.
        let mut kept = None;
        for (start, b) in buckets.iter_mut().filter(|(s, _)| **s != target) {
            if let Some(at) = b.jobs.get(job) {
                if at >= expires {
                    kept = Some(at);
                } else {
                    Arc::make_mut(b).jobs.remove(job);
                    touched.insert(*start);
                }
            }
        }
        if kept.is_none() {
            let b = Arc::make_mut(buckets.entry(target).or_default());
            if b.jobs.get(job).is_none_or(|at| at < expires) {
                b.jobs.insert(job, expires);
                touched.insert(target);
            }
        }
    }
    let mut dropped = 0u64;
    let mut total: usize = buckets.values().map(|b| b.jobs.len()).sum();
    // Over the capacity: expired entries go first, then the soonest-expiring.
    while total > limits.capacity {
        let Some((&start, _)) = buckets.iter().next() else {
            break;
        };
        let b = Arc::make_mut(buckets.get_mut(&start).expect("first key exists"));
        total -= b.jobs.retain_seconds(|at| at > now_s);
        let over = total.saturating_sub(limits.capacity);
        let removed = b.jobs.remove_first(over);
        total -= removed;
        dropped += removed as u64;
        touched.insert(start);
        if b.jobs.is_empty() {
            buckets.remove(&start);
        }
    }
    let mut changes = Vec::with_capacity(touched.len());
    for start in &touched {
        match buckets.get_mut(start) {
            Some(b) if !b.jobs.is_empty() => {
                let value = b.jobs.encode();
                let jobs = std::mem::take(&mut Arc::make_mut(b).jobs);
                *b = Arc::new(Bucket::of(jobs, value.len()));
                changes.push((*start, Some(value)));
            }
            _ => {
                buckets.remove(start);
                changes.push((*start, None));
            }
        }
    }
    // Within the byte budget: the soonest-expiring buckets go whole.
    let mut bytes: usize = buckets.values().map(|b| b.encoded_len).sum();
    while bytes > MAX_FINISHED_BYTES && buckets.len() > 1 {
        let Some((start, b)) = buckets.pop_first() else {
            break;
        };
        bytes -= b.encoded_len;
        dropped += b.jobs.iter().filter(|(_, at)| *at > now_s).count() as u64;
        changes.retain(|(s, _)| *s != start);
        changes.push((start, None));
    }
    // One bucket alone over the budget (very long ids, or a TTL of years): its
    // soonest-expiring jobs go until it fits.
    while bytes > MAX_FINISHED_BYTES {
        let Some((&start, b)) = buckets.iter_mut().next() else {
            break;
        };
        let b = Arc::make_mut(b);
        let n = b.jobs.len();
        let keep = (n as u128 * MAX_FINISHED_BYTES as u128 / bytes as u128) as usize * 9 / 10;
        dropped += b.jobs.remove_first(n - keep) as u64;
        let value = b.jobs.encode();
        *b = Bucket::of(std::mem::take(&mut b.jobs), value.len());
        bytes = value.len();
        changes.retain(|(s, _)| *s != start);
        changes.push((start, (!value.is_empty()).then_some(value)));
        if b.jobs.is_empty() {
            buckets.remove(&start);
        }
    }
    changes.sort_by_key(|(s, _)| *s);
    FinishedWrite {
        changes,
        remove_legacy,
        after: FinishedJobs {
            buckets,
            legacy: None,
        },
        dropped,
    }
}

#[cfg(test)]
mod tests;
