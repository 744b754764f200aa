//! Delivering a validated event: submitted here, or (with several replicas) queued to its
//! HRA's owner in the order received and answered by it. An owner that cannot be reached, or
//! is shutting down, never stalls intake: the event is submitted here instead.

use super::{
    convert,
    deadline::waited,
    error::ApiError,
    pb,
    peer_link::Answer,
    peers::{Destination, FORWARD_TIMEOUT, wire},
    service::BatchScalerService,
};
use crate::{
    domain::{event::ScaleEvent, report::BatchReport},
    engine::batcher::Submitted,
};
use std::{sync::Arc, time::Duration};
use tokio::{sync::oneshot, time::Instant};

/// What became of an event, as the producer's answer needs it.
pub(super) struct Delivered {
    /// Its id was held: nothing new queued.
    pub duplicate: bool,
    /// With `wait`: the final outcome of the batch that held it.
    pub batch: Option<pb::BatchResult>,
}

/// An event on its way.
pub(super) enum Delivery {
    /// Submitted here; with `wait`, its batch's outcome comes on the receiver.
    Local(Submitted, Option<oneshot::Receiver<Arc<BatchReport>>>),
    /// Queued to its owner.
    Forwarded {
        event: ScaleEvent,
        wait: bool,
        answer: oneshot::Receiver<Answer>,
        since: Instant,
    },
}

/// The gRPC code of an owner shutting down (its intake closed): the receiver applies instead.
const UNAVAILABLE: u32 = tonic::Code::Unavailable as u32;

impl BatchScalerService {
    /// Sends `event` where it goes, at once, so that its order among the events received is
    /// kept: submitted here (counted), or queued to its owner unless `forwarded` (an event
    /// forwarded to us is always ours).
    pub(super) fn start_delivery(
        &self,
        event: &ScaleEvent,
        wait: bool,
        deadline: Option<Duration>,
        forwarded: bool,
    ) -> Result<Delivery, ApiError> {
        if let Some(peers) = self.peers.as_ref().filter(|_| !forwarded)
            && let Destination::Owner(link) = peers.destination(&event.key)
        {
            let wait_timeout = deadline.filter(|_| wait);
            if let Some(answer) = link.enqueue(wire(event), wait, wait_timeout) {
                return Ok(Delivery::Forwarded {
                    event: event.clone(),
                    wait,
                    answer,
                    since: Instant::now(),
                });
            }
        }
        self.submit_here(event, wait)
    }

    /// Submits `event` here (counted).
    pub(super) fn submit_here(&self, event: &ScaleEvent, wait: bool) -> Result<Delivery, ApiError> {
        let (tx, rx) = oneshot::channel();
        let submitted = self.submit(event, wait.then_some(tx));
        self.count(&submitted);
        Ok(Delivery::Local(submitted?, wait.then_some(rx)))
    }

    /// The event's answer: from here (after its batch, with `wait`), or from its owner.
    pub(super) async fn finish_delivery(
        &self,
        delivery: Delivery,
        deadline: Option<Duration>,
    ) -> Result<Delivered, ApiError> {
        let (event, wait, answer, since) = match delivery {
            Delivery::Local(submitted, outcome) => {
                return finish_here(submitted, outcome, deadline).await;
            }
            Delivery::Forwarded {
                event,
                wait,
                answer,
                since,
            } => (event, wait, answer, since),
        };
        let limit = if wait {
            deadline
        } else {
            Some(FORWARD_TIMEOUT)
        };
        let got = match limit {
            Some(limit) => tokio::time::timeout(limit, answer).await.ok(),
            None => Some(answer.await),
        };
        let peers = self.peers.as_ref();
        let count = |result| {
            if let Some(p) = peers {
                p.counted(result, 1)
            }
        };
        match got {
            Some(Ok(Ok(a))) if a.code == 0 => {
                count("forwarded");
                return Ok(Delivered {
                    duplicate: a.duplicate,
                    batch: a.batch,
                });
            }
            // The owner is shutting down: apply here.
            Some(Ok(Ok(a))) if a.code == UNAVAILABLE => {}
            Some(Ok(Ok(a))) => {
                count("refused");
                return Err(ApiError::Owner {
                    code: a.code,
                    message: a.message,
                });
            }
            // Waiting, the deadline passed: the owner holds the event, as a local wait would.
            None if wait => {
                count("forwarded");
                return Err(ApiError::DeadlineExceeded);
            }
            // Unreachable, or no answer in time to a call that does not wait.
            Some(Ok(Err(_))) | Some(Err(_)) | None => {}
        }
        count("local");
        let left = deadline.map(|d| d.saturating_sub(since.elapsed()));
        match self.submit_here(&event, wait)? {
            Delivery::Local(submitted, outcome) => finish_here(submitted, outcome, left).await,
            Delivery::Forwarded { .. } => Err(ApiError::Abandoned),
        }
    }
}

impl BatchScalerService {
    /// Delivers `events` each where it goes, in order, and waits for every answer; returns
    /// how many were queued and how many were duplicates before the first refused, and why.
    pub(super) async fn deliver_all(&self, events: &[ScaleEvent]) -> (u64, u64, Option<ApiError>) {
        let mut deliveries = Vec::with_capacity(events.len());
        let mut refused = None;
        for event in events {
            match self.start_delivery(event, false, None, false) {
                Ok(delivery) => deliveries.push(delivery),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let answers = futures::future::join_all(
            deliveries
                .into_iter()
                .map(|d| self.finish_delivery(d, None)),
        )
        .await;
        let (mut queued, mut duplicates) = (0, 0);
        for answer in answers {
            match answer {
                Ok(d) if d.duplicate => duplicates += 1,
                Ok(_) => queued += 1,
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        (queued, duplicates, refused)
    }
}

async fn finish_here(
    submitted: Submitted,
    outcome: Option<oneshot::Receiver<Arc<BatchReport>>>,
    deadline: Option<Duration>,
) -> Result<Delivered, ApiError> {
    match outcome {
        None => Ok(Delivered {
            duplicate: submitted != Submitted::Queued,
            batch: None,
        }),
        Some(outcome) => {
            let (duplicate, report) = waited(submitted, deadline, outcome).await?;
            Ok(Delivered {
                duplicate,
                batch: report.map(|r| convert::batch_result(&r, 0)),
            })
        }
    }
}
