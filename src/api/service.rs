//! The `batchscaler.v1.BatchScaler` service: thin handlers that validate, enqueue and return.

use super::{
    convert,
    deadline::caller_deadline,
    error::ApiError,
    pb,
    peers::{FORWARDED_BY, Peers},
    targets_cache::{TargetsCache, TargetsStream},
};
use crate::{
    domain::{
        event::{ScaleEvent, non_empty, validate_target},
        hra::HraKey,
        namespaces::Allowlist,
        planner::ReservationClock,
        validate::validate_namespace,
    },
    engine::{Engine, applier::Clock, batcher::Submitted, hub::Filter, queue::Waiter},
    ops::metrics::Metrics,
    store::{HraStore, RoutingModel},
};
use futures::StreamExt as _;
use std::{pin::Pin, sync::Arc, sync::atomic::Ordering};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// Everything the handlers share.
#[derive(Clone)]
pub struct BatchScalerService {
    /// Where events go and results come from.
    pub engine: Engine,
    /// Where targets are read.
    pub store: Arc<dyn HraStore>,
    /// What routing sees, if this backend can route jobs.
    pub routing: Option<Arc<RoutingModel>>,
    /// The other replicas, when HRAs are shared out among several.
    pub peers: Option<Arc<Peers>>,
    /// Fires when shutdown starts: open `Publish` streams end.
    pub shutdown: CancellationToken,
    /// Time for `reserved_replicas`.
    pub clock: Clock,
    /// Namespaces that may be used.
    pub allowed: Allowlist,
    /// Where events are counted.
    pub metrics: Arc<Metrics>,
    /// Reservation life shown by a route when neither the job nor the HRA gives one.
    pub default_life: chrono::TimeDelta,
    /// When a job's reservation starts to age: on `queued`, a job's start is not queued.
    pub reservation_clock: ReservationClock,
    /// The HRAs as `WatchTargets` last read them, shared by every watch.
    pub targets_cache: Arc<TargetsCache>,
}

impl BatchScalerService {
    /// The tonic server wrapping this service.
    pub fn into_server(self) -> pb::batch_scaler_server::BatchScalerServer<Self> {
        pb::batch_scaler_server::BatchScalerServer::new(self)
    }

    /// Validates one wire event, namespace allowlist included.
    pub(super) fn validate(&self, event: pb::ScaleEvent) -> Result<ScaleEvent, ApiError> {
        let event = convert::scale_event(event)?;
        self.allowed.check(&event.key.namespace)?;
        Ok(event)
    }

    /// Validates one wire event, counting it if it is refused.
    fn validated(&self, event: pb::ScaleEvent) -> Result<ScaleEvent, ApiError> {
        self.validate(event)
            .inspect_err(|e| self.metrics.event(e.metric_result(), 1))
    }

    /// Queues one validated event.
    pub(super) fn submit(
        &self,
        event: &ScaleEvent,
        waiter: Option<Waiter>,
    ) -> Result<Submitted, ApiError> {
        Ok(self.engine.batcher.submit(event, waiter)?)
    }

    /// Counts one event by how intake answered.
    pub(super) fn count(&self, result: &Result<Submitted, ApiError>) {
        match result {
            Ok(Submitted::Queued) => self.metrics.event("accepted", 1),
            Ok(Submitted::Duplicate | Submitted::Joined) => self.metrics.event("duplicate", 1),
            Err(e) => self.metrics.event(e.metric_result(), 1),
        }
    }

    /// An optional namespace filter: empty means all; otherwise valid and allowed.
    fn namespace_filter(&self, namespace: String) -> Result<Option<String>, ApiError> {
        let Some(ns) = non_empty(namespace) else {
            return Ok(None);
        };
        validate_namespace(&ns)?;
        self.allowed.check(&ns)?;
        Ok(Some(ns))
    }

    fn target_key(&self, namespace: String, name: String) -> Result<HraKey, ApiError> {
        let key = validate_target(namespace, name)?;
        self.allowed.check(&key.namespace)?;
        Ok(key)
    }
}

/// Most `Publish` events queued under one lock.
const PUBLISH_CHUNK: usize = 256;

/// Most `Publish` messages to other owners whose answers are not collected yet.
const FORWARDS_IN_FLIGHT: usize = 256;

type ResultStream = Pin<Box<dyn Stream<Item = Result<pb::BatchResult, Status>> + Send>>;

/// The answer stream of `ScaleJobs`.
pub type JobAnswers = Pin<Box<dyn Stream<Item = Result<pb::ScaleJobResult, Status>> + Send>>;

/// The answer stream of `Forward`.
pub type ForwardAnswers = Pin<Box<dyn Stream<Item = Result<pb::ForwardedAnswer, Status>> + Send>>;

