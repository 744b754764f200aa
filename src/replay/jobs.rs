//! A trace's deliveries gathered per job: where routing sends it, when it was created and
//! queued, how long it ran and how late GitHub delivered each of its events.

use super::{World, trace::Delivery};
use crate::domain::namespaces::Allowlist;
use chrono::{DateTime, TimeDelta, Utc};
use std::{collections::HashMap, sync::Arc};

/// Milliseconds since the Unix epoch: the replay's clock.
pub type Ms = i64;

/// A time as replay milliseconds.
pub fn ms(t: DateTime<Utc>) -> Ms {
    t.timestamp_millis()
}

/// One job of the trace.
#[derive(Clone, Debug)]
pub struct Job {
    /// Its HRA (index into `World::hras`).
    pub hra: usize,
    /// `workflow_job.id`.
    pub id: Arc<str>,
    /// `created_at` (else its first delivery): when it starts to wait for a runner.
    pub created: Ms,
    /// When its `queued` delivery arrived (`None`: GitHub's delivery is not in the trace).
    pub queued_at: Option<Ms>,
    /// The route's duration for its reservation.
    pub duration: Option<TimeDelta>,
    /// How long it ran (`completed_at − started_at`); `None`: still running when the trace
    /// ends.
    pub run: Option<Ms>,
    /// It completed without running (cancelled while queued): it leaves the queue then.
    pub cancelled: Option<Ms>,
    /// When that completion's delivery arrived, if it scales (`-1`).
    pub cancel_delivery: Option<Ms>,
    /// The wait the trace recorded (`started_at − created_at`).
    pub recorded_wait: Option<Ms>,
    /// How late its `in_progress` and `completed` were delivered after the fact.
    pub lags: (Ms, Ms),
}

/// The jobs of a trace.
#[derive(Clone, Debug, Default)]
pub struct Jobs {
    /// Jobs routed to an HRA, in order of their first delivery.
    pub jobs: Vec<Job>,
    /// Deliveries of jobs routed to no HRA, or whose action scales nothing.
    pub unrouted: u64,
    /// The first and last delivery.
    pub span: (Ms, Ms),
}

#[derive(Default)]
struct Seen {
    hra: Option<(usize, Option<TimeDelta>)>,
    created: Option<Ms>,
    queued_at: Option<Ms>,
    started: Option<Ms>,
    completed: Option<Ms>,
    ran: bool,
    cancel_delivery: Option<Ms>,
    lags: (Ms, Ms),
    first: Ms,
}

/// Gathers the deliveries (in arrival order) per job and routes each job as the service
/// would route its deliveries.
pub fn gather(world: &World, deliveries: &[Delivery]) -> Jobs {
    let allowed = Allowlist::default();
    let mut order: Vec<Arc<str>> = Vec::new();
    let mut seen: HashMap<Arc<str>, Seen> = HashMap::new();
    let mut unrouted = 0u64;
    for d in deliveries {
        let at = ms(d.at);
        let job = &d.job;
        if job.job_id.is_empty() {
            unrouted += 1;
            continue;
        }
        let route = world.index.route(job, &allowed);
        let target = route.target.as_ref().and_then(|k| world.position(k));
        let id: Arc<str> = job.job_id.as_str().into();
        let s = seen.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            Seen {
                first: at,
                ..Seen::default()
            }
        });
        if s.hra.is_none() {
            s.hra = target.map(|i| (i, route.duration));
        }
        if target.is_none() {
            unrouted += 1;
        }
        let t = |v: Option<DateTime<Utc>>| v.map(ms);
        s.created = s.created.or(t(job.created_at));
        match job.action.as_str() {
            "queued" => s.queued_at = Some(s.queued_at.map_or(at, |q| q.min(at))),
            "in_progress" => {
                if let Some(started) = t(job.started_at) {
                    s.started = Some(started);
                    s.lags.0 = (at - started).max(0);
                }
            }
            "completed" => {
                s.completed = t(job.completed_at).or(Some(at));
                s.ran = job.has_runner && job.started_at.is_some();
                if s.ran {
                    s.started = t(job.started_at);
                } else if route.amount < 0 && target.is_some() {
                    s.cancel_delivery = Some(at);
                }
                s.lags.1 = (at - s.completed.unwrap_or(at)).max(0);
            }
            _ => {}
        }
    }
    let span = deliveries
        .first()
        .zip(deliveries.last())
        .map_or((0, 0), |(a, b)| (ms(a.at), ms(b.at)));
    let mut jobs = Vec::with_capacity(order.len());
    for id in order {
        let s = seen.remove(&id).unwrap_or_default();
        let Some((hra, duration)) = s.hra else {
            continue;
        };
        let created = s.created.unwrap_or(s.first);
        let run = match (s.started, s.completed) {
            (Some(a), Some(b)) if s.ran => Some((b - a).max(0)),
            _ => None,
        };
        let cancelled = (!s.ran).then_some(s.completed).flatten();
        jobs.push(Job {
            hra,
            id,
            created,
            queued_at: s.queued_at,
            duration,
            run,
            cancelled,
            cancel_delivery: s.cancel_delivery,
            recorded_wait: s.started.map(|st| (st - created).max(0)),
            lags: s.lags,
        });
    }
    Jobs {
        jobs,
        unrouted,
        span,
    }
}
