//! The result hub: fans batch reports out to watchers, with a replay ring, and keeps the last
//! result of every HRA (for overviews: a failing HRA stays visible however many other batches
//! follow). Publishing never waits: a watcher whose buffer is full loses the result and is told
//! how many it lost (`missed`) with its next message.

use crate::{
    domain::{hra::HraKey, namespaces::Allowlist, report::BatchReport},
    ops::metrics::Metrics,
};
use parking_lot::Mutex;
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};
use tokio::sync::mpsc;

/// Which results a watcher wants: empty parts match everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this namespace, if set.
    pub namespace: Option<String>,
    /// Only HRAs of this name, if set.
    pub name: Option<String>,
    /// Only namespaces this list allows.
    pub allowed: Allowlist,
}

impl Filter {
    /// True if `key` passes the filter.
    pub fn matches(&self, key: &HraKey) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| *ns == key.namespace)
            && self.name.as_ref().is_none_or(|n| *n == key.name)
            && self.allowed.allows(&key.namespace)
    }
}

/// A watcher's view: the replayed results, then live ones.
pub struct Subscription {
    /// Up to `replay` most recent matching results, oldest first.
    pub replay: Vec<Arc<BatchReport>>,
    /// Live results; ends when the hub closes.
    pub live: mpsc::Receiver<Arc<BatchReport>>,
    /// Results dropped for this watcher since it last took the count.
    pub missed: Arc<AtomicU64>,
}

struct Watcher {
    filter: Filter,
    tx: mpsc::Sender<Arc<BatchReport>>,
    missed: Arc<AtomicU64>,
}

/// Most HRAs whose last result is kept (beyond it, the oldest result is forgotten).
pub const LAST_RESULTS_KEPT: usize = 100_000;

struct HubState {
    recent: VecDeque<Arc<BatchReport>>,
    /// The last result of each HRA.
    last: HashMap<HraKey, Arc<BatchReport>>,
    watchers: Vec<Watcher>,
    closed: bool,
}

/// Fans batch results out to watchers.
pub struct ResultHub {
    state: Mutex<HubState>,
    ring_capacity: usize,
    watcher_buffer: usize,
    metrics: Arc<Metrics>,
}

