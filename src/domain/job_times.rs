//! A workflow job's times as GitHub reported them, carried with its event for the job ledger
//! (they change no reservation), and what they make of the event for the ledger.

use super::{
    ledger::JobEvent,
    routing::MAX_LABEL_LEN,
    validate::{FieldError, check_job_time},
};
use chrono::{DateTime, Utc};

/// `workflow_job.created_at`, `started_at`, `completed_at`, `runner_name`, and whether it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobTimes {
    /// `created_at`.
    pub created_at: Option<DateTime<Utc>>,
    /// `started_at` (a start only on `in_progress` and `completed`).
    pub started_at: Option<DateTime<Utc>>,
    /// `completed_at`.
    pub completed_at: Option<DateTime<Utc>>,
    /// `runner_name`.
    pub runner_name: String,
    /// The job ran on a runner (`runner_id` set): a job cancelled while queued did not.
    pub ran: bool,
}

impl JobTimes {
    /// Checks the times and the runner name (see [`check_times`]), naming
    /// `job_times.<field>`.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), FieldError> {
        let times = [self.created_at, self.started_at, self.completed_at];
        check_times("job_times.", times, &self.runner_name, now)
    }
}

/// Checks a job's `created_at`, `started_at` and `completed_at` (each from 2008 to an hour
/// after `now`) and its `runner_name` (at most 256 bytes), naming each field after `prefix`.
pub fn check_times(
    prefix: &str,
    [created, started, completed]: [Option<DateTime<Utc>>; 3],
    runner_name: &str,
    now: DateTime<Utc>,
) -> Result<(), FieldError> {
    for (field, at) in [
        ("created_at", created),
        ("started_at", started),
        ("completed_at", completed),
    ] {
        if let Some(at) = at {
            check_job_time(&format!("{prefix}{field}"), at, now)?;
        }
    }
    if runner_name.len() > MAX_LABEL_LEN {
        return Err(FieldError::new(
            &format!("{prefix}runner_name"),
            format!("at most {MAX_LABEL_LEN} bytes, got {}", runner_name.len()),
        ));
    }
    Ok(())
}

/// What a job's event received at `now` tells the ledger: `+1` its `queued`, `-1` its
/// `completed`, `0` its start (at `started`, else its `started_at`, else `now`). Without
/// times a completion counts as run (producers that send none: its start, if seen, times
/// it).
pub fn ledger_event(
    amount: i32,
    started: Option<DateTime<Utc>>,
    times: Option<&JobTimes>,
    now: DateTime<Utc>,
) -> JobEvent {
    let created = times.and_then(|t| t.created_at);
    match amount {
        a if a > 0 => JobEvent::Queued { created },
        a if a < 0 => JobEvent::Completed {
            created,
            started: times.and_then(|t| t.started_at),
            completed: times.and_then(|t| t.completed_at).unwrap_or(now),
            ran: times.is_none_or(|t| t.ran),
        },
        _ => JobEvent::Started {
            created,
            started: started
                .or_else(|| times.and_then(|t| t.started_at))
                .unwrap_or(now),
        },
    }
}
