//! Error types, and their one mapping to `tonic::Status`.

use crate::model::HraKey;
use tonic::Status;

/// How a backend answered a read or write. The applier decides what to do from the variant
/// alone, so the memory and kubernetes stores must answer alike.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The HRA does not exist. Terminal.
    #[error("HorizontalRunnerAutoscaler {0} not found")]
    NotFound(HraKey),
    /// The resourceVersion the write was planned from is no longer current: re-read and re-plan.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Not allowed to read or write the HRA. Terminal.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The backend refused what we wrote as invalid. Terminal.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Failed before anything was changed (5xx, connection refused, …); retry later.
    #[error("{0}")]
    Transient(String),
    /// The write may or may not have landed (timeout, connection lost after sending); retry
    /// later, after checking whether it did.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

impl StoreError {
    /// True for errors that retrying cannot fix.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_) | Self::Forbidden(_) | Self::Invalid(_)
        )
    }
}

/// A field of a request that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Name of the field as in the proto (`namespace`, `duration`, …).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Prefixes the field with the event's index in a `Publish` stream: `events[3].amount`.
    pub fn at_index(self, index: u64) -> Self {
        Self {
            field: format!("events[{index}].{}", self.field),
            message: self.message,
        }
    }
}

/// Why an RPC failed, mapped to a gRPC status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed request.
    #[error(transparent)]
    InvalidArgument(#[from] FieldError),
    /// The HRA asked for does not exist.
    #[error("HorizontalRunnerAutoscaler {0} not found")]
    NotFound(HraKey),
    /// A namespace outside the allowlist.
    #[error("{0}")]
    PermissionDenied(String),
    /// The service is shutting down and takes no new events.
    #[error("shutting down: no new events are accepted")]
    ShuttingDown,
    /// A backend failure while serving a read.
    #[error("backend: {0}")]
    Backend(StoreError),
}

impl ApiError {
    /// Names the event's index in a `Publish` stream.
    pub fn at_index(self, index: u64) -> Self {
        match self {
            Self::InvalidArgument(f) => Self::InvalidArgument(f.at_index(index)),
            Self::PermissionDenied(m) => Self::PermissionDenied(format!("events[{index}]: {m}")),
            other => other,
        }
    }

    /// Label for the events-received metric.
    pub fn metric_result(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "invalid",
            Self::PermissionDenied(_) => "denied",
            _ => "refused",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(key) => Self::NotFound(key),
            other => Self::Backend(other),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        match e {
            ApiError::InvalidArgument(_) => Status::invalid_argument(message),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::PermissionDenied(_) => Status::permission_denied(message),
            ApiError::ShuttingDown => Status::unavailable(message),
            ApiError::Backend(StoreError::Forbidden(_)) => Status::permission_denied(message),
            ApiError::Backend(_) => Status::unavailable(message),
        }
    }
}
