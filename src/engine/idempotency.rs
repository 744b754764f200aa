//! The one owner of what the service remembers to stay idempotent: event ids seen (dedupe of
//! redeliveries) and jobs finished per HRA (a late `+1` for them adds nothing). Both are
//! bounded by a TTL and a capacity, oldest evicted first, and both are per process.

use super::expiring::ExpiringSet;
use crate::{domain::hra::HraKey, ops::metrics::Metrics};
use std::{sync::Arc, time::Duration};

/// How long and how many of each kind of id are remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyLimits {
    /// How long event ids are remembered.
    pub dedupe_ttl: Duration,
    /// Most event ids remembered.
    pub dedupe_capacity: usize,
    /// How long finished jobs are remembered.
    pub tombstone_ttl: Duration,
    /// Most finished jobs remembered.
    pub tombstone_capacity: usize,
}

/// Seen event ids and finished jobs.
pub struct Idempotency {
    seen: ExpiringSet<String>,
    finished: ExpiringSet<(HraKey, Arc<str>)>,
    metrics: Arc<Metrics>,
}

impl Idempotency {
    /// Empty memories of the given limits.
    pub fn new(limits: IdempotencyLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            seen: ExpiringSet::new(limits.dedupe_ttl, limits.dedupe_capacity),
            finished: ExpiringSet::new(limits.tombstone_ttl, limits.tombstone_capacity),
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

    /// True if `job` finished on `key` within the TTL.
    pub fn is_finished(&self, key: &HraKey, job: &Arc<str>) -> bool {
        self.finished.contains(&(key.clone(), job.clone()))
    }

    /// Remembers jobs whose completion was applied to `key`.
    pub fn record_finished(&self, key: &HraKey, jobs: &[Arc<str>]) {
        for job in jobs {
            self.finished.insert((key.clone(), job.clone()));
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
    async fn remembers_ids_and_jobs_and_forgets_on_request() {
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
        let key = HraKey::new("ns", "a");
        let job: Arc<str> = "42".into();
        assert!(!ids.is_finished(&key, &job));
        ids.record_finished(&key, std::slice::from_ref(&job));
        assert!(ids.is_finished(&key, &job));
        assert!(!ids.is_finished(&HraKey::new("ns", "b"), &job), "per HRA");
    }
}
