//! The planner as first written, on a plain `Vec` with every reservation materialized: the
//! oracle the run-length planner is property-tested against.

use super::*;

pub(super) fn plan(
    hra: &Hra,
    events: &[PlanEvent],
    now: DateTime<Utc>,
    default_life: TimeDelta,
) -> Plan {
    let expires = |e: &PlanEvent| {
        let life = e
            .duration
            .unwrap_or_else(|| hra.reservation_life(default_life));
        saturating_add(now, life)
    };
    let read = &hra.capacity_reservations;
    let before = read.len();
    let mut list = extend_backlog(read, hra.max_replicas, now);
    list.retain(|r| r.expiration_time > now);
    let mut counts = Counts {
        before: before as u64,
        expired: (before - list.len()) as u64,
        ..Counts::default()
    };
    let mut finished_jobs = Vec::new();
    for event in events {
        match &event.job {
            Some(job) if event.amount > 0 && hra.finished_jobs.contains(job, now) => {
                counts.ignored_finished += 1;
            }
            Some(job) => apply_job_event(
                &mut list,
                event,
                job,
                expires(event),
                (now, &mut counts, &mut finished_jobs),
            ),
            None => apply_event(&mut list, event, now, expires(event), &mut counts),
        }
    }
    counts.after = list.len() as u64;
    Plan {
        reservations: list,
        counts,
        finished_jobs,
        promoted_repositories: Vec::new(),
    }
}

/// Step 1 (reference issue #2254): entries at index `maxReplicas` and beyond restart at `now`
/// keeping their own life, whether or not they had expired.
fn extend_backlog(
    read: &[CapacityReservation],
    max_replicas: Option<i32>,
    now: DateTime<Utc>,
) -> Vec<CapacityReservation> {
    let mut list = read.to_vec();
    let Some(max) = max_replicas else {
        return list;
    };
    // A negative maximum crashes the reference; it is treated as 0.
    let max = usize::try_from(max.max(0)).unwrap_or(usize::MAX);
    if list.len() <= max {
        return list;
    }
    for entry in &mut list[max..] {
        let life = entry.life();
        entry.effective_time = now;
        entry.expiration_time = saturating_add(now, life);
    }
    list
}

/// Step 4 for an event naming its job: `+1` adds one reservation named after the job unless
/// it exists or the job already finished; `-1` removes that reservation wherever it is, and
/// remembers the job as finished. `completed` counts removals that happened.
fn apply_job_event(
    list: &mut Vec<CapacityReservation>,
    event: &PlanEvent,
    job: &Arc<str>,
    expiration_time: DateTime<Utc>,
    (now, counts, finished): (DateTime<Utc>, &mut Counts, &mut Vec<Arc<str>>),
) {
    let position = list.iter().position(|r| r.name == **job);
    if event.amount > 0 {
        if finished.contains(job) {
            counts.ignored_finished += 1;
            return;
        }
        if position.is_some() {
            return;
        }
        list.push(CapacityReservation {
            name: job.to_string(),
            effective_time: now,
            expiration_time,
            replicas: 1,
        });
        counts.added += 1;
    } else if event.amount < 0 {
        if let Some(i) = position {
            list.remove(i);
            counts.completed += 1;
        }
        if !finished.contains(job) {
            finished.push(job.clone());
        }
    }
}

/// Step 4 for one event without a job id (the reference behaviour).
fn apply_event(
    list: &mut Vec<CapacityReservation>,
    event: &PlanEvent,
    now: DateTime<Utc>,
    expiration_time: DateTime<Utc>,
    counts: &mut Counts,
) {
    match event.amount {
        0 => {}
        amount if amount > 0 => {
            let n = amount as u64;
            list.extend((0..n).map(|_| CapacityReservation {
                name: String::new(),
                effective_time: now,
                expiration_time,
                replicas: 1,
            }));
            counts.added += n;
        }
        amount => {
            let n = amount.unsigned_abs();
            match usize::try_from(n) {
                Ok(n) if list.len() > n => {
                    list.drain(..n);
                }
                _ => list.clear(),
            }
            counts.completed += n;
        }
    }
}