/// True if a call was forwarded to us by another replica (we apply it, whoever owns it).
pub(super) fn forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_BY)
}

#[tonic::async_trait]
impl pb::batch_scaler_server::BatchScaler for BatchScalerService {
    async fn publish(
        &self,
        request: Request<Streaming<pb::ScaleEvent>>,
    ) -> Result<Response<pb::PublishSummary>, Status> {
        // With several replicas, each event goes to its HRA's owner (counted where it is
        // applied); alone, what has arrived is queued here under one lock.
        let spread = self.peers.is_some() && !forwarded(&request);
        let mut stream = request.into_inner().ready_chunks(PUBLISH_CHUNK);
        let (mut accepted, mut duplicates) = (0u64, 0u64);
        // Counted once per chunk of messages, not per event: this is the hot path. A stream
        // may stay open for good (a frontend's), so its counts show as they arrive.
        let count = |accepted, duplicates| {
            if !spread {
                self.metrics.event("accepted", accepted);
                self.metrics.event("duplicate", duplicates);
            }
        };
        let shutdown = self.shutdown.cancelled();
        tokio::pin!(shutdown);
        let mut valid = Vec::with_capacity(PUBLISH_CHUNK);
        // Messages sent to other owners, whose answers are collected later (at most this many
        // in flight, then the older half is waited for).
        let mut sent = Vec::new();
        loop {
            let arrived = tokio::select! {
                biased;
                arrived = stream.next() => arrived,
                () = &mut shutdown => None,
            };
            let Some(arrived) = arrived else { break };
            let mut stopped = None;
            for message in arrived {
                match message
                    .map_err(ApiError::Transport)
                    .and_then(|e| self.validate(e))
                {
                    Ok(event) => valid.push(event),
                    Err(e) => {
                        stopped = Some(e);
                        break;
                    }
                }
            }
            let (mut queued, mut dups, mut refused) = if spread {
                let (queued, dups, refused, forwarded) = self.spread(&valid);
                sent.extend(forwarded);
                (queued, dups, refused)
            } else {
                let (queued, dups, refused) = self.engine.batcher.submit_all(&valid);
                (queued, dups, refused.map(ApiError::from))
            };
            valid.clear();
            if sent.len() > FORWARDS_IN_FLIGHT || refused.is_some() || stopped.is_some() {
                let older = sent.drain(..sent.len() / 2).collect();
                let (q, d, r) = self.settle_forwards(older).await;
                (queued, dups) = (queued + q, dups + d);
                refused = refused.or(r);
            }
            accepted += queued;
            duplicates += dups;
            count(queued, dups);
            let error = refused.or(stopped);
            if error.is_some() {
                let (q, d, _) = self.settle_forwards(std::mem::take(&mut sent)).await;
                (accepted, duplicates) = (accepted + q, duplicates + d);
            }
            match error {
                None => {}
                Some(ApiError::Transport(status)) => {
                    return Err(ApiError::Transport(status).into());
                }
                Some(e) => {
                    self.metrics.event(e.metric_result(), 1);
                    let stopped = ApiError::PublishStopped {
                        cause: Box::new(e.at_index(accepted + duplicates)),
                        accepted,
                        duplicates,
                    };
                    return Err(stopped.into());
                }
            }
        }
        let (q, d, refused) = self.settle_forwards(sent).await;
        (accepted, duplicates) = (accepted + q, duplicates + d);
        if let Some(e) = refused {
            let stopped = ApiError::PublishStopped {
                cause: Box::new(e),
                accepted,
                duplicates,
            };
            return Err(stopped.into());
        }
        if self.shutdown.is_cancelled() {
            return Err(ApiError::PublishShutDown { accepted }.into());
        }
        Ok(Response::new(pb::PublishSummary {
            accepted,
            duplicates,
        }))
    }

    async fn scale(
        &self,
        request: Request<pb::ScaleEvent>,
    ) -> Result<Response<pb::ScaleAck>, Status> {
        let forwarded = forwarded(&request);
        let event = self.validated(request.into_inner())?;
        let delivery = self.start_delivery(&event, false, None, forwarded)?;
        let delivered = self.finish_delivery(delivery, None).await?;
        Ok(Response::new(pb::ScaleAck {
            duplicate: delivered.duplicate,
        }))
    }

    async fn scale_and_wait(
        &self,
        request: Request<pb::ScaleEvent>,
    ) -> Result<Response<pb::ScaleResult>, Status> {
        let deadline = caller_deadline(&request);
        let forwarded = forwarded(&request);
        let event = self.validated(request.into_inner())?;
        let delivery = self.start_delivery(&event, true, deadline, forwarded)?;
        let delivered = self.finish_delivery(delivery, deadline).await?;
        Ok(Response::new(pb::ScaleResult {
            duplicate: delivered.duplicate,
            batch: delivered.batch,
        }))
    }

