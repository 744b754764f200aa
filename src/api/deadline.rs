//! Waiting for a batch's final outcome within the caller's `grpc-timeout`.

use super::error::ApiError;
use crate::{
    domain::report::{BatchReport, Outcome},
    engine::batcher::Submitted,
};
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;
use tonic::Request;

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The caller's deadline, from its `grpc-timeout` header.
pub fn caller_deadline<T>(request: &Request<T>) -> Option<Duration> {
    request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// The final outcome of the batch holding an event, answered just before the caller's
/// deadline (so it gets our status, not a cancel): `DEADLINE_EXCEEDED` leaves the event queued.
pub async fn final_outcome(
    deadline: Option<Duration>,
    outcome: oneshot::Receiver<Arc<BatchReport>>,
) -> Result<Arc<BatchReport>, ApiError> {
    let outcome = match deadline {
        Some(d) => {
            let margin = (d / 10).min(Duration::from_millis(100));
            tokio::time::timeout(d.saturating_sub(margin), outcome)
                .await
                .map_err(|_| ApiError::DeadlineExceeded)?
        }
        None => outcome.await,
    };
    outcome.map_err(|_| ApiError::Abandoned)
}

/// What a waiting caller is answered once its event was submitted: `(duplicate, batch)`.
/// A duplicate that joined a batch not yet final waits for it; if that batch failed, the
/// caller gets the failure (its id is forgotten, so its retry will be applied).
pub async fn waited(
    submitted: Submitted,
    deadline: Option<Duration>,
    outcome: oneshot::Receiver<Arc<BatchReport>>,
) -> Result<(bool, Option<Arc<BatchReport>>), ApiError> {
    match submitted {
        Submitted::Duplicate => Ok((true, None)),
        Submitted::Queued => Ok((false, Some(final_outcome(deadline, outcome).await?))),
        Submitted::Joined => {
            let report = final_outcome(deadline, outcome).await?;
            if report.outcome == Outcome::Failed {
                Ok((false, Some(report)))
            } else {
                Ok((true, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_grpc_timeout;
    use std::time::Duration;

    #[test]
    fn grpc_timeout_header_values() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "5", "5s", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
