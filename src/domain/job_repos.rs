//! The repository of each job-named reservation, kept in the HRA itself (one annotation,
//! written in the same conditional write as the reservations), so that any replica and a
//! restarted process can check the reservation against GitHub. The value is compact JSON
//! grouping job ids by repository, `{"octo-org/app":["123","456"]}`; it holds only jobs that
//! still have a reservation, oldest reservation first, within [`MAX_JOB_REPOS_BYTES`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

/// Largest annotation value written. With the finished-jobs and applied-batches annotations
/// the total stays under the 256 KiB Kubernetes allows; reservations beyond it keep no
/// repository and are left to expire.
pub const MAX_JOB_REPOS_BYTES: usize = 48 * 1024;

/// The annotation value could not be read (another writer changed it).
#[derive(Debug, thiserror::Error)]
#[error("job-repositories annotation is not a JSON object of repository -> [job_id]: {0}")]
pub struct JobReposParseError(#[from] serde_json::Error);

/// Each job's repository, by job id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobRepos(HashMap<Arc<str>, Arc<str>>);

impl JobRepos {
    /// Reads the annotation value (empty: none).
    pub fn parse(value: &str) -> Result<Self, JobReposParseError> {
        if value.is_empty() {
            return Ok(Self::default());
        }
        let grouped: BTreeMap<String, Vec<String>> = serde_json::from_str(value)?;
        let mut map = HashMap::new();
        for (repo, jobs) in grouped {
            let repo: Arc<str> = repo.into();
            for job in jobs {
                map.insert(Arc::from(job), repo.clone());
            }
        }
        Ok(Self(map))
    }

    /// The annotation value: repositories sorted, each job list sorted (empty: removed).
    pub fn format(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (job, repo) in &self.0 {
            grouped.entry(repo).or_default().push(job);
        }
        for jobs in grouped.values_mut() {
            jobs.sort_unstable();
        }
        serde_json::to_string(&grouped).unwrap_or_default()
    }

    /// The repository of `job`, if known.
    pub fn get(&self, job: &str) -> Option<&Arc<str>> {
        self.0.get(job)
    }

    /// How many jobs have a known repository.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no job has a known repository.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What a write carries: the repository of every job-named reservation whose name is in
    /// `reservations` (the list written, in order) known from `self` (the HRA as read) or
    /// `added` (the batch's events), oldest reservation first until the value would pass
    /// [`MAX_JOB_REPOS_BYTES`].
    pub fn next<'a>(
        &self,
        added: &[(Arc<str>, Arc<str>)],
        reservations: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        if self.is_empty() && added.is_empty() {
            return Self::default();
        }
        let added: HashMap<&str, &Arc<str>> = added.iter().map(|(j, r)| (&**j, r)).collect();
        let mut next = HashMap::new();
        let mut groups: HashSet<Arc<str>> = HashSet::new();
        // `{}` plus, per repository, `"repo":[]` and a comma; per job, `"job"` and a comma.
        let mut bytes = 2usize;
        for job in reservations.into_iter().filter(|name| !name.is_empty()) {
            let Some(repo) = added.get(job).copied().or_else(|| self.0.get(job)) else {
                continue;
            };
            if next.contains_key(job) {
                continue;
            }
            let mut cost = job.len() + 3;
            if !groups.contains(repo) {
                cost += repo.len() + 6;
            }
            if bytes + cost > MAX_JOB_REPOS_BYTES {
                break;
            }
            bytes += cost;
            groups.insert(repo.clone());
            next.insert(Arc::from(job), repo.clone());
        }
        Self(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(job: &str, repo: &str) -> (Arc<str>, Arc<str>) {
        (job.into(), repo.into())
    }

    #[test]
    fn round_trips_grouped_by_repository() {
        let repos = JobRepos::default().next(
            &[pair("2", "o/b"), pair("1", "o/a"), pair("3", "o/a")],
            ["1", "2", "3"],
        );
        let value = repos.format();
        assert_eq!(value, r#"{"o/a":["1","3"],"o/b":["2"]}"#);
        assert_eq!(JobRepos::parse(&value).unwrap(), repos);
        assert_eq!(repos.get("2").map(|r| &**r), Some("o/b"));
        assert!(JobRepos::parse("").unwrap().is_empty());
        assert!(JobRepos::parse("[1]").is_err());
        assert_eq!(JobRepos::default().format(), "");
    }

    #[test]
    fn keeps_only_jobs_that_still_have_a_reservation() {
        let read = JobRepos::default().next(&[pair("1", "o/a"), pair("2", "o/a")], ["1", "2"]);
        // Job 1 completed, job 3 added, job 4 added without a repository, a job-less entry.
        let next = read.next(&[pair("3", "o/c")], ["2", "3", "4", ""]);
        assert_eq!(next.format(), r#"{"o/a":["2"],"o/c":["3"]}"#);
        // The batch's own word wins over what was read.
        let moved = read.next(&[pair("2", "o/z")], ["2"]);
        assert_eq!(moved.get("2").map(|r| &**r), Some("o/z"));
        // A job added and completed in the same batch leaves nothing.
        assert!(JobRepos::default().next(&[pair("5", "o/a")], []).is_empty());
    }

    #[test]
    fn stays_within_its_byte_limit_keeping_the_oldest_reservations() {
        let jobs: Vec<String> = (0..20_000).map(|i| format!("{:011}", i)).collect();
        let added: Vec<_> = jobs
            .iter()
            .map(|j| pair(j, "octo-org/a-repository"))
            .collect();
        let list = jobs.iter().map(String::as_str);
        let next = JobRepos::default().next(&added, list);
        let value = next.format();
        assert!(value.len() <= MAX_JOB_REPOS_BYTES, "{}", value.len());
        assert!(value.len() > MAX_JOB_REPOS_BYTES - 64, "{}", value.len());
        assert!(next.get(&jobs[0]).is_some());
        assert!(next.get(&jobs[19_999]).is_none());
    }
}
