//! Finished jobs (tombstones) kept in the HRA itself, so that a `queued` arriving after its
//! own `completed` adds nothing on any replica and after any restart. They live in one
//! annotation, written in the same conditional write as the batch: a JSON array of
//! `[job_id, expiry_unix_seconds]`, soonest expiry first, pruned of expired entries on every
//! write and capped (soonest-expiring dropped first).

use chrono::{DateTime, TimeDelta, Utc};
use std::{collections::HashMap, sync::Arc};

/// Largest annotation value written. Kubernetes refuses objects whose annotations total more
/// than 256 KiB; with job ids of up to 256 bytes the entry count alone would not keep under it.
pub const MAX_ANNOTATION_BYTES: usize = 128 * 1024;

/// One finished job and until when it is remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    /// The workflow job id.
    pub job: Arc<str>,
    /// When the job is forgotten.
    pub expires: DateTime<Utc>,
}

/// How long and how many finished jobs an HRA remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneLimits {
    /// How long a finished job is remembered.
    pub ttl: TimeDelta,
    /// Most finished jobs one HRA remembers.
    pub capacity: usize,
}

/// The tombstones a write carries, and how many were dropped to stay within the capacity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextTombstones {
    /// Soonest expiry first.
    pub list: Vec<Tombstone>,
    /// Unexpired entries dropped because the list was full.
    pub dropped: u64,
}

