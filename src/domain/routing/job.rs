//! A workflow job as routing sees it: validated fields, and what its action means (+1, -1,
//! or ignored, with why).

use crate::domain::{
    event::MAX_ID_LEN,
    job_times::check_times,
    validate::{FieldError, quote},
};
use chrono::{DateTime, TimeDelta, Utc};

/// Most labels one job may carry.
pub const MAX_LABELS: usize = 64;
/// Longest `repository` (GitHub's own limits make `OWNER/REPO` at most 140 bytes).
pub const MAX_REPOSITORY_LEN: usize = 256;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 256;

/// The fields of a GitHub `workflow_job` webhook that routing needs, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkflowJob {
    /// `action`: `queued`, `completed`, `in_progress`, …
    pub action: String,
    /// `repository.full_name`, `OWNER/REPO`.
    pub repository: String,
    /// `repository.owner.type`: `Organization` or `User`.
    pub owner_type: String,
    /// `enterprise.slug`; empty when none.
    pub enterprise: String,
    /// `workflow_job.labels`.
    pub labels: Vec<String>,
    /// `workflow_job.conclusion`; empty until completed.
    pub conclusion: String,
    /// `workflow_job.runner_id` is not null.
    pub has_runner: bool,
    /// `workflow_job.id`.
    pub job_id: String,
    /// `X-GitHub-Delivery`.
    pub event_id: String,
    /// Overrides the HRA trigger's duration.
    pub duration: Option<TimeDelta>,
    /// `workflow_job.created_at`.
    pub created_at: Option<DateTime<Utc>>,
    /// `workflow_job.started_at` (a start only on `in_progress` and `completed`).
    pub started_at: Option<DateTime<Utc>>,
    /// `workflow_job.completed_at`.
    pub completed_at: Option<DateTime<Utc>>,
    /// `workflow_job.runner_name`.
    pub runner_name: String,
}

impl WorkflowJob {
    /// Checks the fields: an action, `OWNER/REPO`, at most 64 labels of at most 256 bytes,
    /// a job id for queued and completed jobs, and times from 2008 to an hour after `now`.
    pub fn validate(self, now: DateTime<Utc>) -> Result<Self, FieldError> {
        if self.action.is_empty() {
            return Err(FieldError::new(
                "action",
                "must be set (e.g. queued, completed)",
            ));
        }
        match self.repository.split_once('/') {
            Some((owner, repo))
                if !owner.is_empty()
                    && !repo.is_empty()
                    && !repo.contains('/')
                    && self.repository.len() <= MAX_REPOSITORY_LEN => {}
            _ => {
                return Err(FieldError::new(
                    "repository",
                    format!(
                        "must be OWNER/REPO of at most {MAX_REPOSITORY_LEN} bytes, got {}",
                        quote(&self.repository)
                    ),
                ));
            }
        }
        if self.labels.len() > MAX_LABELS {
            return Err(FieldError::new(
                "labels",
                format!("at most {MAX_LABELS} labels, got {}", self.labels.len()),
            ));
        }
        if let Some((i, long)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, l)| l.len() > MAX_LABEL_LEN)
        {
            return Err(FieldError::new(
                &format!("labels[{i}]"),
                format!("at most {MAX_LABEL_LEN} bytes, got {}", long.len()),
            ));
        }
        for (field, id) in [("job_id", &self.job_id), ("event_id", &self.event_id)] {
            if id.len() > MAX_ID_LEN {
                return Err(FieldError::new(
                    field,
                    format!("at most {MAX_ID_LEN} bytes, got {}", id.len()),
                ));
            }
        }
        let times = [self.created_at, self.started_at, self.completed_at];
        check_times("", times, &self.runner_name, now)?;
        if matches!(self.action.as_str(), "queued" | "completed") && self.job_id.is_empty() {
            return Err(FieldError::new(
                "job_id",
                format!("required for a {} job (workflow_job.id)", self.action),
            ));
        }
        Ok(self)
    }

    /// The repository's owner (`OWNER` of `OWNER/REPO`).
    pub fn owner(&self) -> &str {
        self.repository
            .split_once('/')
            .map_or("", |(owner, _)| owner)
    }

    /// True for a job's start (`in_progress` with its job id): it scales nothing, but on the
    /// started clock it starts the life of the job's reservation.
    pub fn starts(&self) -> bool {
        self.action == "in_progress" && !self.job_id.is_empty()
    }

    /// When the job started, for its start: `started_at`, else `arrived` (the delivery's
    /// arrival).
    pub fn start_time(&self, arrived: DateTime<Utc>) -> DateTime<Utc> {
        self.started_at.unwrap_or(arrived)
    }

    /// What the action means: `Ok(+1 or -1)`, or `Err(why it is ignored)`.
    pub fn amount(&self) -> Result<i32, String> {
        match (self.action.as_str(), self.conclusion.as_str()) {
            ("queued", _) => Ok(1),
            ("completed", "skipped") => Err("ignored: the job was skipped".into()),
            ("completed", "success") if !self.has_runner => Err(
                "ignored: completed with success but without a runner (a check run, not a self-hosted job)"
                    .into(),
            ),
            ("completed", _) => Ok(-1),
            (other, _) => Err(format!("ignored: action {other:?} does not scale")),
        }
    }
}
