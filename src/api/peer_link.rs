//! One replica's connection to one peer: a `Forward` stream kept open, carrying the events
//! this replica received for HRAs the peer owns, in the order they were received (so a job's
//! `queued` never overtakes it), each answered by sequence number. If the stream breaks, the
//! events still waiting get `UNAVAILABLE` (their receiver applies them itself) and the next
//! event opens a new stream; while the peer cannot be reached, events fail at once.

use super::{
    convert,
    pb::{self, batch_scaler_client::BatchScalerClient},
};
use crate::{domain::event::Origin, engine::batcher::IntakeError, ops::traces};
use std::{collections::HashMap, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Streaming, transport::Channel};

/// Events queued for one peer before the receiver applies further ones itself.
const QUEUE: usize = 16 * 1024;
/// After a failed connection, events fail at once for this long (the receiver applies them).
const DOWN_FOR: Duration = Duration::from_millis(500);

/// Why a forwarded event got no answer from its owner.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the owner could not be reached: {why}")]
pub struct Unreached {
    /// What failed.
    pub why: String,
    /// The event was sent and the stream then broke: the owner may have applied it (the
    /// receiver applies it too only if its job id makes that harmless). False when it never
    /// left, or the owner ended the stream in order (everything it took was answered).
    pub maybe_delivered: bool,
}

impl Unreached {
    fn unsent(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            maybe_delivered: false,
        }
    }
}

/// The owner's answer to a forwarded event, or why there is none.
pub type Answer = Result<pb::ForwardedAnswer, Unreached>;

struct Outgoing {
    origin: pb::EventOrigin,
    traceparent: String,
    event: Option<pb::ScaleEvent>,
    events: Vec<pb::ScaleEvent>,
    wait: bool,
    wait_timeout: Option<Duration>,
    answer: oneshot::Sender<Answer>,
}

/// A stream of forwarded events to one peer.
#[derive(Clone)]
pub struct PeerLink {
    inbox: mpsc::Sender<Outgoing>,
    /// The peer's address: one link per peer.
    pub address: std::sync::Arc<str>,
    /// For reads of what only the peer keeps (an HRA's job ledger), on the same connection.
    reads: std::sync::Arc<Reads>,
}

/// A client for reads from a peer, and how its requests are signed.
struct Reads {
    client: BatchScalerClient<Channel>,
    sign: Signer,
}

/// Adds this replica's name and credentials to a request to a peer.
pub type Signer = std::sync::Arc<dyn Fn(&mut tonic::metadata::MetadataMap) + Send + Sync>;

/// Longest a read from a peer may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes the `Forward` request of a new stream (metadata: who forwards, credentials).
pub type Opener = Box<
    dyn Fn(ReceiverStream<pb::ForwardedEvent>) -> Request<ReceiverStream<pb::ForwardedEvent>>
        + Send
        + Sync,
>;

impl PeerLink {
    /// A link to `address` over `client`; the stream opens with the first event; reads are
    /// signed by `sign`.
    pub fn start(
        address: &str,
        client: BatchScalerClient<Channel>,
        open: Opener,
        sign: Signer,
    ) -> Self {
        let (inbox, rx) = mpsc::channel(QUEUE);
        let reads = std::sync::Arc::new(Reads {
            client: client.clone(),
            sign,
        });
        tokio::spawn(run(client, open, rx));
        Self {
            inbox,
            address: address.into(),
            reads,
        }
    }

