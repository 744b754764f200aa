//! Protobuf ↔ domain, in one place: wire events into validated [`ScaleEvent`]s, reports and
//! HRAs into wire results and targets; workflow jobs, routes and job figures in `jobs.rs`.

mod jobs;
pub use jobs::{job_stats, route, wait_timeout, workflow_job};

use super::pb;
use crate::{
    domain::{
        duration::saturating_delta,
        event::{MAX_DURATION, Origin, RawScaleEvent, ScaleEvent},
        hra::{Hra, HraKey},
        report::{BatchReport, Outcome},
        validate::FieldError,
    },
    ops::metrics::Snapshot,
};
use chrono::{DateTime, TimeDelta, Utc};

/// Validates a wire event; a missing or zero duration is left to the plan.
pub fn scale_event(e: pb::ScaleEvent) -> Result<ScaleEvent, FieldError> {
    let raw = RawScaleEvent {
        duration: e.duration.as_ref().map(duration_from_pb).transpose()?,
        namespace: e.namespace,
        name: e.name,
        amount: e.amount,
        event_id: e.event_id,
        job_id: e.job_id,
        repository: e.repository,
        started: e
            .started_at
            .as_ref()
            .map(|t| timestamp_from_pb("started_at", t))
            .transpose()?,
        times: e.job_times.as_ref().map(jobs::job_times).transpose()?,
    };
    ScaleEvent::validate(raw, Utc::now())
}

/// The wire form of a validated event (to forward it).
pub fn wire_event(event: &ScaleEvent) -> pb::ScaleEvent {
    pb::ScaleEvent {
        namespace: event.key.namespace.clone(),
        name: event.key.name.clone(),
        amount: event.amount,
        duration: event.duration.map(duration_to_pb),
        event_id: event.event_id.clone().unwrap_or_default(),
        job_id: event.job_id.clone().unwrap_or_default(),
        repository: event.repository.as_deref().unwrap_or_default().to_owned(),
        started_at: event.started.map(timestamp),
        job_times: event.times.as_ref().map(jobs::wire_job_times),
    }
}

/// The wire form of an event's origin.
pub fn wire_origin(origin: Origin) -> pb::EventOrigin {
    match origin {
        Origin::Producer => pb::EventOrigin::Producer,
        Origin::Recovered => pb::EventOrigin::Recovered,
        Origin::Verified => pb::EventOrigin::Verified,
    }
}

/// An event origin from the wire (unknown values: a producer's).
pub fn origin(wire: i32) -> Origin {
    match pb::EventOrigin::try_from(wire) {
        Ok(pb::EventOrigin::Recovered) => Origin::Recovered,
        Ok(pb::EventOrigin::Verified) => Origin::Verified,
        _ => Origin::Producer,
    }
}

pub(super) fn target_ref(key: &HraKey) -> pb::TargetRef {
    pb::TargetRef {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    }
}

/// A protobuf duration as a chrono one: not negative, nanos below 1e9, at most 7 days.
pub fn duration_from_pb(d: &prost_types::Duration) -> Result<TimeDelta, FieldError> {
    let invalid = |msg: String| FieldError::new("duration", msg);
    if d.seconds < 0 || d.nanos < 0 {
        return Err(invalid(format!(
            "must not be negative, got {}s {}ns",
            d.seconds, d.nanos
        )));
    }
    if d.nanos >= 1_000_000_000 {
        return Err(invalid(format!("nanos must be below 1e9, got {}", d.nanos)));
    }
    TimeDelta::try_seconds(d.seconds)
        .and_then(|s| s.checked_add(&TimeDelta::nanoseconds(i64::from(d.nanos))))
        .filter(|t| *t <= MAX_DURATION)
        .ok_or_else(|| {
            invalid(format!(
                "must be at most 7 days (604800s), got {}s",
                d.seconds
            ))
        })
}