impl ResultHub {
    /// A hub keeping `ring_capacity` recent results for replay and buffering up to
    /// `watcher_buffer` results per watcher, counting dropped results in `metrics`.
    pub fn new(ring_capacity: usize, watcher_buffer: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(HubState {
                recent: VecDeque::with_capacity(ring_capacity),
                last: HashMap::new(),
                watchers: Vec::new(),
                closed: false,
            }),
            ring_capacity,
            watcher_buffer: watcher_buffer.max(1),
            metrics,
        }
    }

    /// Records a result and hands it to every matching watcher that has room.
    pub fn publish(&self, report: Arc<BatchReport>) {
        let mut state = self.state.lock();
        let new_key = state
            .last
            .insert(report.key.clone(), report.clone())
            .is_none();
        if new_key && state.last.len() > LAST_RESULTS_KEPT {
            let oldest = state
                .last
                .values()
                .min_by_key(|r| r.at)
                .map(|r| r.key.clone());
            if let Some(oldest) = oldest {
                state.last.remove(&oldest);
            }
        }
        if self.ring_capacity > 0 {
            if state.recent.len() == self.ring_capacity {
                state.recent.pop_front();
            }
            state.recent.push_back(report.clone());
        }
        state.watchers.retain(|w| {
            if !w.filter.matches(&report.key) {
                return !w.tx.is_closed();
            }
            match w.tx.try_send(report.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.missed.fetch_add(1, Ordering::Relaxed);
                    self.metrics.watch_dropped(1);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// The last result published for `key`, if any.
    pub fn last(&self, key: &HraKey) -> Option<Arc<BatchReport>> {
        self.state.lock().last.get(key).cloned()
    }

    /// Starts watching: the last `replay` matching results, then everything new.
    pub fn subscribe(&self, filter: Filter, replay: usize) -> Subscription {
        let (tx, live) = mpsc::channel(self.watcher_buffer);
        let missed = Arc::new(AtomicU64::new(0));
        let mut state = self.state.lock();
        let mut replayed: Vec<_> = state
            .recent
            .iter()
            .rev()
            .filter(|r| filter.matches(&r.key))
            .take(replay)
            .cloned()
            .collect();
        replayed.reverse();
        if !state.closed {
            state.watchers.push(Watcher {
                filter,
                tx,
                missed: missed.clone(),
            });
        }
        Subscription {
            replay: replayed,
            live,
            missed,
        }
    }

    /// Ends every watch stream (after their buffered results) and refuses new live watchers.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.watchers.clear();
    }

    /// Watchers currently connected.
    pub fn watchers(&self) -> usize {
        let mut state = self.state.lock();
        state.watchers.retain(|w| !w.tx.is_closed());
        state.watchers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{planner::Counts, report::Outcome};
    use chrono::Utc;

    fn hub(ring: usize, buffer: usize) -> ResultHub {
        ResultHub::new(ring, buffer, Arc::default())
    }

    fn report(ns: &str, name: &str, n: u64) -> BatchReport {
        BatchReport {
            key: HraKey::new(ns, name),
            outcome: Outcome::Applied,
            counts: Counts {
                added: n,
                ..Counts::default()
            },
            events: 1,
            attempt: 1,
            error: None,
            at: Utc::now(),
            batch_id: format!("b{n}"),
            recovered: 0,
            verified: 0,
            failed_jobs: Vec::new(),
            finished_jobs_forgotten: 0,
        }
    }

    #[test]
    fn the_last_result_of_each_hra_outlives_the_replay_ring() {
        let hub = hub(4, 8);
        let mut failed = report("a", "failing", 0);
        failed.outcome = Outcome::Failed;
        hub.publish(Arc::new(failed));
        for n in 1..=40 {
            hub.publish(Arc::new(report("a", "healthy", n)));
        }
        let last = hub.last(&HraKey::new("a", "failing")).unwrap();
        assert_eq!(
            (last.outcome, last.batch_id.as_str()),
            (Outcome::Failed, "b0")
        );
        assert_eq!(
            hub.last(&HraKey::new("a", "healthy")).unwrap().batch_id,
            "b40"
        );
        assert!(hub.last(&HraKey::new("a", "never")).is_none());
    }

    #[test]
    fn replay_returns_the_most_recent_matching_results_in_order() {
        let hub = hub(4, 8);
        for n in 0..6 {
            hub.publish(Arc::new(report("a", if n % 2 == 0 { "x" } else { "y" }, n)));
        }
        let filter = Filter {
            namespace: Some("a".into()),
            name: Some("x".into()),
            ..Filter::default()
        };
        let sub = hub.subscribe(filter, 10);
        let ids: Vec<_> = sub.replay.iter().map(|r| r.batch_id.as_str()).collect();
        assert_eq!(ids, ["b2", "b4"]); // b0 fell out of the ring of 4
        let all = hub.subscribe(Filter::default(), 2);
        let ids: Vec<_> = all.replay.iter().map(|r| r.batch_id.as_str()).collect();
        assert_eq!(ids, ["b4", "b5"]);
    }

    #[tokio::test]
    async fn a_full_watcher_misses_results_without_blocking_others() {
        let hub = hub(0, 2);
        let mut slow = hub.subscribe(Filter::default(), 0);
        let mut fast = hub.subscribe(Filter::default(), 0);
        let mut other_ns = hub.subscribe(
            Filter {
                namespace: Some("b".into()),
                ..Filter::default()
            },
            0,
        );
        for n in 0..5 {
            hub.publish(Arc::new(report("a", "x", n)));
            assert_eq!(fast.live.recv().await.unwrap().batch_id, format!("b{n}"));
        }
        assert_eq!(slow.missed.load(Ordering::Relaxed), 3);
        assert!(
            hub.metrics
                .encode()
                .contains("batch_scaler_watch_results_dropped_total 3")
        );
        assert_eq!(slow.live.recv().await.unwrap().batch_id, "b0");
        assert!(other_ns.live.try_recv().is_err());
        assert_eq!(other_ns.missed.load(Ordering::Relaxed), 0);
        hub.close();
        assert_eq!(slow.live.recv().await.unwrap().batch_id, "b1");
        assert!(slow.live.recv().await.is_none());
    }

    #[test]
    fn the_allowlist_hides_other_namespaces() {
        let hub = hub(8, 8);
        hub.publish(Arc::new(report("ci", "x", 1)));
        hub.publish(Arc::new(report("prod", "x", 2)));
        let filter = Filter {
            allowed: Allowlist::new(["ci".to_owned()]),
            ..Filter::default()
        };
        let sub = hub.subscribe(filter, 10);
        let ids: Vec<_> = sub.replay.iter().map(|r| r.batch_id.as_str()).collect();
        assert_eq!(ids, ["b1"]);
    }

    #[test]
    fn dropped_watchers_are_forgotten() {
        let hub = hub(0, 2);
        let sub = hub.subscribe(Filter::default(), 0);
        assert_eq!(hub.watchers(), 1);
        drop(sub);
        hub.publish(Arc::new(report("a", "x", 1)));
        assert_eq!(hub.watchers(), 0);
    }
}
