//! A recovered delivery's `workflow_job` payload, read as a webhook frontend reads it: the
//! fields routing needs, as `ScaleJob` receives them, with the delivery's guid as event id.

use crate::domain::{routing::WorkflowJob, validate::FieldError};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// One delivery as `GET …/deliveries/{id}` returns it (the parts used).
#[derive(Clone, Debug, Deserialize)]
pub struct DeliveryDetail {
    /// Delivery id.
    pub id: u64,
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// The event.
    #[serde(default)]
    pub event: String,
    /// What GitHub sent.
    #[serde(default)]
    pub request: Option<DeliveryRequest>,
}

/// The request of a delivery.
#[derive(Clone, Debug, Deserialize)]
pub struct DeliveryRequest {
    /// The webhook body: a JSON object (some servers give it as a JSON string).
    #[serde(default)]
    pub payload: Option<Value>,
}

/// A `workflow_job` webhook body (the parts routing and the job ledger read).
#[derive(Clone, Debug, Deserialize)]
pub struct Payload {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    enterprise: Option<Enterprise>,
    #[serde(default)]
    workflow_job: Option<Job>,
}

#[derive(Clone, Debug, Deserialize)]
struct Repository {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    owner: Option<Owner>,
}

#[derive(Clone, Debug, Deserialize)]
struct Owner {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Enterprise {
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Job {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    runner_id: Option<Value>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    runner_name: Option<String>,
}

impl Payload {
    /// The job the body carries, validated (at `now`) as `ScaleJob` validates one, with
    /// `guid` (`X-GitHub-Delivery`) as event id. Errors name the field at fault.
    pub fn workflow_job(self, guid: &str, now: DateTime<Utc>) -> Result<WorkflowJob, FieldError> {
        let job = self
            .workflow_job
            .ok_or_else(|| FieldError::new("workflow_job", "missing"))?;
        let repository = self.repository.unwrap_or(Repository {
            full_name: String::new(),
            owner: None,
        });
        let job_id = match job.id {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        WorkflowJob {
            action: self.action.unwrap_or_default(),
            repository: repository.full_name,
            owner_type: repository.owner.and_then(|o| o.kind).unwrap_or_default(),
            enterprise: self.enterprise.and_then(|e| e.slug).unwrap_or_default(),
            labels: job.labels,
            conclusion: job.conclusion.unwrap_or_default(),
            has_runner: job.runner_id.is_some_and(|r| !r.is_null()),
            job_id,
            event_id: guid.to_owned(),
            duration: None,
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            runner_name: job.runner_name.unwrap_or_default(),
        }
        .validate(now)
    }
}

impl DeliveryDetail {
    /// The job the delivery carried, validated (at `now`) as `ScaleJob` validates one, with
    /// the guid as event id. Errors name the payload field at fault.
    pub fn workflow_job(&self, now: DateTime<Utc>) -> Result<WorkflowJob, FieldError> {
        let payload = self
            .request
            .as_ref()
            .and_then(|r| r.payload.as_ref())
            .ok_or_else(|| FieldError::new("request.payload", "missing"))?;
        let parsed: Payload = match payload {
            Value::String(text) => serde_json::from_str(text),
            other => serde_json::from_value(other.clone()),
        }
        .map_err(|e| FieldError::new("request.payload", e.to_string()))?;
        parsed
            .workflow_job(&self.guid, now)
            .map_err(|e| FieldError::new(&format!("request.payload.{}", e.field), e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUED: &str = include_str!("../../../testkit/fixtures/github/workflow_job_queued.json");

    fn detail(payload: Value) -> DeliveryDetail {
        DeliveryDetail {
            id: 1,
            guid: "g-1".into(),
            event: "workflow_job".into(),
            request: Some(DeliveryRequest {
                payload: Some(payload),
            }),
        }
    }

    #[test]
    fn reads_a_real_queued_payload_as_a_frontend_would() {
        let payload: Value = serde_json::from_str(QUEUED).unwrap();
        let job = detail(payload.clone()).workflow_job(Utc::now()).unwrap();
        assert_eq!(job.action, "queued");
        assert_eq!(job.event_id, "g-1");
        assert!(!job.job_id.is_empty() && job.job_id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            job.repository,
            payload["repository"]["full_name"].as_str().unwrap()
        );
        assert!(!job.has_runner);
        assert!(job.labels.iter().any(|l| l == "self-hosted"));
        // The same payload given as a string.
        let text = detail(Value::String(QUEUED.into()))
            .workflow_job(Utc::now())
            .unwrap();
        assert_eq!(text, job);
    }

    #[test]
    fn a_completed_job_with_a_runner() {
        let mut payload: Value = serde_json::from_str(QUEUED).unwrap();
        payload["action"] = "completed".into();
        payload["workflow_job"]["conclusion"] = "success".into();
        payload["workflow_job"]["runner_id"] = 7.into();
        let job = detail(payload).workflow_job(Utc::now()).unwrap();
        assert_eq!((job.amount(), job.has_runner), (Ok(-1), true));
    }

    #[test]
    fn bad_payloads_name_the_field() {
        let mut no_job: Value = serde_json::from_str(QUEUED).unwrap();
        no_job["workflow_job"]["id"] = Value::Null;
        let e = detail(no_job).workflow_job(Utc::now()).unwrap_err();
        assert_eq!(e.field, "request.payload.job_id");
        let e = detail(serde_json::json!({"action": "queued"}))
            .workflow_job(Utc::now())
            .unwrap_err();
        assert_eq!(e.field, "request.payload.workflow_job");
        let mut missing = detail(Value::Null);
        missing.request = None;
        assert_eq!(
            missing.workflow_job(Utc::now()).unwrap_err().field,
            "request.payload"
        );
    }
}
