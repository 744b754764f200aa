//! Event ids seen (dedupe of redeliveries), bounded by a TTL and a capacity, oldest evicted
//! first, per process. Finished jobs are not kept here but in each HRA (see
//! [`crate::domain::tombstones`]), so they hold across replicas and restarts.
//!
//! A `ScaleAndWait` repeating an event id whose batch is not final yet joins that batch:
//! it is answered with the original's outcome, so "duplicate" always means "applied".

use super::{
    expiring::{ExpiringSet, Inserted},
    queue::Waiter,
};
use crate::{
    domain::report::{BatchReport, Outcome},
    ops::metrics::Metrics,
};
use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc, time::Duration};

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

/// What an event id's sighting means for its event.
#[derive(Debug)]
pub enum Sighting {
    /// Not seen: queue the event (with its waiter, handed back).
    First(Option<Waiter>),
    /// Seen, and its batch applied: nothing to do.
    Duplicate,
    /// Seen, its batch not final yet: the waiter joined it and gets its outcome.
    Joined,
}

struct State {
    seen: ExpiringSet<String>,
    /// Waiters of repeated ids, by id, until the original's batch is final.
    joined: HashMap<String, Vec<Waiter>>,
}

/// Seen event ids.
pub struct Idempotency {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
}

impl Idempotency {
    /// Empty memories of the given limits.
    pub fn new(limits: IdempotencyLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(State {
                seen: ExpiringSet::new(limits.dedupe_ttl, limits.dedupe_capacity),
                joined: HashMap::new(),
            }),
            metrics,
        }
    }

    /// Records `event_id`; a repeat within the TTL is a duplicate, or, while the original's
    /// batch is not final, joins it with `waiter`.
    pub fn sighting(&self, event_id: &str, waiter: Option<Waiter>) -> Sighting {
        let mut state = self.state.lock();
        let sighting = match state.seen.insert(event_id.to_owned()) {
            Inserted::New { evicted } => {
                self.metrics.dedupe(0, evicted);
                return Sighting::First(waiter);
            }
            Inserted::Present { settled: true } => Sighting::Duplicate,
            Inserted::Present { settled: false } => match waiter {
                Some(waiter) => {
                    state
                        .joined
                        .entry(event_id.to_owned())
                        .or_default()
                        .push(waiter);
                    Sighting::Joined
                }
                None => Sighting::Duplicate,
            },
        };
        self.metrics.dedupe(1, 0);
        sighting
    }

    /// Forgets event ids that were refused: a producer's retry must be taken.
    pub fn forget_events<'a>(&self, event_ids: impl IntoIterator<Item = &'a String>) {
        let mut state = self.state.lock();
        for id in event_ids {
            state.seen.remove(id);
        }
    }

    /// Settles the ids of a batch that is final: remembered if it applied, forgotten if it
    /// failed (so the producer's retry is applied); joined waiters get the outcome.
    pub fn settle(&self, event_ids: &[String], report: &Arc<BatchReport>) {
        let mut state = self.state.lock();
        let failed = report.outcome == Outcome::Failed;
        for id in event_ids {
            if failed {
                state.seen.remove(id);
            } else {
                state.seen.settle(id);
            }
            if !state.joined.is_empty()
                && let Some(waiters) = state.joined.remove(id)
            {
                for waiter in waiters {
                    let _ = waiter.send(report.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{hra::HraKey, planner::Counts};
    use tokio::sync::oneshot;

    fn limits() -> IdempotencyLimits {
        IdempotencyLimits {
            dedupe_ttl: Duration::from_secs(60),
            dedupe_capacity: 2,
            tombstone_ttl: Duration::from_secs(60),
            tombstone_capacity: 10,
        }
    }

    fn report(outcome: Outcome) -> Arc<BatchReport> {
        Arc::new(BatchReport {
            key: HraKey::new("ns", "a"),
            batch_id: "b".into(),
            outcome,
            counts: Counts::default(),
            events: 1,
            attempt: 1,
            error: None,
            at: chrono::Utc::now(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn remembers_ids_and_forgets_on_request() {
        let metrics = Arc::new(Metrics::new());
        let ids = Idempotency::new(limits(), metrics.clone());
        assert!(matches!(ids.sighting("d1", None), Sighting::First(None)));
        assert!(matches!(ids.sighting("d1", None), Sighting::Duplicate));
        ids.forget_events([&"d1".to_owned()]);
        assert!(
            matches!(ids.sighting("d1", None), Sighting::First(_)),
            "forgotten: a retry is new"
        );
        ids.sighting("d2", None);
        ids.sighting("d3", None);
        assert!(
            metrics
                .encode()
                .contains("batch_scaler_dedupe_evictions_total 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_while_pending_joins_and_gets_the_outcome() {
        let ids = Idempotency::new(limits(), Arc::new(Metrics::new()));
        let d1 = vec!["d1".to_owned()];
        assert!(matches!(ids.sighting("d1", None), Sighting::First(_)));
        let (tx, mut rx) = oneshot::channel();
        assert!(matches!(ids.sighting("d1", Some(tx)), Sighting::Joined));
        assert!(rx.try_recv().is_err(), "waits for the original");
        ids.settle(&d1, &report(Outcome::Applied));
        assert_eq!(rx.await.unwrap().outcome, Outcome::Applied);
        let (tx, _rx) = oneshot::channel();
        assert!(
            matches!(ids.sighting("d1", Some(tx)), Sighting::Duplicate),
            "applied: a plain duplicate"
        );
        // A failed original is forgotten; a joined waiter hears of the failure.
        assert!(matches!(ids.sighting("d2", None), Sighting::First(_)));
        let (tx, rx) = oneshot::channel();
        assert!(matches!(ids.sighting("d2", Some(tx)), Sighting::Joined));
        ids.settle(&["d2".to_owned()], &report(Outcome::Failed));
        assert_eq!(rx.await.unwrap().outcome, Outcome::Failed);
        assert!(matches!(ids.sighting("d2", None), Sighting::First(_)));
    }
}