/// The annotation value could not be read (another writer changed it).
#[derive(Debug, thiserror::Error)]
#[error("finished-jobs annotation is not a JSON array of [job_id, expiry] pairs: {0}")]
pub struct TombstoneParseError(#[from] serde_json::Error);

/// Reads the annotation value. Entries are sorted soonest expiry first.
pub fn parse(value: &str) -> Result<Vec<Tombstone>, TombstoneParseError> {
    let pairs: Vec<(String, i64)> = serde_json::from_str(value)?;
    let mut list: Vec<Tombstone> = pairs
        .into_iter()
        .map(|(job, secs)| Tombstone {
            job: job.into(),
            expires: DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
        })
        .collect();
    list.sort_by_key(|t| t.expires);
    Ok(list)
}

/// The annotation value of `list` (empty string for an empty list: the annotation is removed).
pub fn format(list: &[Tombstone]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let pairs: Vec<(&str, i64)> = list
        .iter()
        .map(|t| (&*t.job, t.expires.timestamp()))
        .collect();
    serde_json::to_string(&pairs).expect("pairs of string and integer always serialize")
}

/// Bytes one entry takes in the annotation, its comma included.
fn entry_len(t: &Tombstone) -> usize {
    serde_json::to_string(&(&*t.job, t.expires.timestamp())).map_or(0, |e| e.len() + 1)
}

/// The list after a batch at `now` that finished `jobs`: expired entries pruned, each job
/// (re)remembered until `now + ttl`, then the soonest-expiring entries dropped beyond the
/// capacity (or [`MAX_ANNOTATION_BYTES`]).
///
/// ```
/// # use batch_scaler::domain::tombstones::{next, TombstoneLimits};
/// # use chrono::{TimeDelta, Utc};
/// let limits = TombstoneLimits { ttl: TimeDelta::hours(1), capacity: 2 };
/// let now = Utc::now();
/// let n = next(&[], &["a".into(), "b".into(), "c".into()], now, limits);
/// assert_eq!((n.list.len(), n.dropped), (2, 1));
/// ```
pub fn next(
    read: &[Tombstone],
    jobs: &[Arc<str>],
    now: DateTime<Utc>,
    limits: TombstoneLimits,
) -> NextTombstones {
    let expires = super::duration::saturating_add(now, limits.ttl);
    let mut by_job: HashMap<&str, DateTime<Utc>> = read
        .iter()
        .filter(|t| t.expires > now)
        .map(|t| (&*t.job, t.expires))
        .collect();
    for job in jobs {
        let at = by_job.entry(job).or_insert(expires);
        *at = (*at).max(expires);
    }
    let mut list: Vec<Tombstone> = by_job
        .into_iter()
        .map(|(job, expires)| Tombstone {
            job: job.into(),
            expires,
        })
        .collect();
    // Ties broken by job id so that every replica writes the same value.
    list.sort_by(|a, b| a.expires.cmp(&b.expires).then_with(|| a.job.cmp(&b.job)));
    let mut keep = list.len().min(limits.capacity);
    let mut bytes = 2;
    for (i, t) in list.iter().enumerate().rev().take(keep) {
        bytes += entry_len(t);
        if bytes > MAX_ANNOTATION_BYTES {
            keep = list.len() - 1 - i;
            break;
        }
    }
    let dropped = list.len() - keep;
    list.drain(..dropped);
    NextTombstones {
        list,
        dropped: dropped as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn stone(job: &str, secs: i64) -> Tombstone {
        Tombstone {
            job: job.into(),
            expires: at(secs),
        }
    }

    const LIMITS: TombstoneLimits = TombstoneLimits {
        ttl: TimeDelta::seconds(100),
        capacity: 3,
    };

    #[test]
    fn round_trips_through_the_annotation_sorted_by_expiry() {
        let list = vec![stone("b", 20), stone("a,\"x", 10)];
        let text = format(&list);
        assert_eq!(text, r#"[["b",1800000020],["a,\"x",1800000010]]"#);
        assert_eq!(
            parse(&text).unwrap(),
            vec![stone("a,\"x", 10), stone("b", 20)]
        );
        assert_eq!(format(&[]), "");
        assert!(parse("a=1").unwrap_err().to_string().contains("JSON array"));
    }

    #[test]
    fn table_of_next() {
        struct Case {
            name: &'static str,
            read: Vec<Tombstone>,
            jobs: &'static [&'static str],
            want: Vec<Tombstone>,
            dropped: u64,
        }
        let cases = [
            Case {
                name: "expired entries are pruned, live ones kept",
                read: vec![stone("old", 0), stone("live", 50)],
                jobs: &[],
                want: vec![stone("live", 50)],
                dropped: 0,
            },
            Case {
                name: "new jobs expire after the ttl",
                read: vec![],
                jobs: &["j"],
                want: vec![stone("j", 100)],
                dropped: 0,
            },
            Case {
                name: "a job finishing again is refreshed, not doubled",
                read: vec![stone("j", 30)],
                jobs: &["j", "j"],
                want: vec![stone("j", 100)],
                dropped: 0,
            },
            Case {
                name: "over the capacity the soonest-expiring go first",
                read: vec![stone("a", 10), stone("b", 20), stone("c", 30)],
                jobs: &["d", "e"],
                want: vec![stone("c", 30), stone("d", 100), stone("e", 100)],
                dropped: 2,
            },
        ];
        for c in cases {
            let jobs: Vec<Arc<str>> = c.jobs.iter().map(|j| Arc::from(*j)).collect();
            let n = next(&c.read, &jobs, at(0), LIMITS);
            assert_eq!(n.list, c.want, "{}", c.name);
            assert_eq!(n.dropped, c.dropped, "{}", c.name);
        }
    }

    #[test]
    fn long_job_ids_are_bounded_by_bytes_too() {
        let limits = TombstoneLimits {
            ttl: TimeDelta::seconds(100),
            capacity: 1000,
        };
        let jobs: Vec<Arc<str>> = (0..1000).map(|i| format!("{i:0>256}").into()).collect();
        let n = next(&[], &jobs, at(0), limits);
        let text = format(&n.list);
        assert!(text.len() <= MAX_ANNOTATION_BYTES, "{}", text.len());
        assert!(text.len() > MAX_ANNOTATION_BYTES - 300, "as many as fit");
        assert_eq!(n.dropped as usize + n.list.len(), 1000);
    }
}