/// Seconds as a protobuf duration (to the millisecond).
pub fn seconds_to_pb(s: f64) -> prost_types::Duration {
    duration_to_pb(TimeDelta::milliseconds((s * 1000.0).round() as i64))
}

/// A chrono duration as a protobuf one.
pub fn duration_to_pb(d: TimeDelta) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.num_seconds(),
        nanos: d.subsec_nanos(),
    }
}

/// A protobuf timestamp as a chrono time (nanos within a second), naming `field` if not.
pub fn timestamp_from_pb(
    field: &str,
    t: &prost_types::Timestamp,
) -> Result<DateTime<Utc>, FieldError> {
    u32::try_from(t.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("not a valid time: {}s {}ns", t.seconds, t.nanos),
            )
        })
}

/// A chrono time as a protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(super) fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The wire form of a report; `missed` is the watcher's own count.
pub fn batch_result(r: &BatchReport, missed: u64) -> pb::BatchResult {
    let outcome = match r.outcome {
        Outcome::Applied => pb::Outcome::Applied,
        Outcome::Retrying => pb::Outcome::Retrying,
        Outcome::Failed => pb::Outcome::Failed,
        Outcome::DryRun => pb::Outcome::DryRun,
    };
    pb::BatchResult {
        namespace: r.key.namespace.clone(),
        name: r.key.name.clone(),
        outcome: outcome.into(),
        before: clamp(r.counts.before),
        expired: clamp(r.counts.expired),
        added: clamp(r.counts.added),
        completed: clamp(r.counts.completed),
        after: clamp(r.counts.after),
        events: clamp(r.events),
        attempt: r.attempt,
        error: r.error.clone().unwrap_or_default(),
        at: Some(timestamp(r.at)),
        batch_id: r.batch_id.clone(),
        missed,
        recovered: clamp(r.recovered),
        verified: clamp(r.verified),
        failed_job_ids: r.failed_jobs.iter().map(|j| j.to_string()).collect(),
        finished_jobs_forgotten: r.finished_jobs_forgotten,
        ignored_finished_jobs: u32::try_from(r.counts.ignored_finished).unwrap_or(u32::MAX),
        started: clamp(r.counts.started),
        warm_added: clamp(r.counts.warm_added),
        warm_claimed: clamp(r.counts.warm_claimed),
        warm_expired: clamp(r.counts.warm_expired),
    }
}

/// The wire form of an HRA, `reserved_replicas` counted at `now`.
pub fn target(hra: Hra, now: DateTime<Utc>) -> pb::Target {
    let reserved_replicas = hra.reserved_replicas(now);
    let reservation_units = u32::try_from(hra.units()).unwrap_or(u32::MAX);
    let groups = hra.groups;
    pb::Target {
        reservation_units,
        last_batch: None,
        job_wait_p90: None,
        utilization: None,
        jobs_waiting: 0,
        jobs_expired_before_start: 0,
        namespace: hra.key.namespace,
        name: hra.key.name,
        min_replicas: hra.min_replicas,
        max_replicas: hra.max_replicas,
        capacity_reservations: hra
            .capacity_reservations
            .into_iter()
            .map(|r| pb::CapacityReservation {
                grouped_jobs: groups
                    .cached(&r.name)
                    .map_or(0, |m| u32::try_from(m.len()).unwrap_or(u32::MAX)),
                name: r.name,
                effective_time: Some(timestamp(r.effective_time)),
                expiration_time: Some(timestamp(r.expiration_time)),
                replicas: r.replicas,
            })
            .collect(),
        resource_version: hra.resource_version,
        reserved_replicas,
        trigger_duration: hra.trigger_duration.map(duration_to_pb),
    }
}

