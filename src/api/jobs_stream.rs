//! `ScaleJobs`: many workflow jobs on one bidirectional stream. Each job is routed and queued
//! as `ScaleJob` does the moment it arrives; answers go back in completion order, each
//! carrying the job's ids, and a failed job is an answer with its status code, not the end of
//! the stream. A frontend holds one call instead of one per pending delivery.

use super::stream_answers::{Taken, answer_each};
use super::{
    convert,
    error::ApiError,
    pb,
    service::{BatchScalerService, JobAnswers},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// Answers buffered for a caller that reads them slowly; past it, no more jobs are read from
/// its stream until it catches up (HTTP/2 flow control then holds the caller back).
const ANSWERS_BUFFER: usize = 1024;

/// A job's failure as its answer on the stream.
fn failed(e: ApiError, job_id: String, event_id: String) -> pb::ScaleJobResult {
    let status = Status::from(e);
    pb::ScaleJobResult {
        job_id,
        event_id,
        code: status.code() as u32,
        message: status.message().to_owned(),
        ..Default::default()
    }
}

impl BatchScalerService {
    /// Serves one `ScaleJobs` stream: a task reads jobs and answers them as their batches end.
    pub(super) fn scale_jobs_stream(
        &self,
        incoming: Streaming<pb::WorkflowJob>,
        forwarded: bool,
    ) -> JobAnswers {
        let (tx, rx) = mpsc::channel(ANSWERS_BUFFER);
        tokio::spawn(self.clone().serve_jobs(incoming, tx, forwarded));
        Box::pin(ReceiverStream::new(rx))
    }

    /// Reads until the caller closes its side (or shutdown starts), then answers the jobs
    /// still waiting and ends the stream: `UNAVAILABLE` after a shutdown, so the caller
    /// reconnects elsewhere.
    async fn serve_jobs(
        self,
        incoming: Streaming<pb::WorkflowJob>,
        answers: mpsc::Sender<Result<pb::ScaleJobResult, Status>>,
        forwarded: bool,
    ) {
        let shutdown = self.shutdown.clone();
        answer_each(incoming, answers, shutdown, |job| {
            self.take_job(job, forwarded)
        })
        .await
    }

    /// Routes and queues one job of the stream; its answer comes once its batch is final.
    fn take_job(&self, job: pb::WorkflowJob, forwarded: bool) -> Taken<pb::ScaleJobResult> {
        let (job_id, event_id) = (job.job_id.clone(), job.event_id.clone());
        let queued = convert::wait_timeout(job.wait_timeout.as_ref())
            .map_err(ApiError::from)
            .and_then(|timeout| Ok((timeout, self.queue_workflow_job(job, timeout, forwarded)?)));
        match queued {
            Ok((timeout, queued)) => {
                let this = self.clone();
                Taken::Later(Box::pin(async move {
                    queued
                        .answer(&this, timeout)
                        .await
                        .unwrap_or_else(|e| failed(e, job_id, event_id))
                }))
            }
            Err(e) => Taken::Now(failed(e, job_id, event_id)),
        }
    }
}
