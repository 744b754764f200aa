//! Why an RPC failed, and its one mapping to `tonic::Status`: no other module builds one.

use crate::{
    domain::{hra::HraKey, namespaces::NamespaceDenied, validate::FieldError},
    engine::batcher::IntakeError,
    store::StoreError,
};
use tonic::Status;

/// Why an RPC failed.
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
    /// No or a wrong bearer token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The service is shutting down and takes no new events.
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// A bound on pending events is reached (with the event's index in a `Publish` stream).
    #[error("{0}")]
    Exhausted(String),
    /// A backend failure while serving a read.
    #[error("backend: {0}")]
    Backend(#[source] StoreError),
    /// The caller's deadline passed before the batch had its outcome.
    #[error(
        "the deadline passed before the batch had its outcome; the event stays queued and will be applied"
    )]
    DeadlineExceeded,
    /// The store has no routing index (a Kubernetes store built without its watch caches).
    #[error(
        "this store cannot route workflow jobs (it has no watch caches); send ScaleEvents naming the HRA"
    )]
    RoutingUnavailable,
    /// The routing model has not listed everything yet: any answer could be wrong.
    #[error(
        "routing is not ready: {unsynced} watch caches (HRAs, RunnerDeployments, RunnerSets) have not listed everything yet; retry shortly"
    )]
    RoutingNotReady {
        /// Sources still listing.
        unsynced: usize,
    },
    /// The batch holding the event ended without an outcome for it.
    #[error("the batch holding the event was abandoned")]
    Abandoned,
    /// A `Publish` stream stopped at one event; those before it stay accepted.
    #[error(
        "{cause}; the {accepted} events before it were accepted ({duplicates} duplicates dropped)"
    )]
    PublishStopped {
        /// Why, naming the event's index.
        #[source]
        cause: Box<ApiError>,
        /// Events of the stream queued before it.
        accepted: u64,
        /// Events of the stream dropped as duplicates before it.
        duplicates: u64,
    },
    /// Shutdown began while a `Publish` stream was open.
    #[error("shutting down; {accepted} events of this stream were accepted")]
    PublishShutDown {
        /// Events of the stream queued.
        accepted: u64,
    },
    /// The HRA's owner (another replica) refused a forwarded event: its code and message.
    #[error("{message}")]
    Owner {
        /// The gRPC status code the owner answered.
        code: u32,
        /// Its message.
        message: String,
    },
    /// Job-less events the HRA's owner took but did not answer (it stopped, or is slow): they
    /// may have been applied there, so they are not applied here.
    #[error(
        "the owner of HRA {hra} took {events} job-less event(s) but did not answer (it stopped, or is slow): they may have been applied, so they were not applied here; a retry with the same event_id is safe once the owner answers again"
    )]
    OwnerLost {
        /// The HRA.
        hra: String,
        /// How many events.
        events: usize,
    },
    /// The transport's own error (a broken stream), passed through as it came.
    #[error("{}", .0.message())]
    Transport(Status),
}

impl ApiError {
    /// Names the event's index in a `Publish` stream.
    pub fn at_index(self, index: u64) -> Self {
        match self {
            Self::InvalidArgument(f) => Self::InvalidArgument(f.at_index(index)),
            Self::PermissionDenied(m) => Self::PermissionDenied(format!("events[{index}]: {m}")),
            Self::Intake(IntakeError::Exhausted(e)) => {
                Self::Exhausted(format!("events[{index}]: {e}"))
            }
            other => other,
        }
    }

    /// Label for the events-received metric.
    pub fn metric_result(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "invalid",
            Self::PermissionDenied(_) => "denied",
            Self::Intake(IntakeError::Exhausted(_)) | Self::Exhausted(_) => "exhausted",
            Self::PublishStopped { cause, .. } => cause.metric_result(),
            _ => "refused",
        }
    }
}

impl From<NamespaceDenied> for ApiError {
    fn from(e: NamespaceDenied) -> Self {
        Self::PermissionDenied(e.to_string())
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

/// Most bytes of an error message sent: bad values are quoted short already
/// (`domain::validate::quote`); this bounds whatever else a message carries.
const MAX_MESSAGE_BYTES: usize = 1024;

/// `message`, cut at [`MAX_MESSAGE_BYTES`] on a character boundary.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let total = message.len();
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(&format!("… ({total} bytes in all)"));
    }
    message
}

/// What tonic's decoder says of a message over `--max-message-bytes` (it answers
/// OUT_OF_RANGE; the gRPC spec says RESOURCE_EXHAUSTED).
const DECODED_TOO_LARGE: &str = "Error, decoded message length too large: found ";

