//! Remembered event ids (dedupe). An id is held without limit while its event's batch is
//! pending (the pending bounds cap how many that can be), so a repeat always finds it; once
//! the batch is final ("settled") it is remembered for `ttl` more, at most `capacity`
//! settled ids, the oldest evicted first. Not locked itself: its owner holds it under one
//! lock with what goes with it.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    time::Duration,
};
use tokio::time::Instant;

/// Event ids, pending or settled.
pub struct ExpiringSet<K> {
    /// Each key: `None` while pending, else when it was settled.
    entries: HashMap<K, Option<Instant>>,
    /// Settled keys in settlement order; stale pairs (re-settled or removed keys) are skipped.
    order: VecDeque<(Instant, K)>,
    settled: usize,
    ttl: Duration,
    capacity: usize,
}

/// What [`ExpiringSet::insert`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// New: now pending.
    New,
    /// Present already, settled or not.
    Present {
        /// Whether its batch is final.
        settled: bool,
    },
}

impl<K: Clone + Eq + Hash> ExpiringSet<K> {
    /// An empty set.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            settled: 0,
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// True if `key` is pending, or was settled less than `ttl` ago.
    #[cfg(test)]
    pub fn contains(&self, key: &K) -> bool {
        let now = Instant::now();
        self.entries
            .get(key)
            .is_some_and(|at| at.is_none_or(|at| now.duration_since(at) < self.ttl))
    }

    /// Inserts `key` as pending, unless it is present.
    pub fn insert(&mut self, key: K) -> Inserted {
        self.expire(Instant::now());
        match self.entries.get(&key) {
            Some(at) => Inserted::Present {
                settled: at.is_some(),
            },
            None => {
                self.entries.insert(key, None);
                Inserted::New
            }
        }
    }

    /// Marks `key` settled from now, if present; returns how many settled keys were evicted
    /// to stay within capacity.
    pub fn settle(&mut self, key: &K) -> u64 {
        let now = Instant::now();
        let Some(at) = self.entries.get_mut(key) else {
            return 0;
        };
        if at.replace(now).is_none() {
            self.settled += 1;
        }
        self.order.push_back((now, key.clone()));
        let mut evicted = 0;
        while self.settled > self.capacity {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old) == Some(&Some(at)) {
                self.entries.remove(&old);
                self.settled -= 1;
                evicted += 1;
            }
        }
        self.compact();
        evicted
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        if let Some(Some(_)) = self.entries.remove(key) {
            self.settled -= 1;
        }
    }

    /// Live entries, pending and settled.
    #[cfg(test)]
    pub fn len(&mut self) -> usize {
        self.expire(Instant::now());
        self.entries.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.ttl {
                break;
            }
            let Some((at, key)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&key) == Some(&Some(at)) {
                self.entries.remove(&key);
                self.settled -= 1;
            }
        }
        self.compact();
    }

    /// Drops stale order pairs so the queue stays O(entries).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.settled + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(at, k)| entries.get(k) == Some(&Some(*at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn settled_entries_expire_after_the_ttl_pending_ones_never() {
        let mut set = ExpiringSet::new(Duration::from_secs(10), 100);
        assert_eq!(set.insert("a"), Inserted::New);
        assert_eq!(set.insert("a"), Inserted::Present { settled: false });
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(set.contains(&"a"), "pending: held however long");
        set.settle(&"a");
        assert_eq!(set.insert("a"), Inserted::Present { settled: true });
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(set.contains(&"a"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!set.contains(&"a"));
        assert_eq!(
            set.insert("a"),
            Inserted::New,
            "after the TTL it is new again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_settled_entries_are_evicted_at_capacity() {
        let mut set = ExpiringSet::new(Duration::from_secs(60), 2);
        for k in ["a", "b", "c", "d"] {
            set.insert(k);
        }
        assert_eq!(set.len(), 4, "pending ids are never evicted");
        assert_eq!(set.settle(&"a"), 0);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(set.settle(&"b"), 0);
        assert_eq!(set.settle(&"c"), 1, "the oldest settled one goes");
        assert!(!set.contains(&"a") && set.contains(&"b") && set.contains(&"d"));
        set.remove(&"b");
        assert_eq!(set.settle(&"d"), 0, "room freed by remove");
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_churn() {
        let mut set = ExpiringSet::new(Duration::from_secs(1), 1000);
        for i in 0..100_000u32 {
            set.insert(i);
            set.settle(&i);
            if i % 2 == 0 {
                set.remove(&i);
            }
        }
        assert!(set.len() <= 1000);
        assert!(set.order.len() <= 2 * 1000 + 16);
    }
}
