//! Serving a bidirectional stream whose requests are each answered when their work ends
//! (`ScaleJobs`, `Forward`): requests are taken in order as they arrive, answers go back in
//! completion order, and a failed request is an answer, not the end of the stream.

use super::error::ApiError;
use crate::engine::batcher::IntakeError;
use futures::{StreamExt as _, future::BoxFuture, stream::FuturesUnordered};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

/// What became of one request: its answer now, or one still to come.
pub(super) enum Taken<A> {
    /// Answered at once (a refusal, or nothing to wait for).
    Now(A),
    /// Answered when this resolves.
    Later(BoxFuture<'static, A>),
}

/// Reads `incoming` until the caller closes its side (or `shutdown` fires), handing each
/// request to `take`, and sends every answer as soon as it is ready; then ends the stream:
/// `UNAVAILABLE` after a shutdown, so the caller goes elsewhere. A caller whose side breaks
/// gets its error back, and nothing more.
pub(super) async fn answer_each<R, A>(
    mut incoming: Streaming<R>,
    answers: mpsc::Sender<Result<A, Status>>,
    shutdown: CancellationToken,
    mut take: impl FnMut(R) -> Taken<A>,
) {
    let mut waiting = FuturesUnordered::new();
    let mut reading = true;
    loop {
        let answer = tokio::select! {
            next = incoming.message(), if reading => match next {
                Ok(Some(request)) => match take(request) {
                    Taken::Now(answer) => answer,
                    Taken::Later(answer) => {
                        waiting.push(answer);
                        continue;
                    }
                },
                Ok(None) => {
                    reading = false;
                    continue;
                }
                Err(status) => {
                    // The caller's side broke: nobody is left to answer.
                    let _ = answers.send(Err(super::error::transport_status(status))).await;
                    return;
                }
            },
            Some(answer) = waiting.next(), if !waiting.is_empty() => answer,
            () = shutdown.cancelled(), if reading => {
                reading = false;
                continue;
            }
            else => break,
        };
        if answers.send(Ok(answer)).await.is_err() {
            return;
        }
    }
    if shutdown.is_cancelled() {
        let _ = answers
            .send(Err(Status::from(ApiError::Intake(
                IntakeError::ShuttingDown,
            ))))
            .await;
    }
}
