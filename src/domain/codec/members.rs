//! The jobs of one grouped reservation (`replicas: N` standing for N waiting jobs), written in
//! the reservation's own `name` so that any replica and a restarted process continue it.
//!
//! `g1:` and URL-safe base64 of the deflated bytes: a table of repositories, then numeric job
//! ids ascending, each as the varint gap from the previous, the zigzag difference of its
//! queued second from the previous member's, and its repository's place in the table (0:
//! unknown); then any other job ids with their length. Jobs queued together have close ids
//! and equal seconds, so a member costs 1–3 bytes before compression.

use super::{CodecError, numeric, pack, second, unpack, varint};
use std::sync::Arc;
use varint::Reader;

/// The prefix of a grouped reservation's name.
pub const MEMBERS_PREFIX: &str = "g1:";
/// Longest repository name kept (GitHub's `OWNER/REPO` is at most 140).
const MAX_REPOSITORY: usize = 512;

/// What a group holds of one member: when it was queued and its repository's place in the
/// group's table (0: unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Member {
    since: i64,
    repo: u32,
}

/// One member as handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The job id, as given.
    pub job: Arc<str>,
    /// The second it was queued.
    pub since: i64,
    /// Its `OWNER/REPO`, when known.
    pub repository: Option<Arc<str>>,
}

/// The job ids of a grouped reservation, each with its queued second and repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    repos: Vec<Arc<str>>,
    nums: Vec<(u64, Member)>,
    names: Vec<(Arc<str>, Member)>,
}

impl Members {
    /// How many jobs the group names.
    pub fn len(&self) -> usize {
        self.nums.len() + self.names.len()
    }