/// The figures of `GetStats`: metric counters and the batcher's gauges, read at `now`.
/// `cluster` is (live members, HRAs this replica owns).
pub fn stats(
    snapshot: &Snapshot,
    gauges: (usize, u64, usize),
    cluster: (usize, usize),
    now: DateTime<Utc>,
) -> pb::Stats {
    let (pending_hras, pending_events, in_flight) = gauges;
    let [applied, retrying, failed, dry_run] = snapshot.batches;
    let latency = |d: std::time::Duration| Some(duration_to_pb(saturating_delta(d)));
    pb::Stats {
        at: Some(timestamp(now)),
        started: Some(timestamp(snapshot.started)),
        events_accepted: snapshot.events_accepted,
        events_duplicate: snapshot.events_duplicate,
        events_rejected: snapshot.events_rejected,
        batches_applied: applied,
        batches_retrying: retrying,
        batches_failed: failed,
        batches_dry_run: dry_run,
        write_conflicts: snapshot.write_conflicts,
        retries: snapshot.retries,
        pending_hras: clamp(pending_hras as u64),
        pending_events,
        applies_in_flight: clamp(in_flight as u64),
        apply_latency_p50: latency(snapshot.apply_latency.0),
        apply_latency_p99: latency(snapshot.apply_latency.1),
        members: clamp(cluster.0 as u64),
        owned_hras: clamp(cluster.1 as u64),
        deliveries_recovered: snapshot.deliveries_recovered,
        reservations_verified: snapshot.reservations_verified,
        reservations_completed: snapshot.reservations_completed,
        scale_out_off: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{hra::HraKey, planner::Counts};

    fn event(namespace: &str, name: &str, amount: i32) -> pb::ScaleEvent {
        pb::ScaleEvent {
            namespace: namespace.into(),
            name: name.into(),
            amount,
            ..Default::default()
        }
    }

    fn dur(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos })
    }

    #[test]
    fn wire_durations_are_checked_and_defaulted() {
        let given = pb::ScaleEvent {
            duration: dur(90, 500_000_000),
            event_id: "d1".into(),
            ..event("a", "b", 0)
        };
        let e = scale_event(given).unwrap();
        assert_eq!(e.duration, Some(TimeDelta::milliseconds(90_500)));
        assert_eq!(e.event_id.as_deref(), Some("d1"));
        let zero = pb::ScaleEvent {
            duration: dur(0, 0),
            ..event("a", "b", -1)
        };
        assert_eq!(scale_event(zero).unwrap().duration, None);
        for d in [
            dur(-1, 0),
            dur(0, -1),
            dur(604_800, 1),
            dur(i64::MAX, 0),
            dur(1, 1_000_000_000),
        ] {
            let e = pb::ScaleEvent {
                duration: d,
                ..event("a", "b", 1)
            };
            assert_eq!(scale_event(e).unwrap_err().field, "duration", "{d:?}");
        }
        let week = pb::ScaleEvent {
            duration: dur(604_800, 0),
            ..event("a", "b", 1)
        };
        assert!(scale_event(week).is_ok());
        assert_eq!(scale_event(event("a", "B", 1)).unwrap_err().field, "name");
    }

    #[test]
    fn wire_form_carries_every_field() {
        let r = BatchReport {
            key: HraKey::new("ns", "n"),
            outcome: Outcome::Retrying,
            counts: Counts {
                added: 3,
                ..Counts::default()
            },
            events: 1,
            attempt: 2,
            error: Some("boom".into()),
            at: Utc::now(),
            batch_id: "b3".into(),
            recovered: 0,
            verified: 0,
            failed_jobs: Vec::new(),
            finished_jobs_forgotten: 0,
        };
        let pb = batch_result(&r, 7);
        assert_eq!(pb.outcome, pb::Outcome::Retrying as i32);
        assert_eq!((pb.added, pb.attempt, pb.missed), (3, 2, 7));
        assert_eq!(pb.error, "boom");
        assert_eq!(pb.at.unwrap().seconds, r.at.timestamp());
        assert_eq!(pb.batch_id, "b3");
    }
}
