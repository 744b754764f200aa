//! One compact codec for what an HRA remembers in its annotations: sets of job ids, each
//! with a second (finished jobs with their expiry; the jobs of a grouped reservation), and
//! the ids of applied batches.
//!
//! A job set is written as `z1:` and URL-safe base64 (no padding) of the deflated bytes:
//! the smallest second, then numeric job ids (GitHub's are integers) ascending, each as the
//! varint gap from the previous with its second as a varint offset from the smallest, then
//! any other job ids with their length. A GitHub job id costs 2–5 bytes, not the ~30 of JSON.
//! Batch ids are written as `b1:` and base64 of 64-bit hashes with their seconds (~12 bytes
//! each, against ~43 for `UUID@seconds`). Reading checks every bound: garbage is refused with
//! a [`CodecError`], never a panic or an unbounded allocation.

mod batch_ids;
mod members;
pub mod varint;

pub use batch_ids::{BatchIds, batch_hash};
pub use members::{MEMBERS_PREFIX, Members, Taken};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use std::{io::Read, sync::Arc};
use varint::Reader;

/// The prefix of an encoded job set.
pub const JOB_SET_PREFIX: &str = "z1:";
/// The prefix of encoded batch ids.
pub const BATCH_IDS_PREFIX: &str = "b1:";
/// Largest encoded value read (Kubernetes allows 256 KiB of annotations in all).
const MAX_ENCODED: usize = 1024 * 1024;
/// Largest decompressed job set read.
const MAX_INFLATED: u64 = 16 * 1024 * 1024;
/// Seconds outside ±2^40 (about 35,000 years) are refused: sums of them never overflow.
const MAX_SECOND: i64 = 1 << 40;

/// An encoded value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Not one of our encodings (another writer changed it, or a newer version wrote it).
    #[error("not a value this version writes (expected the prefix {0:?})")]
    Prefix(&'static str),
    /// The value is too long to be ours.
    #[error("value of {0} bytes is longer than any we write")]
    TooLong(usize),
    /// Not valid base64 or not valid deflate data.
    #[error("value is not valid {0}")]
    Encoding(&'static str),
    /// The decoded bytes break the format.
    #[error("corrupt value: {0}")]
    Corrupt(&'static str),
}

/// A job id as held: GitHub's integers compactly, anything else as its text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobId {
    /// A canonical decimal integer (no sign, no leading zero).
    Num(u64),
    /// Any other id.
    Name(Arc<str>),
}

impl JobId {
    /// The id of `job`: numeric when `job` is a canonical decimal integer.
    pub fn of(job: &str) -> Self {
        match numeric(job) {
            Some(n) => Self::Num(n),
            None => Self::Name(job.into()),
        }
    }

    /// The id as text, exactly as it was given.
    pub fn text(&self) -> Arc<str> {
        match self {
            Self::Num(n) => n.to_string().into(),
            Self::Name(s) => s.clone(),
        }
    }
}

/// `job` as an integer, if it reads back as the same text.
/// A job id that is a canonical decimal number (GitHub's), as that number.
pub fn numeric(job: &str) -> Option<u64> {
    let canonical = !job.is_empty()
        && job.len() <= 20
        && job.bytes().all(|b| b.is_ascii_digit())
        && (job == "0" || !job.starts_with('0'));
    if canonical { job.parse().ok() } else { None }
}

/// A set of job ids, each with one second (when it expires, or when its group does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSet {
    /// Numeric ids, ascending.
    nums: Vec<(u64, i64)>,
    /// Other ids, ascending.
    names: Vec<(Arc<str>, i64)>,
}

impl JobSet {
    /// How many jobs the set holds.
    pub fn len(&self) -> usize {
        self.nums.len() + self.names.len()
    }

    /// True when the set holds no job.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The second of `job`, if the set holds it.
    pub fn get(&self, job: &str) -> Option<i64> {
        match numeric(job) {
            Some(n) => self
                .nums
                .binary_search_by_key(&n, |e| e.0)
                .ok()
                .map(|i| self.nums[i].1),
            None => self
                .names
                .binary_search_by(|e| (*e.0).cmp(job))
                .ok()
                .map(|i| self.names[i].1),
        }
    }

