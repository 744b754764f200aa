//! Event ids seen (dedupe of redeliveries), bounded by a TTL and a capacity, oldest evicted
//! first, per process. Finished jobs are not kept here but in each HRA (see
//! [`crate::domain::tombstones`]), so they hold across replicas and restarts.
//!
//! An id is held while its batch is pending, however many others come, and remembered for
//! `--dedupe-ttl` once the batch is final. A `ScaleAndWait` repeating an id whose batch is
//! not final yet joins that batch: it is answered with the original's outcome, so
//! "duplicate" always means "applied". Callers waiting that way count toward the pending
//! bounds (the batcher holds their room) and are dropped as soon as a later repeat finds
//! them gone.

use super::{
    batch::Waiter,
    expiring::{ExpiringSet, Inserted},
};
use crate::{
    domain::{
        hra::HraKey,
        report::{BatchReport, Outcome},
    },
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
    /// Seen, its batch not final yet: the waiter joined it and gets its outcome; `gone`
    /// earlier waiters of the id whose callers had left were dropped.
    Joined {
        /// Waiters dropped because their callers were gone.
        gone: u64,
    },
}

struct State {
    seen: ExpiringSet<String>,
    /// Waiters of repeated ids (and the HRA they wait on), by id, until the original's batch
    /// is final.
    joined: HashMap<String, (HraKey, Vec<Waiter>)>,
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

    /// Records `event_id` (of an event for `key`); a repeat is a duplicate, or, while the
    /// original's batch is not final, joins it with `waiter`.
    pub fn sighting(&self, event_id: &str, key: &HraKey, waiter: Option<Waiter>) -> Sighting {
        let mut state = self.state.lock();
        let sighting = match state.seen.insert(event_id.to_owned()) {
            Inserted::New => return Sighting::First(waiter),
            Inserted::Present { settled: true } => Sighting::Duplicate,
            Inserted::Present { settled: false } => match waiter {
                Some(waiter) => {
                    let (_, waiters) = state
                        .joined
                        .entry(event_id.to_owned())
                        .or_insert_with(|| (key.clone(), Vec::new()));
                    let before = waiters.len();
                    waiters.retain(|w| !w.is_closed());
                    let gone = (before - waiters.len()) as u64;
                    waiters.push(waiter);
                    Sighting::Joined { gone }
                }
                None => Sighting::Duplicate,
            },
        };
        self.metrics.dedupe(1, 0);
        sighting
    }

    /// Drops every joined waiter whose caller is gone; returns how many, per HRA.
    pub fn drop_gone(&self) -> Vec<(HraKey, u64)> {
        let mut state = self.state.lock();
        let mut gone = Vec::new();
        for (key, waiters) in state.joined.values_mut() {
            let before = waiters.len();
            waiters.retain(|w| !w.is_closed());
            if waiters.len() < before {
                gone.push((key.clone(), (before - waiters.len()) as u64));
            }
        }
        gone
    }

    /// Forgets event ids that were refused: a producer's retry must be taken.
    pub fn forget_events<'a>(&self, event_ids: impl IntoIterator<Item = &'a String>) {
        let mut state = self.state.lock();
        for id in event_ids {
            state.seen.remove(id);
        }
    }

    /// Settles the ids of a batch that is final: remembered if it applied, forgotten if it
    /// failed (so the producer's retry is applied); joined waiters get the outcome. Returns
    /// how many joined waiters were answered, per HRA.
    pub fn settle(&self, event_ids: &[String], report: &Arc<BatchReport>) -> Vec<(HraKey, u64)> {
        let mut state = self.state.lock();
        let failed = report.outcome == Outcome::Failed;
        let mut evicted = 0;
        let mut answered = Vec::new();
        for id in event_ids {
            if failed {
                state.seen.remove(id);
            } else {
                evicted += state.seen.settle(id);
            }
            if !state.joined.is_empty()
                && let Some((key, waiters)) = state.joined.remove(id)
            {
                answered.push((key, waiters.len() as u64));
                for waiter in waiters {
                    let _ = waiter.send(report.clone());
                }
            }
        }
        if evicted > 0 {
            self.metrics.dedupe(0, evicted);
        }
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::planner::Counts;
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
            recovered: 0,
            verified: 0,
            failed_jobs: Vec::new(),
            finished_jobs_forgotten: 0,
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
        let k = HraKey::new("ns", "a");
        assert!(matches!(
            ids.sighting("d1", &k, None),
            Sighting::First(None)
        ));
        assert!(matches!(ids.sighting("d1", &k, None), Sighting::Duplicate));
        ids.forget_events([&"d1".to_owned()]);
        assert!(
            matches!(ids.sighting("d1", &k, None), Sighting::First(_)),
            "forgotten: a retry is new"
        );
        let applied = report(Outcome::Applied);
        for id in ["d1", "d2", "d3"] {
            ids.sighting(id, &k, None);
            ids.settle(&[id.to_owned()], &applied);
        }
        assert!(
            metrics
                .encode()
                .contains("batch_scaler_dedupe_evictions_total 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_while_pending_joins_and_gets_the_outcome() {
        let ids = Idempotency::new(limits(), Arc::new(Metrics::new()));
        let k = HraKey::new("ns", "a");
        let d1 = vec!["d1".to_owned()];
        assert!(matches!(ids.sighting("d1", &k, None), Sighting::First(_)));
        let (tx, mut rx) = oneshot::channel();
        assert!(matches!(
            ids.sighting("d1", &k, Some(tx)),
            Sighting::Joined { gone: 0 }
        ));
        assert!(rx.try_recv().is_err(), "waits for the original");
        // Callers that left are dropped by the next repeat.
        let (gone, rx_gone) = oneshot::channel();
        ids.sighting("d1", &k, Some(gone));
        drop(rx_gone);
        let (tx3, _rx3) = oneshot::channel();
        assert!(matches!(
            ids.sighting("d1", &k, Some(tx3)),
            Sighting::Joined { gone: 1 }
        ));
        assert_eq!(
            ids.settle(&d1, &report(Outcome::Applied)),
            vec![(k.clone(), 2)]
        );
        assert_eq!(rx.await.unwrap().outcome, Outcome::Applied);
        let (tx, _rx) = oneshot::channel();
        assert!(
            matches!(ids.sighting("d1", &k, Some(tx)), Sighting::Duplicate),
            "applied: a plain duplicate"
        );
        // A failed original is forgotten; a joined waiter hears of the failure.
        assert!(matches!(ids.sighting("d2", &k, None), Sighting::First(_)));
        let (tx, rx) = oneshot::channel();
        assert!(matches!(
            ids.sighting("d2", &k, Some(tx)),
            Sighting::Joined { .. }
        ));
        ids.settle(&["d2".to_owned()], &report(Outcome::Failed));
        assert_eq!(rx.await.unwrap().outcome, Outcome::Failed);
        assert!(matches!(ids.sighting("d2", &k, None), Sighting::First(_)));
    }
}