/// A status from the transport as we pass it on: a request message over the size limit is
/// `RESOURCE_EXHAUSTED` naming the limit, as the gRPC spec has it; anything else as it came.
pub fn transport_status(status: Status) -> Status {
    match status.message().strip_prefix(DECODED_TOO_LARGE) {
        Some(rest) if status.code() == tonic::Code::OutOfRange => {
            let found = rest.split(' ').next().unwrap_or("?");
            let limit = rest
                .rsplit("the limit is: ")
                .next()
                .and_then(|l| l.split(' ').next())
                .unwrap_or("?");
            Status::resource_exhausted(format!(
                "a request message of {found} bytes is larger than --max-message-bytes ({limit})"
            ))
        }
        _ => status,
    }
}

/// [`transport_status`] for an answer whose status is in its headers (a unary call refused
/// before its handler ran).
pub fn transport_answer<B>(mut answer: http::Response<B>) -> http::Response<B> {
    let headers = answer.headers();
    if headers.get("grpc-status").map(|v| v.as_bytes()) != Some(b"11") {
        return answer;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return answer;
    };
    let mapped = transport_status(status);
    if mapped.code() == tonic::Code::ResourceExhausted {
        let headers = answer.headers_mut();
        headers.remove("grpc-status");
        headers.remove("grpc-message");
        let _ = mapped.add_header(headers);
    }
    answer
}

/// The whole answer to a call refused before its request was read (no token, or not the
/// role it needs).
pub fn refusal(e: ApiError) -> http::Response<tonic::body::Body> {
    Status::from(e).into_http()
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = bounded(e.to_string());
        let code = match e {
            ApiError::Transport(status) => return transport_status(status),
            ApiError::Owner { code, .. } => tonic::Code::from_i32(code as i32),
            ApiError::PublishStopped { cause, .. } => Status::from(*cause).code(),
            ApiError::InvalidArgument(_) => tonic::Code::InvalidArgument,
            ApiError::NotFound(_) => tonic::Code::NotFound,
            ApiError::PermissionDenied(_) | ApiError::Backend(StoreError::Forbidden { .. }) => {
                tonic::Code::PermissionDenied
            }
            ApiError::Unauthenticated(_) => tonic::Code::Unauthenticated,
            ApiError::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ApiError::Exhausted(_) => tonic::Code::ResourceExhausted,
            ApiError::RoutingUnavailable => tonic::Code::Unimplemented,
            ApiError::Intake(IntakeError::Exhausted(_)) => tonic::Code::ResourceExhausted,
            ApiError::Intake(_)
            | ApiError::RoutingNotReady { .. }
            | ApiError::Backend(_)
            | ApiError::Abandoned
            | ApiError::OwnerLost { .. }
            | ApiError::PublishShutDown { .. } => tonic::Code::Unavailable,
        };
        Status::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_publish_keeps_the_cause_code() {
        let invalid = ApiError::from(FieldError::new("amount", "too big")).at_index(3);
        let stopped = ApiError::PublishStopped {
            cause: Box::new(invalid),
            accepted: 3,
            duplicates: 0,
        };
        let status = Status::from(stopped);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "events[3].amount: too big; the 3 events before it were accepted (0 duplicates dropped)"
        );
        let denied = ApiError::from(NamespaceDenied("prod".into())).at_index(1);
        assert_eq!(Status::from(denied).code(), tonic::Code::PermissionDenied);
        let forbidden = ApiError::from(StoreError::forbidden("rbac"));
        assert_eq!(
            Status::from(forbidden).code(),
            tonic::Code::PermissionDenied
        );
        let missing = ApiError::from(StoreError::NotFound(HraKey::new("a", "b")));
        assert_eq!(Status::from(missing).code(), tonic::Code::NotFound);
        let down = ApiError::from(IntakeError::ShuttingDown);
        assert_eq!(Status::from(down).code(), tonic::Code::Unavailable);
    }

    #[test]
    fn messages_are_bounded_and_oversized_requests_are_resource_exhausted() {
        let long = Status::from(ApiError::PermissionDenied("x".repeat(100_000)));
        assert!(long.message().len() < 1100, "{}", long.message().len());
        assert!(long.message().ends_with("(100000 bytes in all)"));
        let decoded = Status::out_of_range(
            "Error, decoded message length too large: found 70000 bytes, the limit is: 65536 bytes",
        );
        let mapped = Status::from(ApiError::Transport(decoded));
        assert_eq!(mapped.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            mapped.message(),
            "a request message of 70000 bytes is larger than --max-message-bytes (65536)"
        );
        let other = Status::out_of_range("something else");
        assert_eq!(transport_status(other).code(), tonic::Code::OutOfRange);
    }
}
