//! `Forward`, the owner's side: events another replica received for HRAs this one owns,
//! submitted here in the order they come (never forwarded again) and each answered by its
//! sequence number, after its batch if asked to wait. Like `ScaleJobs`, a failed event is an
//! answer with its code; on shutdown the waiting ones are answered and the stream ends
//! `UNAVAILABLE`, so the sender applies what it still holds itself.

use super::stream_answers::{Taken, answer_each};
use super::{
    convert,
    error::ApiError,
    pb,
    service::{BatchScalerService, ForwardAnswers},
};
use crate::{domain::event::ScaleEvent, ops::traces};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

fn refused(seq: u64, e: ApiError) -> pb::ForwardedAnswer {
    let status = Status::from(e);
    pb::ForwardedAnswer {
        seq,
        code: status.code() as u32,
        message: status.message().to_owned(),
        ..Default::default()
    }
}

impl BatchScalerService {
    /// Several forwarded events nobody waits for (a `Publish`), queued here under one lock;
    /// the answer counts them, or says why it stopped (the events before stay queued).
    fn take_forwarded_events(&self, seq: u64, events: Vec<pb::ScaleEvent>) -> pb::ForwardedAnswer {
        let mut valid = Vec::with_capacity(events.len());
        let mut invalid = None;
        for event in events {
            match self.validate(event) {
                Ok(e) => valid.push(e),
                Err(e) => {
                    invalid = Some(e);
                    break;
                }
            }
        }
        let (accepted, duplicates, stopped) = self.engine.batcher.submit_all(&valid);
        self.metrics.event("accepted", accepted);
        self.metrics.event("duplicate", duplicates);
        let mut answer = match stopped.map(ApiError::from).or(invalid) {
            Some(e) => {
                self.metrics.event(e.metric_result(), 1);
                refused(seq, e)
            }
            None => pb::ForwardedAnswer {
                seq,
                ..Default::default()
            },
        };
        answer.accepted = accepted;
        answer.duplicates = duplicates;
        answer
    }

    /// Serves one `Forward` stream.
    pub(super) fn forward_stream(&self, incoming: Streaming<pb::ForwardedEvent>) -> ForwardAnswers {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(self.clone().serve_forwarded(incoming, tx));
        Box::pin(ReceiverStream::new(rx))
    }

    async fn serve_forwarded(
        self,
        incoming: Streaming<pb::ForwardedEvent>,
        answers: mpsc::Sender<Result<pb::ForwardedAnswer, Status>>,
    ) {
        let shutdown = self.shutdown.clone();
        answer_each(incoming, answers, shutdown, |forwarded| {
            self.take_forwarded(forwarded)
        })
        .await
    }

    /// Submits one forwarded message here, in the forwarding replica's trace.
    fn take_forwarded(&self, forwarded: pb::ForwardedEvent) -> Taken<pb::ForwardedAnswer> {
        let _span = traces::child_of_remote("forwarded", &forwarded.traceparent).entered();
        if !forwarded.events.is_empty() {
            return Taken::Now(self.take_forwarded_events(forwarded.seq, forwarded.events));
        }
        let seq = forwarded.seq;
        let origin = convert::origin(forwarded.origin);
        let started = forwarded
            .event
            .ok_or_else(|| {
                ApiError::from(crate::domain::validate::FieldError::new("event", "missing"))
            })
            .and_then(|e| self.validate(e))
            .map(|event| ScaleEvent { origin, ..event })
            .and_then(|event| {
                let timeout = convert::wait_timeout(forwarded.wait_timeout.as_ref())?;
                Ok((timeout, self.submit_here(&event, forwarded.wait)?))
            });
        match started {
            Ok((timeout, delivery)) => {
                let this = self.clone();
                Taken::Later(Box::pin(async move {
                    match this.finish_delivery(delivery, timeout).await {
                        Ok(d) => pb::ForwardedAnswer {
                            seq,
                            duplicate: d.duplicate,
                            batch: d.batch,
                            ..Default::default()
                        },
                        Err(e) => refused(seq, e),
                    }
                }))
            }
            Err(e) => Taken::Now(refused(seq, e)),
        }
    }
}