    /// Sets the second of `job`, returning the one it had.
    pub fn insert(&mut self, job: &str, second: i64) -> Option<i64> {
        let second = second.clamp(-MAX_SECOND, MAX_SECOND);
        match numeric(job) {
            Some(n) => match self.nums.binary_search_by_key(&n, |e| e.0) {
                Ok(i) => Some(std::mem::replace(&mut self.nums[i].1, second)),
                Err(i) => {
                    self.nums.insert(i, (n, second));
                    None
                }
            },
            None => match self.names.binary_search_by(|e| (*e.0).cmp(job)) {
                Ok(i) => Some(std::mem::replace(&mut self.names[i].1, second)),
                Err(i) => {
                    self.names.insert(i, (job.into(), second));
                    None
                }
            },
        }
    }

    /// Removes `job`, returning its second.
    pub fn remove(&mut self, job: &str) -> Option<i64> {
        match numeric(job) {
            Some(n) => self
                .nums
                .binary_search_by_key(&n, |e| e.0)
                .ok()
                .map(|i| self.nums.remove(i).1),
            None => self
                .names
                .binary_search_by(|e| (*e.0).cmp(job))
                .ok()
                .map(|i| self.names.remove(i).1),
        }
    }

    /// Every job with its second, numeric ids first, each kind ascending.
    pub fn iter(&self) -> impl Iterator<Item = (JobId, i64)> + '_ {
        let nums = self.nums.iter().map(|&(n, s)| (JobId::Num(n), s));
        let names = self.names.iter().map(|(n, s)| (JobId::Name(n.clone()), *s));
        nums.chain(names)
    }

    /// Keeps only the jobs whose second passes `keep`; returns how many were removed.
    pub fn retain_seconds(&mut self, keep: impl Fn(i64) -> bool) -> usize {
        let before = self.len();
        self.nums.retain(|e| keep(e.1));
        self.names.retain(|e| keep(e.1));
        before - self.len()
    }

    /// The latest second in the set.
    pub fn max_second(&self) -> Option<i64> {
        let nums = self.nums.iter().map(|e| e.1);
        nums.chain(self.names.iter().map(|e| e.1)).max()
    }

    /// Removes the `n` jobs with the smallest seconds (ties: the smallest ids first), so
    /// every writer removes the same ones; returns how many were removed.
    pub fn remove_first(&mut self, n: usize) -> usize {
        if n >= self.len() {
            let all = self.len();
            *self = Self::default();
            return all;
        }
        let mut order: Vec<(i64, JobId)> = self.iter().map(|(j, s)| (s, j)).collect();
        order.sort_unstable();
        for (_, job) in &order[..n] {
            match job {
                JobId::Num(id) => {
                    if let Ok(i) = self.nums.binary_search_by_key(id, |e| e.0) {
                        self.nums.remove(i);
                    }
                }
                JobId::Name(name) => {
                    if let Ok(i) = self.names.binary_search_by(|e| e.0.cmp(name)) {
                        self.names.remove(i);
                    }
                }
            }
        }
        n
    }

    /// Bytes this set takes in memory, allocations included (for the figures).
    pub fn heap_bytes(&self) -> usize {
        self.nums.capacity() * size_of::<(u64, i64)>()
            + self.names.capacity() * size_of::<(Arc<str>, i64)>()
            + self.names.iter().map(|(n, _)| n.len() + 16).sum::<usize>()
    }

    /// The set as an annotation value (`z1:` …; empty for an empty set).
    pub fn encode(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let base = self
            .nums
            .iter()
            .map(|e| e.1)
            .chain(self.names.iter().map(|e| e.1))
            .min()
            .unwrap_or(0);
        let mut raw = Vec::with_capacity(8 + self.nums.len() * 4);
        raw.push(1);
        varint::put_signed(&mut raw, base);
        varint::put(&mut raw, self.nums.len() as u64);
        let mut previous = None;
        for &(id, second) in &self.nums {
            let gap = previous.map_or(id, |p: u64| id - p - 1);
            varint::put(&mut raw, gap);
            varint::put(&mut raw, (second - base) as u64);
            previous = Some(id);
        }
        varint::put(&mut raw, self.names.len() as u64);
        for (name, second) in &self.names {
            varint::put(&mut raw, name.len() as u64);
            raw.extend_from_slice(name.as_bytes());
            varint::put(&mut raw, (second - base) as u64);
        }
        pack(JOB_SET_PREFIX, &raw, flate2::Compression::default())
    }

    /// Reads an annotation value written by [`JobSet::encode`] (empty: an empty set).
    pub fn decode(value: &str) -> Result<Self, CodecError> {
        if value.is_empty() {
            return Ok(Self::default());
        }
        let raw = unpack(value, JOB_SET_PREFIX)?;
        let mut r = Reader::new(&raw);
        if r.take(1)? != [1] {
            return Err(CodecError::Corrupt("unknown job set version"));
        }
        let base = second(r.get_signed()?)?;
        let offset = |r: &mut Reader| -> Result<i64, CodecError> {
            let o = r.get()?;
            let o = i64::try_from(o).map_err(|_| CodecError::Corrupt("second out of range"))?;
            second(base.saturating_add(o))
        };
        let mut set = Self::default();
        let n = r.count(2)?;
        set.nums.reserve_exact(n);
        let mut previous: Option<u64> = None;
        for _ in 0..n {
            let gap = r.get()?;
            let id = match previous {
                None => Some(gap),
                Some(p) => p.checked_add(gap).and_then(|v| v.checked_add(1)),
            }
            .ok_or(CodecError::Corrupt("job id overflows 64 bits"))?;
            set.nums.push((id, offset(&mut r)?));
            previous = Some(id);
        }
        let n = r.count(2)?;
        for _ in 0..n {
            let len = r.count(1)?;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| CodecError::Corrupt("job id is not UTF-8"))?;
            if numeric(name).is_some() {
                return Err(CodecError::Corrupt("numeric job id stored as text"));
            }
            if set.names.last().is_some_and(|(last, _)| **last >= *name) {
                return Err(CodecError::Corrupt("job ids out of order"));
            }
            let at = offset(&mut r)?;
            set.names.push((name.into(), at));
        }
        if r.remaining() != 0 {
            return Err(CodecError::Corrupt("trailing bytes"));
        }
        Ok(set)
    }
}