    /// True when the group names no job.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, job: &str) -> Result<usize, usize> {
        match numeric(job) {
            Some(n) => self.nums.binary_search_by_key(&n, |e| e.0),
            None => self
                .names
                .binary_search_by(|e| (*e.0).cmp(job))
                .map(|i| i + self.nums.len())
                .map_err(|i| i + self.nums.len()),
        }
    }

    /// True when `job` is a member.
    pub fn contains(&self, job: &str) -> bool {
        self.find(job).is_ok()
    }

    fn repository(&self, member: Member) -> Option<Arc<str>> {
        let i = usize::try_from(member.repo).ok()?.checked_sub(1)?;
        self.repos.get(i).cloned()
    }

    /// Adds `job`, queued at `since`; false (and nothing changes) when it is a member.
    pub fn insert(&mut self, job: &str, since: i64, repository: Option<&Arc<str>>) -> bool {
        if job.is_empty() {
            return false;
        }
        let Err(at) = self.find(job) else {
            return false;
        };
        let repo = repository.map_or(0, |r| self.repo_index(r));
        let member = Member {
            since: since.clamp(-super::MAX_SECOND, super::MAX_SECOND),
            repo,
        };
        match numeric(job) {
            Some(n) => self.nums.insert(at, (n, member)),
            None => self
                .names
                .insert(at - self.nums.len(), (job.into(), member)),
        }
        true
    }

    fn repo_index(&mut self, repository: &Arc<str>) -> u32 {
        if repository.len() > MAX_REPOSITORY {
            return 0;
        }
        let i = match self.repos.iter().position(|r| r == repository) {
            Some(i) => i,
            None => {
                self.repos.push(repository.clone());
                self.repos.len() - 1
            }
        };
        u32::try_from(i + 1).unwrap_or(0)
    }

    /// Removes `job`; returns it with its queued second and repository, `None` when it is
    /// not a member.
    pub fn remove(&mut self, job: &str) -> Option<Taken> {
        let at = self.find(job).ok()?;
        let (job, m) = if at < self.nums.len() {
            let (id, m) = self.nums.remove(at);
            (Arc::from(id.to_string()), m)
        } else {
            self.names.remove(at - self.nums.len())
        };
        Some(Taken {
            job,
            since: m.since,
            repository: self.repository(m),
        })
    }

    /// Removes and returns the `n` members with the smallest ids (numeric ids first): GitHub
    /// numbers jobs as they are created, so these are the oldest, and every writer takes the
    /// same ones.
    pub fn take_first(&mut self, n: usize) -> Vec<Taken> {
        let from_nums = n.min(self.nums.len());
        let from_names = (n - from_nums).min(self.names.len());
        let nums: Vec<_> = self.nums.drain(..from_nums).collect();
        let names: Vec<_> = self.names.drain(..from_names).collect();
        let nums = nums
            .into_iter()
            .map(|(id, m)| (Arc::from(id.to_string()), m));
        nums.chain(names)
            .map(|(job, m)| Taken {
                job,
                since: m.since,
                repository: self.repository(m),
            })
            .collect()
    }

    /// Every member, numeric ids first, each kind ascending.
    pub fn iter(&self) -> impl Iterator<Item = Taken> + '_ {
        let nums = self
            .nums
            .iter()
            .map(|&(n, m)| (Arc::from(n.to_string()), m));
        let names = self.names.iter().map(|(n, m)| (n.clone(), *m));
        nums.chain(names).map(|(job, m)| Taken {
            job,
            since: m.since,
            repository: self.repository(m),
        })
    }

    /// Bytes this group takes in memory, allocations included (for the figures).
    pub fn heap_bytes(&self) -> usize {
        self.nums.capacity() * size_of::<(u64, Member)>()
            + self.names.capacity() * size_of::<(Arc<str>, Member)>()
            + self.names.iter().map(|(n, _)| n.len() + 16).sum::<usize>()
            + self.repos.iter().map(|r| r.len() + 16).sum::<usize>()
    }

    /// The group as a reservation name (`g1:` …).
    pub fn encode(&self) -> String {
        // Only the repositories still used are written, in order of first use.
        let mut table: Vec<u32> = vec![0; self.repos.len() + 1];
        let mut used: Vec<&Arc<str>> = Vec::new();
        let all = self
            .nums
            .iter()
            .map(|e| e.1)
            .chain(self.names.iter().map(|e| e.1));
        for m in all {
            let slot = m.repo as usize;
            if slot != 0 && slot <= self.repos.len() && table[slot] == 0 {
                used.push(&self.repos[slot - 1]);
                table[slot] = used.len() as u32;
            }
        }
        let mut raw = Vec::with_capacity(16 + self.len() * 3);
        raw.push(1);
        varint::put(&mut raw, used.len() as u64);
        for repo in used {
            varint::put(&mut raw, repo.len() as u64);
            raw.extend_from_slice(repo.as_bytes());
        }
        let mut previous = 0i64;
        let mut put_member = |raw: &mut Vec<u8>, m: Member| {
            varint::put_signed(raw, m.since - previous);
            previous = m.since;
            varint::put(
                raw,
                u64::from(table.get(m.repo as usize).copied().unwrap_or(0)),
            );
        };
        varint::put(&mut raw, self.nums.len() as u64);
        let mut last = None;
        for &(id, m) in &self.nums {
            varint::put(&mut raw, last.map_or(id, |p: u64| id - p - 1));
            put_member(&mut raw, m);
            last = Some(id);
        }
        varint::put(&mut raw, self.names.len() as u64);
        for (name, m) in &self.names {
            varint::put(&mut raw, name.len() as u64);
            raw.extend_from_slice(name.as_bytes());
            put_member(&mut raw, *m);
        }
        pack(MEMBERS_PREFIX, &raw, flate2::Compression::fast())
    }

    /// Reads a name written by [`Members::encode`].
    pub fn decode(value: &str) -> Result<Self, CodecError> {
        let raw = unpack(value, MEMBERS_PREFIX)?;
        let mut r = Reader::new(&raw);
        if r.take(1)? != [1] {
            return Err(CodecError::Corrupt("unknown group version"));
        }
        let mut set = Self::default();
        for _ in 0..r.count(1)? {
            let len = r.count(1)?;
            if len > MAX_REPOSITORY {
                return Err(CodecError::Corrupt("repository name too long"));
            }
            let repo = std::str::from_utf8(r.take(len)?)
                .map_err(|_| CodecError::Corrupt("repository is not UTF-8"))?;
            set.repos.push(repo.into());
        }
        let repos = set.repos.len() as u64;
        let mut previous = 0i64;
        let mut member = |r: &mut Reader| -> Result<Member, CodecError> {
            let since = second(previous.saturating_add(r.get_signed()?))?;
            previous = since;
            let repo = r.get()?;
            if repo > repos {
                return Err(CodecError::Corrupt("repository out of range"));
            }
            Ok(Member {
                since,
                repo: repo as u32,
            })
        };
        let n = r.count(3)?;
        set.nums.reserve_exact(n);
        let mut last: Option<u64> = None;
        for _ in 0..n {
            let gap = r.get()?;
            let id = match last {
                None => Some(gap),
                Some(p) => p.checked_add(gap).and_then(|v| v.checked_add(1)),
            }
            .ok_or(CodecError::Corrupt("job id overflows 64 bits"))?;
            set.nums.push((id, member(&mut r)?));
            last = Some(id);
        }
        for _ in 0..r.count(4)? {
            let len = r.count(1)?;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| CodecError::Corrupt("job id is not UTF-8"))?;
            if name.is_empty() || numeric(name).is_some() {
                return Err(CodecError::Corrupt(
                    "numeric or empty job id stored as text",
                ));
            }
            if set.names.last().is_some_and(|(last, _)| **last >= *name) {
                return Err(CodecError::Corrupt("job ids out of order"));
            }
            let m = member(&mut r)?;
            set.names.push((name.into(), m));
        }
        if r.remaining() != 0 {
            return Err(CodecError::Corrupt("trailing bytes"));
        }
        Ok(set)
    }
}
