//! Delivering a validated event: submitted here, or (with several replicas) queued to its
//! HRA's owner in the order received and answered by it. An owner that cannot be reached, or
//! is shutting down, never stalls intake: the event is submitted here instead.

use super::{
    convert,
    deadline::waited,
    error::ApiError,
    pb,
    peer_link::{Answer, PeerLink},
    peers::{Destination, FORWARD_TIMEOUT},
    service::BatchScalerService,
};
use crate::{
    domain::{event::ScaleEvent, report::BatchReport},
    engine::batcher::Submitted,
    ops::traces,
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
        event: Box<ScaleEvent>,
        wait: bool,
        answer: oneshot::Receiver<Answer>,
        since: Instant,
    },
}

/// The gRPC code of an owner shutting down (its intake closed): the receiver applies instead.
const UNAVAILABLE: u32 = tonic::Code::Unavailable as u32;

/// The span of one event taken in (traces exported only): the span its batch links to.
fn enqueue_span(event: &ScaleEvent) -> tracing::Span {
    if !traces::on() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "enqueue",
        otel.name = "enqueue",
        batch_scaler.hra = %event.key,
        k8s.namespace.name = %event.key.namespace,
        batch_scaler.amount = event.amount,
        batch_scaler.event_id = event.event_id.as_deref().unwrap_or(""),
        batch_scaler.job_id = event.job_id.as_deref().unwrap_or(""),
        batch_scaler.origin = event.origin.as_str(),
        batch_scaler.duplicate = tracing::field::Empty,
        batch_scaler.forwarded = tracing::field::Empty,
    )
}

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
        let span = enqueue_span(event);
        let _entered = span.enter();
        // A job's times alone go to its ledger: no batch to wait for.
        let wait = wait && !event.is_record_only();
        if let Some(peers) = self.peers.as_ref().filter(|_| !forwarded)
            && let Destination::Owner(link) = peers.destination(&event.key)
        {
            let wait_timeout = deadline.filter(|_| wait);
            if let Some(answer) =
                link.enqueue(convert::wire_event(event), event.origin, wait, wait_timeout)
            {
                // Its owner keeps the HRA's ledger and profile now; ours would claim a time we
                // did not own it. (A link too full to take it leaves the event, and them, here.)
                self.forget_local(&event.key);
                span.record("batch_scaler.forwarded", true);
                return Ok(Delivery::Forwarded {
                    event: Box::new(event.clone()),
                    wait,
                    answer,
                    since: Instant::now(),
                });
            }
        }
        self.submit_here(event, wait)
    }

    /// Drops what this replica kept of an HRA another replica owns: its job ledger and its
    /// arrival profile.
    fn forget_local(&self, key: &crate::domain::hra::HraKey) {
        self.engine.ledgers.forget(key);
        if let Some(forecasts) = &self.engine.forecasts {
            forecasts.forget(key);
        }
    }

    /// Submits `event` here (counted).
    pub(super) fn submit_here(&self, event: &ScaleEvent, wait: bool) -> Result<Delivery, ApiError> {
        let (tx, rx) = oneshot::channel();
        let submitted = self.submit(event, wait.then_some(tx));
        if let Ok(s) = &submitted {
            tracing::Span::current().record("batch_scaler.duplicate", *s != Submitted::Queued);
        }
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
            // Taken by the owner, then no answer (it stopped, or is slow): applying it here
            // too is harmless only for a job-named event (its reservation is added once).
            _ if event.job_id.is_none() && fate_unknown(&got, true) => {
                count("unknown");
                return Err(ApiError::OwnerLost {
                    hra: event.key.to_string(),
                    events: 1,
                });
            }
            // Never reached the owner, or job-named: applied here.
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
    /// Sends `events` each where it goes, in order: this replica's queued here under one lock
    /// (counted), each other owner's sent as one message on its link. Returns how many were
    /// queued here and how many were duplicates, why any was refused here, and the messages
    /// sent, whose answers [`BatchScalerService::settle_forwards`] collects later (a
    /// `Publish` goes on reading meanwhile).
    pub(super) fn spread(
        &self,
        events: &[ScaleEvent],
    ) -> (u64, u64, Option<ApiError>, Vec<Forwarded>) {
        let Some(peers) = &self.peers else {
            let (queued, duplicates, refused) = self.engine.batcher.submit_all(events);
            return (queued, duplicates, refused.map(ApiError::from), Vec::new());
        };
        let mut local = Vec::new();
        let mut remote: Vec<(PeerLink, Vec<ScaleEvent>)> = Vec::new();
        for event in events {
            match peers.destination(&event.key) {
                Destination::Local => local.push(event.clone()),
                Destination::Owner(link) => {
                    self.forget_local(&event.key);
                    match remote.iter_mut().find(|(l, _)| l.address == link.address) {
                        Some((_, batch)) => batch.push(event.clone()),
                        None => remote.push((link, vec![event.clone()])),
                    }
                }
            }
        }
        let sent = remote
            .into_iter()
            .map(|(link, batch)| {
                let answer = link.enqueue_many(batch.iter().map(convert::wire_event).collect());
                Forwarded { batch, answer }
            })
            .collect();
        let (queued, duplicates, refused) = self.engine.batcher.submit_all(&local);
        self.metrics.event("accepted", queued);
        self.metrics.event("duplicate", duplicates);
        (queued, duplicates, refused.map(ApiError::from), sent)
    }

    /// The owners' answers to `sent`: how many they queued and how many were duplicates, and
    /// why any was refused. An owner that could not be reached has its events queued here.
    pub(super) async fn settle_forwards(
        &self,
        sent: Vec<Forwarded>,
    ) -> (u64, u64, Option<ApiError>) {
        let (mut queued, mut duplicates, mut refused) = (0, 0, None);
        let count = |result, n| {
            if let Some(p) = &self.peers {
                p.counted(result, n)
            }
        };
        for Forwarded { batch, answer } in sent {
            let answer_was_sent = answer.is_some();
            let got = match answer {
                Some(answer) => tokio::time::timeout(FORWARD_TIMEOUT, answer).await.ok(),
                None => None,
            };
            match got {
                Some(Ok(Ok(a))) if a.code != UNAVAILABLE => {
                    count("forwarded", a.accepted + a.duplicates);
                    queued += a.accepted;
                    duplicates += a.duplicates;
                    if a.code != 0 {
                        refused.get_or_insert(ApiError::Owner {
                            code: a.code,
                            message: a.message,
                        });
                    }
                }
                // Unreachable, shutting down, or no answer in time: queued here, but for
                // job-less events the owner may already have applied (taken, then no answer).
                other => {
                    let batch = if fate_unknown(&other, answer_was_sent) {
                        let (named, job_less): (Vec<_>, Vec<_>) =
                            batch.into_iter().partition(|e| e.job_id.is_some());
                        if let Some(first) = job_less.first() {
                            count("unknown", job_less.len() as u64);
                            refused.get_or_insert(ApiError::OwnerLost {
                                hra: first.key.to_string(),
                                events: job_less.len(),
                            });
                        }
                        named
                    } else {
                        batch
                    };
                    count("local", batch.len() as u64);
                    let (q, d, r) = self.engine.batcher.submit_all(&batch);
                    self.metrics.event("accepted", q);
                    self.metrics.event("duplicate", d);
                    queued += q;
                    duplicates += d;
                    if let Some(r) = r {
                        refused.get_or_insert(r.into());
                    }
                }
            }
        }
        (queued, duplicates, refused)
    }
}

/// True when the owner may have taken what was sent without answering: the stream broke
/// after it was sent, or no answer came in time to what was `sent`.
fn fate_unknown(got: &Option<Result<Answer, oneshot::error::RecvError>>, sent: bool) -> bool {
    match got {
        Some(Ok(Err(unreached))) => unreached.maybe_delivered,
        None => sent,
        _ => false,
    }
}

/// Events sent to their owner as one message, and its answer to come.
pub(super) struct Forwarded {
    batch: Vec<ScaleEvent>,
    answer: Option<oneshot::Receiver<Answer>>,
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