impl FromIterator<(Arc<str>, i64)> for JobSet {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, i64)>>(iter: I) -> Self {
        let mut set = Self::default();
        for (job, at) in iter {
            match numeric(&job) {
                Some(n) => set.nums.push((n, at.clamp(-MAX_SECOND, MAX_SECOND))),
                None => set.names.push((job, at.clamp(-MAX_SECOND, MAX_SECOND))),
            }
        }
        // Sorted, and one entry per job: the latest second wins.
        set.nums.sort_unstable();
        set.nums.reverse();
        set.nums.dedup_by_key(|e| e.0);
        set.nums.reverse();
        set.names.sort_unstable();
        set.names.reverse();
        set.names.dedup_by(|a, b| a.0 == b.0);
        set.names.reverse();
        set
    }
}

pub(super) fn second(s: i64) -> Result<i64, CodecError> {
    if (-MAX_SECOND..=MAX_SECOND).contains(&s) {
        Ok(s)
    } else {
        Err(CodecError::Corrupt("second out of range"))
    }
}

/// `prefix` and URL-safe base64 of `raw`, deflated at `level`.
pub(crate) fn pack(prefix: &str, raw: &[u8], level: flate2::Compression) -> String {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), level);
    let packed = std::io::Write::write_all(&mut deflate, raw)
        .and_then(|()| deflate.finish())
        .unwrap_or_default();
    let mut out = String::with_capacity(prefix.len() + packed.len() * 4 / 3 + 4);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(&packed, &mut out);
    out
}

/// The bytes [`pack`] was given, inflated within [`MAX_INFLATED`].
pub(crate) fn unpack(value: &str, prefix: &'static str) -> Result<Vec<u8>, CodecError> {
    let packed = unwrap_base64(value, prefix)?;
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(&packed[..])
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut raw)
        .map_err(|_| CodecError::Encoding("deflate data"))?;
    if raw.len() as u64 > MAX_INFLATED {
        return Err(CodecError::TooLong(raw.len()));
    }
    Ok(raw)
}

pub(super) fn unwrap_base64(value: &str, prefix: &'static str) -> Result<Vec<u8>, CodecError> {
    if value.len() > MAX_ENCODED {
        return Err(CodecError::TooLong(value.len()));
    }
    let body = value
        .strip_prefix(prefix)
        .ok_or(CodecError::Prefix(prefix))?;
    URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CodecError::Encoding("base64"))
}

#[cfg(test)]
mod members_tests;
#[cfg(test)]
mod tests;
