//! Workflow jobs, routes and job ledger figures, protobuf ↔ domain.

use super::{
    clamp, duration_from_pb, duration_to_pb, pb, seconds_to_pb, target_ref, timestamp,
    timestamp_from_pb,
};
use crate::domain::{
    hra::HraKey,
    job_times::JobTimes,
    ledger::{Advice, Durations, Figures},
    routing::{Route, WorkflowJob},
    validate::FieldError,
};
use chrono::{TimeDelta, Utc};
use std::time::Duration;

/// A job's times from the wire (checked when the event is validated).
pub(super) fn job_times(t: &pb::JobTimes) -> Result<JobTimes, FieldError> {
    let time = |field: &str, t: Option<&prost_types::Timestamp>| {
        t.map(|t| timestamp_from_pb(field, t)).transpose()
    };
    Ok(JobTimes {
        created_at: time("job_times.created_at", t.created_at.as_ref())?,
        started_at: time("job_times.started_at", t.started_at.as_ref())?,
        completed_at: time("job_times.completed_at", t.completed_at.as_ref())?,
        runner_name: t.runner_name.clone(),
        ran: t.ran,
    })
}

/// The wire form of a job's times.
pub(super) fn wire_job_times(t: &JobTimes) -> pb::JobTimes {
    pb::JobTimes {
        created_at: t.created_at.map(timestamp),
        started_at: t.started_at.map(timestamp),
        completed_at: t.completed_at.map(timestamp),
        runner_name: t.runner_name.clone(),
        ran: t.ran,
    }
}

/// Validates a wire workflow job.
pub fn workflow_job(j: pb::WorkflowJob) -> Result<WorkflowJob, FieldError> {
    let time = |field: &str, t: Option<&prost_types::Timestamp>| {
        t.map(|t| timestamp_from_pb(field, t)).transpose()
    };
    WorkflowJob {
        duration: j.duration.as_ref().map(duration_from_pb).transpose()?,
        created_at: time("created_at", j.created_at.as_ref())?,
        started_at: time("started_at", j.started_at.as_ref())?,
        completed_at: time("completed_at", j.completed_at.as_ref())?,
        runner_name: j.runner_name,
        action: j.action,
        repository: j.repository,
        owner_type: j.owner_type,
        enterprise: j.enterprise,
        labels: j.labels,
        conclusion: j.conclusion,
        has_runner: j.has_runner,
        job_id: j.job_id,
        event_id: j.event_id,
    }
    .validate(Utc::now())
}

/// `WorkflowJob.wait_timeout` (ScaleJobs): unset or zero waits for the final outcome.
pub fn wait_timeout(d: Option<&prost_types::Duration>) -> Result<Option<Duration>, FieldError> {
    let Some(d) = d.filter(|d| d.seconds != 0 || d.nanos != 0) else {
        return Ok(None);
    };
    let (Ok(seconds), Ok(nanos)) = (u64::try_from(d.seconds), u32::try_from(d.nanos)) else {
        return Err(FieldError::new(
            "wait_timeout",
            format!("must not be negative, got {}s {}ns", d.seconds, d.nanos),
        ));
    };
    Ok(Some(Duration::new(seconds, nanos.min(999_999_999))))
}

/// The wire form of a route; `default_life` is the life used when neither the job nor the
/// target's trigger gives one.
pub fn route(r: &Route, default_life: TimeDelta) -> pb::Route {
    pb::Route {
        target: r.target.as_ref().map(target_ref),
        amount: r.amount,
        duration: Some(duration_to_pb(r.duration.unwrap_or(default_life))),
        reason: r.reason.clone(),
        also_matched: r.also_matched.iter().map(target_ref).collect(),
        starts: r.starts,
    }
}

fn summary(d: &Durations) -> pb::DurationSummary {
    let secs = seconds_to_pb;
    let q = |q: f64| d.quantile(q).map(secs);
    pb::DurationSummary {
        count: d.count,
        sum: Some(secs(d.sum)),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: (d.count > 0).then(|| secs(d.max)),
    }
}

/// The wire form of an HRA's job ledger figures, with the HRA's trigger duration (if any)
/// and the advice for the duration its reservations live.
pub fn job_stats(
    key: &HraKey,
    f: &Figures,
    trigger_duration: Option<TimeDelta>,
    advice: &Advice,
) -> pb::JobStats {
    pb::JobStats {
        target: Some(target_ref(key)),
        since: Some(timestamp(f.since)),
        jobs_waiting: clamp(f.jobs_waiting),
        jobs_running: clamp(f.jobs_running),
        jobs_completed: f.sums.completed,
        wait: Some(summary(&f.sums.wait)),
        run: Some(summary(&f.sums.run)),
        reserved_runner_seconds: f.sums.reserved_seconds,
        busy_runner_seconds: f.busy_seconds(),
        expired_before_start: f.sums.expired_before_start,
        expired_while_running: f.sums.expired_while_running,
        warm_claimed: f.sums.warm_claimed,
        warm_expired_unclaimed: f.sums.warm_expired,
        trigger_duration: trigger_duration.map(duration_to_pb),
        suggested_duration: advice.suggested.map(duration_to_pb),
        advice: advice.text.clone(),
    }
}
