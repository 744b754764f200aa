//! Drift repair's way in: recovered deliveries and verified completions enter as a producer's
//! jobs and events do (routing, event-id deduplication, forwarding to the HRA's owner), marked
//! with where they came from.

use super::service::BatchScalerService;
use crate::{
    domain::{
        event::{Origin, ScaleEvent},
        hra::HraKey,
        routing::WorkflowJob,
    },
    github::{Intake, Recovery},
};
use std::sync::Arc;

/// The service's intake, as drift repair uses it.
pub struct ServiceIntake {
    service: BatchScalerService,
}

impl ServiceIntake {
    /// Drift repair feeding `service`.
    pub fn new(service: BatchScalerService) -> Self {
        Self { service }
    }
}

#[async_trait::async_trait]
impl Intake for ServiceIntake {
    async fn recover(&self, job: WorkflowJob) -> Recovery {
        let queued = match self
            .service
            .queue_job(job, Origin::Recovered, false, None, false)
        {
            Ok(q) => q,
            Err(e) => return Recovery::Refused(e.to_string()),
        };
        if !queued.scales() {
            return Recovery::Ignored;
        }
        match queued.answer(&self.service, None).await {
            Ok(r) if r.duplicate => Recovery::Duplicate,
            Ok(_) => Recovery::Queued,
            Err(e) => Recovery::Refused(e.to_string()),
        }
    }

    async fn complete(
        &self,
        key: HraKey,
        job: Arc<str>,
        repository: Arc<str>,
    ) -> Result<(), String> {
        let event = ScaleEvent {
            key,
            amount: -1,
            duration: None,
            event_id: None,
            job_id: Some(job.to_string()),
            repository: Some(repository),
            origin: Origin::Verified,
            started: None,
            times: None,
        };
        let delivery = self
            .service
            .start_delivery(&event, false, None, false)
            .map_err(|e| e.to_string())?;
        self.service
            .finish_delivery(delivery, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn owns(&self, key: &HraKey) -> bool {
        self.service.peers.as_ref().is_none_or(|p| p.owns(key))
    }
}
