//! Event ids seen (dedupe of redeliveries), bounded by a TTL and a capacity, oldest evicted
//! first, per process. Finished jobs are not kept here but in each HRA (see
//! [`crate::domain::tombstones`]), so they hold across replicas and restarts.

use super::expiring::ExpiringSet;
use crate::ops::metrics::Metrics;
use std::{sync::Arc, time::Duration};

/// How long and how many event ids, and finished jobs per HRA, are remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyLimits {
    /// How long event ids are remembered.
    pub dedupe_ttl: Duration,
    /// Most event ids remembered.
    pub dedupe_capacity: usize,
    /// How long finished jobs are remembered (in the HRA).
    pub tombstone_ttl: Duration,
    /// Most finished jobs one HRA remembers.
    pub tombstone_capacity: usize,
}

/// Seen event ids.
pub struct Idempotency {
    seen: ExpiringSet<String>,
    metrics: Arc<Metrics>,
}

impl Idempotency {
    /// Empty memories of the given limits.
    pub fn new(limits: IdempotencyLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            seen: ExpiringSet::new(limits.dedupe_ttl, limits.dedupe_capacity),
            metrics,
        }
    }

    /// Records `event_id`; false if it was seen within the TTL (a duplicate).
    pub fn first_sighting(&self, event_id: &str) -> bool {
        let (new, evicted) = self.seen.insert(event_id.to_owned());
        self.metrics.dedupe(u64::from(!new), evicted);
        new
    }

    /// Forgets event ids (their batch failed: a producer's retry must be applied).
    pub fn forget_events<'a>(&self, event_ids: impl IntoIterator<Item = &'a String>) {
        for id in event_ids {
            self.seen.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> IdempotencyLimits {
        IdempotencyLimits {
            dedupe_ttl: Duration::from_secs(60),
            dedupe_capacity: 2,
            tombstone_ttl: Duration::from_secs(60),
            tombstone_capacity: 10,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn remembers_ids_and_forgets_on_request() {
        let metrics = Arc::new(Metrics::new());
        let ids = Idempotency::new(limits(), metrics.clone());
        assert!(ids.first_sighting("d1"));
        assert!(!ids.first_sighting("d1"));
        ids.forget_events([&"d1".to_owned()]);
        assert!(ids.first_sighting("d1"), "forgotten: a retry is new");
        ids.first_sighting("d2");
        ids.first_sighting("d3");
        assert!(
            metrics
                .encode()
                .contains("batch_scaler_dedupe_evictions_total 1")
        );
    }
}
