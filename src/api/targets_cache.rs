//! What `WatchTargets` streams share: the HRAs as last read for them, and the stream's type.

use super::pb;
use std::{pin::Pin, sync::Arc, time::Instant};
use tokio_stream::Stream;
use tonic::Status;

/// The stream of `WatchTargets`.
pub type TargetsStream = Pin<Box<dyn Stream<Item = Result<pb::TargetsUpdate, Status>> + Send>>;

/// One HRA as watches send it, with what its content hashes to.
pub struct Row {
    /// `namespace/name`.
    pub key: Arc<str>,
    /// What its content hashes to.
    pub print: u64,
    /// The row as sent.
    pub target: pb::Target,
}

/// The rows last read for watches, and when (shared by every watch).
pub type TargetsCache = tokio::sync::Mutex<Option<(Instant, Arc<Vec<Row>>)>>;
