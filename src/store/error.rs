//! How a backend answered: the classes the applier acts on, each keeping its cause.

use crate::domain::hra::HraKey;
use std::{error::Error, sync::Arc};

/// The underlying error of a [`StoreError`] (a `kube::Error`, an IO error, …).
pub type Cause = Arc<dyn Error + Send + Sync>;

/// How a backend answered a read or write. The applier decides what to do from the variant
/// alone, so every store must answer alike; `source` keeps the backend's own error.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The HRA does not exist. Terminal.
    #[error("HorizontalRunnerAutoscaler {0} not found")]
    NotFound(HraKey),
    /// The resourceVersion the write was planned from is no longer current: re-read and re-plan.
    #[error("conflict: {message}")]
    Conflict {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Cause>,
    },
    /// Not allowed to read or write the HRA. Terminal.
    #[error("forbidden: {message}")]
    Forbidden {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Cause>,
    },
    /// The backend refused what we wrote as invalid. Terminal.
    #[error("invalid: {message}")]
    Invalid {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Cause>,
    },
    /// Failed before anything was changed (5xx, connection refused, …); retry later.
    #[error("{message}")]
    Transient {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Cause>,
    },
    /// The write may or may not have landed (timeout, connection lost after sending); retry
    /// later, after checking whether it did.
    #[error("outcome unknown: {message}")]
    Unknown {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Cause>,
    },
}

macro_rules! constructor {
    ($fn:ident, $variant:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $fn(message: impl Into<String>) -> Self {
            Self::$variant {
                message: message.into(),
                source: None,
            }
        }
    };
}

impl StoreError {
    constructor!(conflict, Conflict, "A conflict with no underlying error.");
    constructor!(forbidden, Forbidden, "A refusal with no underlying error.");
    constructor!(
        invalid,
        Invalid,
        "An invalid object with no underlying error."
    );
    constructor!(
        transient,
        Transient,
        "A transient failure with no underlying error."
    );
    constructor!(
        unknown,
        Unknown,
        "An unknown outcome with no underlying error."
    );

    /// The same error, caused by `cause`.
    pub fn caused_by(mut self, cause: impl Error + Send + Sync + 'static) -> Self {
        match &mut self {
            Self::NotFound(_) => {}
            Self::Conflict { source, .. }
            | Self::Forbidden { source, .. }
            | Self::Invalid { source, .. }
            | Self::Transient { source, .. }
            | Self::Unknown { source, .. } => *source = Some(Arc::new(cause)),
        }
        self
    }

    /// True for errors that retrying cannot fix.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_) | Self::Forbidden { .. } | Self::Invalid { .. }
        )
    }

    /// Short class name, for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::Forbidden { .. } => "forbidden",
            Self::Invalid { .. } => "invalid",
            Self::Transient { .. } => "transient",
            Self::Unknown { .. } => "unknown",
        }
    }
}

/// Equal when of the same class with the same message (causes are not compared).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::NotFound(a), Self::NotFound(b)) => a == b,
            _ => self.class() == other.class() && self.to_string() == other.to_string(),
        }
    }
}

impl Eq for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_as_the_source() {
        let io = std::io::Error::other("connection reset by peer");
        let e = StoreError::unknown("PATCH failed").caused_by(io);
        assert_eq!(e.to_string(), "outcome unknown: PATCH failed");
        let source = e.source().expect("a source");
        assert_eq!(source.to_string(), "connection reset by peer");
        assert_eq!(e, StoreError::unknown("PATCH failed"));
        assert!(!e.is_terminal() && StoreError::forbidden("x").is_terminal());
    }
}
