//! Which reservations to check against GitHub, and what GitHub's answer about a job means.

use crate::domain::hra::{Hra, HraKey};
use chrono::{DateTime, TimeDelta, Utc};
use std::{collections::HashSet, sync::Arc};

/// A reservation old enough to be checked: named by a job whose repository is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stale {
    /// Its HRA.
    pub key: HraKey,
    /// The job id (the reservation's name).
    pub job: Arc<str>,
    /// `OWNER/REPO`.
    pub repository: Arc<str>,
    /// When the reservation took effect.
    pub since: DateTime<Utc>,
}

/// What GitHub said of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobCheck {
    /// `completed`: the reservation completes as the job's `completed` event would.
    Completed,
    /// 404: the job (or its repository) is gone; the reservation completes too.
    Gone,
    /// Still waiting or running: kept, checked again later.
    Kept,
}

impl JobCheck {
    /// The label of `batch_scaler_verified_reservations_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Gone => "gone",
            Self::Kept => "kept",
        }
    }

    /// What an answer to `GET /repos/{owner}/{repo}/actions/jobs/{id}` means: `None` when it
    /// says nothing of the job (an error: ask again later). An unknown status keeps the
    /// reservation: only `completed` (or 404) ends one.
    pub fn of_answer(http_status: u16, job_status: Option<&str>) -> Option<Self> {
        match (http_status, job_status) {
            (404, _) => Some(Self::Gone),
            (200, Some("completed")) => Some(Self::Completed),
            (200, Some(_)) => Some(Self::Kept),
            _ => None,
        }
    }
}

/// The reservations of `hra` that have existed at least `verify_after` at `now`, are not
/// expired, name a job of known repository, and are due (`next_check` gives the time a job
/// already found running is checked again). A grouped job counts from when it was queued,
/// with the repository its group keeps.
pub fn stale_reservations(
    hra: &Hra,
    now: DateTime<Utc>,
    verify_after: TimeDelta,
    next_check: impl Fn(&HraKey, &str) -> Option<DateTime<Utc>>,
) -> Vec<Stale> {
    let old_enough = |since: DateTime<Utc>| {
        since
            .checked_add_signed(verify_after)
            .is_some_and(|due| due <= now)
    };
    let due = |job: &str| next_check(&hra.key, job).is_none_or(|at| at <= now);
    let mut stale = Vec::new();
    for r in hra
        .capacity_reservations
        .iter()
        .filter(|r| r.expiration_time > now)
    {
        if let Some(members) = hra.groups.members(&r.name) {
            for m in members.iter() {
                let since = DateTime::from_timestamp(m.since, 0).unwrap_or(now);
                let Some(repository) = m.repository else {
                    continue;
                };
                if old_enough(since) && due(&m.job) {
                    stale.push(Stale {
                        key: hra.key.clone(),
                        job: m.job,
                        repository,
                        since,
                    });
                }
            }
            continue;
        }
        if r.name.is_empty() || !old_enough(r.effective_time) {
            continue;
        }
        let Some(repository) = hra.job_repositories.get(&r.name) else {
            continue;
        };
        if due(&r.name) {
            stale.push(Stale {
                key: hra.key.clone(),
                job: Arc::from(r.name.as_str()),
                repository: repository.clone(),
                since: r.effective_time,
            });
        }
    }
    stale
}

/// Every job holding a reservation of `hra`, named or grouped.
pub fn reserved_jobs(hra: &Hra) -> HashSet<Arc<str>> {
    let mut jobs = HashSet::new();
    for r in &hra.capacity_reservations {
        match hra.groups.members(&r.name) {
            Some(members) => jobs.extend(members.iter().map(|m| m.job)),
            None if !r.name.is_empty() => {
                jobs.insert(Arc::from(r.name.as_str()));
            }
            None => {}
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{hra::CapacityReservation, job_repos::JobRepos};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn reservation(name: &str, from: i64, to: i64) -> CapacityReservation {
        CapacityReservation {
            name: name.into(),
            effective_time: t(from),
            expiration_time: t(to),
            replicas: 1,
        }
    }

    #[test]
    fn only_old_live_job_reservations_of_known_repository_that_are_due() {
        let list = vec![
            reservation("1", 0, 5000),    // old enough
            reservation("2", 0, 5000),    // no repository known
            reservation("", 0, 5000),     // job-less
            reservation("3", 0, 100),     // expired
            reservation("4", 1000, 5000), // too young
            reservation("5", 0, 5000),    // checked recently: not due
        ];
        let added: Vec<(Arc<str>, Arc<str>)> = ["1", "3", "4", "5"]
            .iter()
            .map(|j| (Arc::from(*j), Arc::from("o/r")))
            .collect();
        let mut hra = Hra {
            key: HraKey::new("ns", "h"),
            resource_version: "1".into(),
            min_replicas: None,
            max_replicas: None,
            capacity_reservations: list,
            applied_batches: Default::default(),
            trigger_duration: None,
            finished_jobs: Default::default(),
            job_repositories: JobRepos::default(),
            groups: Default::default(),
            object_bytes: 0,
            warm_profile: None,
        };
        hra.job_repositories = JobRepos::default().next(
            &added,
            hra.capacity_reservations.iter().map(|r| r.name.as_str()),
        );
        let stale = stale_reservations(&hra, t(1200), TimeDelta::seconds(900), |_, job| {
            (job == "5").then(|| t(1500))
        });
        let jobs: Vec<&str> = stale.iter().map(|s| &*s.job).collect();
        assert_eq!(jobs, ["1"]);
        assert_eq!(&*stale[0].repository, "o/r");
        assert_eq!(stale[0].since, t(0));
    }

    #[test]
    fn reads_answers() {
        assert_eq!(
            JobCheck::of_answer(200, Some("completed")),
            Some(JobCheck::Completed)
        );
        assert_eq!(JobCheck::of_answer(404, None), Some(JobCheck::Gone));
        for s in [
            "queued",
            "in_progress",
            "waiting",
            "pending",
            "requested",
            "new",
        ] {
            assert_eq!(
                JobCheck::of_answer(200, Some(s)),
                Some(JobCheck::Kept),
                "{s}"
            );
        }
        for code in [401, 403, 500, 502] {
            assert_eq!(JobCheck::of_answer(code, None), None);
        }
        assert_eq!(JobCheck::of_answer(200, None), None);
    }
}
