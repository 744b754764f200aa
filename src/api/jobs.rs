//! `RouteJob`, `ScaleJob` and `ScaleJobs`: a workflow job routed to its HRA as
//! actions-runner-controller's webhook server would, and (ScaleJob, ScaleJobs) queued as that
//! HRA's event with the job's ids.

use super::{convert, deliver::Delivery, error::ApiError, pb, service::BatchScalerService};
use crate::domain::{
    event::{Origin, ScaleEvent, non_empty},
    job_times::JobTimes,
    planner::ReservationClock,
    routing::{Route, RouteResult, WorkflowJob},
    validate::check_repository,
};
use crate::ops::traces;
use std::{sync::Arc, time::Duration};

/// A job routed and, if it scales anything, on its way (queued here or to its HRA's owner):
/// what is left is its answer.
pub(super) struct QueuedJob {
    result: pb::ScaleJobResult,
    delivery: Option<Delivery>,
}

impl QueuedJob {
    /// True if the job scales an HRA (an event is on its way).
    pub(super) fn scales(&self) -> bool {
        self.delivery.is_some()
    }

    /// The job's answer: at once, or (with `wait`) once its batch is final or `deadline` passes.
    pub(super) async fn answer(
        self,
        service: &BatchScalerService,
        deadline: Option<Duration>,
    ) -> Result<pb::ScaleJobResult, ApiError> {
        let Self {
            mut result,
            delivery,
        } = self;
        if let Some(delivery) = delivery {
            let delivered = service.finish_delivery(delivery, deadline).await?;
            result.duplicate = delivered.duplicate;
            result.batch = delivered.batch;
        }
        Ok(result)
    }
}

impl BatchScalerService {
    /// Routes a validated job over the store's routing index, counting the result.
    fn route(&self, job: &WorkflowJob) -> Result<Route, ApiError> {
        let model = self.routing.as_ref().ok_or(ApiError::RoutingUnavailable)?;
        let index = model.index().ok_or_else(|| ApiError::RoutingNotReady {
            unsynced: model.unsynced(),
        })?;
        let span = traces::on().then(|| {
            tracing::info_span!("route", otel.name = "route", batch_scaler.repository = %job.repository,
                batch_scaler.job_id = %job.job_id, batch_scaler.action = %job.action,
                batch_scaler.hra = tracing::field::Empty, batch_scaler.result = tracing::field::Empty,
                batch_scaler.reason = tracing::field::Empty)
        });
        let route = index.route(job, &self.allowed);
        if let Some(span) = span {
            if let Some(target) = &route.target {
                span.record("batch_scaler.hra", target.to_string());
            }
            span.record("batch_scaler.result", route.result.as_str());
            span.record("batch_scaler.reason", route.reason.as_str());
        }
        self.metrics.job_routed(route.result.as_str());
        if route.result == RouteResult::Ambiguous {
            tracing::warn!(repository = %job.repository, reason = %route.reason, "ambiguous route");
        }
        Ok(route)
    }

    /// `RouteJob`: where the job would go, and why. Queues nothing.
    pub(super) fn route_workflow_job(&self, job: pb::WorkflowJob) -> Result<pb::Route, ApiError> {
        let job = convert::workflow_job(job)?;
        Ok(convert::route(&self.route(&job)?, self.default_life))
    }

    /// `ScaleJob`: routes the job and queues its event; with `wait`, answers with the batch's
    /// final outcome.
    pub(super) async fn scale_workflow_job(
        &self,
        job: pb::WorkflowJob,
        deadline: Option<Duration>,
        forwarded: bool,
    ) -> Result<pb::ScaleJobResult, ApiError> {
        self.queue_workflow_job(job, deadline, forwarded)?
            .answer(self, deadline)
            .await
    }

    /// Routes the job and sends its event where it goes, at once (its order among the jobs
    /// received is kept); the answer waits for the batch if the job asks to.
    pub(super) fn queue_workflow_job(
        &self,
        job: pb::WorkflowJob,
        deadline: Option<Duration>,
        forwarded: bool,
    ) -> Result<QueuedJob, ApiError> {
        let wait = job.wait;
        // The delivery's own trace, when the job names one.
        let span = (!job.traceparent.is_empty())
            .then(|| traces::child_of_remote("workflow_job", &job.traceparent));
        let _entered = span.as_ref().map(tracing::Span::enter);
        let job = convert::workflow_job(job)?;
        self.queue_job(job, Origin::Producer, wait, deadline, forwarded)
    }

    /// Routes a validated job and sends its event (from `origin`) where it goes.
    pub(super) fn queue_job(
        &self,
        mut job: WorkflowJob,
        origin: Origin,
        wait: bool,
        deadline: Option<Duration>,
        forwarded: bool,
    ) -> Result<QueuedJob, ApiError> {
        let mut route = self.route(&job)?;
        // A routed `in_progress` goes to its HRA's job ledger whatever the clock.
        let recorded = route.starts;
        if route.starts && self.reservation_clock == ReservationClock::Queued {
            route.starts = false;
            route.reason.push_str(
                "; recorded in the job ledger only: with --reservation-clock queued a start changes no reservation",
            );
        }
        let result = pb::ScaleJobResult {
            route: Some(convert::route(&route, self.default_life)),
            job_id: job.job_id.clone(),
            event_id: job.event_id.clone(),
            ..Default::default()
        };
        let Some(key) = route.target.filter(|_| route.amount != 0 || recorded) else {
            return Ok(QueuedJob {
                result,
                delivery: None,
            });
        };
        // Kept with the reservation so that it can be checked against GitHub (a name that
        // could not be a URL path segment is not kept: that reservation is left to expiry).
        let repository = (!job.job_id.is_empty() && check_repository(&job.repository).is_ok())
            .then(|| Arc::from(job.repository.as_str()));
        let started = route.starts.then(|| job.start_time((self.clock)()));
        let times = (!job.job_id.is_empty()).then(|| JobTimes {
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            runner_name: std::mem::take(&mut job.runner_name),
            ran: job.has_runner,
        });
        let event = ScaleEvent {
            key,
            amount: route.amount,
            duration: route.duration,
            event_id: non_empty(job.event_id),
            job_id: non_empty(job.job_id),
            repository,
            origin,
            started,
            times,
        };
        let delivery = self.start_delivery(&event, wait, deadline, forwarded)?;
        Ok(QueuedJob {
            result,
            delivery: Some(delivery),
        })
    }
}