    async fn route_job(
        &self,
        request: Request<pb::WorkflowJob>,
    ) -> Result<Response<pb::Route>, Status> {
        Ok(Response::new(
            self.route_workflow_job(request.into_inner())?,
        ))
    }

    async fn scale_job(
        &self,
        request: Request<pb::WorkflowJob>,
    ) -> Result<Response<pb::ScaleJobResult>, Status> {
        let deadline = caller_deadline(&request);
        let forwarded = forwarded(&request);
        Ok(Response::new(
            self.scale_workflow_job(request.into_inner(), deadline, forwarded)
                .await?,
        ))
    }

    type ScaleJobsStream = JobAnswers;

    async fn scale_jobs(
        &self,
        request: Request<Streaming<pb::WorkflowJob>>,
    ) -> Result<Response<Self::ScaleJobsStream>, Status> {
        let forwarded = forwarded(&request);
        Ok(Response::new(
            self.scale_jobs_stream(request.into_inner(), forwarded),
        ))
    }

    type ForwardStream = ForwardAnswers;

    async fn forward(
        &self,
        request: Request<Streaming<pb::ForwardedEvent>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        Ok(Response::new(self.forward_stream(request.into_inner())))
    }

    type WatchBatchesStream = ResultStream;

    async fn watch_batches(
        &self,
        request: Request<pb::WatchBatchesRequest>,
    ) -> Result<Response<Self::WatchBatchesStream>, Status> {
        let pb::WatchBatchesRequest {
            namespace,
            name,
            replay,
        } = request.into_inner();
        let namespace = self.namespace_filter(namespace)?;
        let filter = Filter {
            namespace,
            name: non_empty(name),
            allowed: self.allowed.clone(),
        };
        let sub = self.engine.hub.subscribe(filter, replay as usize);
        let missed = sub.missed;
        let stream = tokio_stream::iter(sub.replay)
            .chain(ReceiverStream::new(sub.live))
            .map(move |r| Ok(convert::batch_result(&r, missed.swap(0, Ordering::Relaxed))));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_target(
        &self,
        request: Request<pb::TargetRef>,
    ) -> Result<Response<pb::Target>, Status> {
        let pb::TargetRef { namespace, name } = request.into_inner();
        let key = self.target_key(namespace, name)?;
        let hra = self.store.get(&key).await.map_err(ApiError::from)?;
        let last = self.engine.hub.last(&key);
        let mut target = convert::target(hra, (self.clock)());
        target.last_batch = last.map(|r| convert::batch_result(&r, 0));
        Ok(Response::new(target))
    }

    async fn list_targets(
        &self,
        request: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<pb::ListTargetsResponse>, Status> {
        let namespace = self.namespace_filter(request.into_inner().namespace)?;
        let targets = self.target_rows(namespace.as_deref(), true).await?;
        Ok(Response::new(pb::ListTargetsResponse { targets }))
    }

    type WatchTargetsStream = TargetsStream;

    async fn watch_targets(
        &self,
        request: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<Self::WatchTargetsStream>, Status> {
        let namespace = self.namespace_filter(request.into_inner().namespace)?;
        Ok(Response::new(BatchScalerService::watch_targets(
            self, namespace,
        )))
    }

    async fn get_job_stats(
        &self,
        request: Request<pb::TargetRef>,
    ) -> Result<Response<pb::JobStats>, Status> {
        let forwarded = request.metadata().contains_key(FORWARDED_BY);
        let pb::TargetRef { namespace, name } = request.into_inner();
        let key = self.target_key(namespace, name)?;
        Ok(Response::new(self.job_stats(key, forwarded).await?))
    }

    async fn get_stats(
        &self,
        _request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        let batcher = &self.engine.batcher;
        let gauges = (
            batcher.pending_hras(),
            batcher.held_events(),
            batcher.in_flight(),
        );
        let snapshot = self.metrics.snapshot();
        let hras = self.store.list(None).await.map_err(ApiError::from)?;
        let cluster = match &self.peers {
            Some(peers) => (
                peers.members(),
                hras.iter().filter(|h| peers.owns(&h.key)).count(),
            ),
            None => (1, hras.len()),
        };
        let mut stats = convert::stats(&snapshot, gauges, cluster, (self.clock)());
        stats.scale_out_off = self
            .metrics
            .peers
            .scale_out_off()
            .unwrap_or_default()
            .to_owned();
        Ok(Response::new(stats))
    }
}