    /// The job ledger figures of `target`, which the peer owns (and so keeps).
    pub async fn job_stats(&self, target: pb::TargetRef) -> Result<pb::JobStats, tonic::Status> {
        let mut request = Request::new(target);
        (self.reads.sign)(request.metadata_mut());
        request.set_timeout(READ_TIMEOUT);
        let mut client = self.reads.client.clone();
        client
            .get_job_stats(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Queues several events that nobody waits for, as one message; the answer counts them.
    pub fn enqueue_many(&self, events: Vec<pb::ScaleEvent>) -> Option<oneshot::Receiver<Answer>> {
        let (answer, rx) = oneshot::channel();
        self.inbox
            .try_send(Outgoing {
                origin: pb::EventOrigin::Producer,
                traceparent: traces::current_traceparent(),
                event: None,
                events,
                wait: false,
                wait_timeout: None,
                answer,
            })
            .ok()?;
        Some(rx)
    }

    /// Queues `event` for the peer, in order with every event queued before; the answer
    /// comes on the receiver. `None` if the link is full (apply it here instead).
    pub fn enqueue(
        &self,
        event: pb::ScaleEvent,
        origin: Origin,
        wait: bool,
        wait_timeout: Option<Duration>,
    ) -> Option<oneshot::Receiver<Answer>> {
        let (answer, rx) = oneshot::channel();
        self.inbox
            .try_send(Outgoing {
                origin: convert::wire_origin(origin),
                traceparent: traces::current_traceparent(),
                event: Some(event),
                events: Vec::new(),
                wait,
                wait_timeout,
                answer,
            })
            .ok()?;
        Some(rx)
    }
}

/// The open stream: where events go, and where their answers come from.
struct Open {
    to_peer: mpsc::Sender<pb::ForwardedEvent>,
    answers: Streaming<pb::ForwardedAnswer>,
}

async fn run(
    mut client: BatchScalerClient<Channel>,
    open: Opener,
    mut inbox: mpsc::Receiver<Outgoing>,
) {
    let mut pending: HashMap<u64, oneshot::Sender<Answer>> = HashMap::new();
    let mut stream: Option<Open> = None;
    let mut down_until: Option<Instant> = None;
    let mut seq = 0u64;
    loop {
        let next = async {
            match &mut stream {
                Some(open) => open.answers.message().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            outgoing = inbox.recv() => {
                let Some(out) = outgoing else { return };
                if down_until.is_some_and(|t| Instant::now() < t) {
                    let _ = out.answer.send(Err(Unreached::unsent("unreachable a moment ago")));
                    continue;
                }
                if stream.is_none() {
                    let (to_peer, rx) = mpsc::channel(QUEUE);
                    match client.forward(open(ReceiverStream::new(rx))).await {
                        Ok(response) => {
                            stream = Some(Open { to_peer, answers: response.into_inner() });
                            down_until = None;
                        }
                        Err(status) => {
                            down_until = Some(Instant::now() + DOWN_FOR);
                            let _ = out.answer.send(Err(Unreached::unsent(status.message())));
                            continue;
                        }
                    }
                }
                seq += 1;
                let event = pb::ForwardedEvent {
                    seq,
                    event: out.event,
                    events: out.events,
                    wait: out.wait,
                    wait_timeout: out.wait_timeout.and_then(|d| prost_types::Duration::try_from(d).ok()),
                    origin: out.origin.into(),
                    traceparent: out.traceparent,
                };
                let sent = match &stream {
                    Some(open) => open.to_peer.send(event).await.is_ok(),
                    None => false,
                };
                if sent {
                    pending.insert(seq, out.answer);
                } else {
                    let _ = out.answer.send(Err(Unreached::unsent("the forward stream closed")));
                    stream = None;
                }
            }
            answer = next => match answer {
                Ok(Some(answer)) => {
                    if let Some(waiter) = pending.remove(&answer.seq) {
                        let _ = waiter.send(Ok(answer));
                    }
                }
                // Ended in order (the owner answered all it took, and says it is shutting
                // down): what is still waiting never reached it. Broken (killed, reset): it
                // may have.
                other => {
                    let shutting_down = IntakeError::ShuttingDown.to_string();
                    let (why, maybe_delivered) = match other {
                        Err(status) if status.code() == tonic::Code::Unavailable && status.message() == shutting_down => {
                            (shutting_down, false)
                        }
                        Err(status) => (status.message().to_owned(), true),
                        _ => ("the peer ended the forward stream".to_owned(), false),
                    };
                    for (_, waiter) in pending.drain() {
                        let _ = waiter.send(Err(Unreached { why: why.clone(), maybe_delivered }));
                    }
                    stream = None;
                }
            },
        }
    }
}
