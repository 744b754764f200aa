//! A bounded set whose entries expire: remembered event ids (dedupe). Oldest entries are
//! evicted first when it is full. Each entry carries a `settled` flag (its event's batch is
//! final). Not locked itself: its owner holds it under one lock with what goes with it.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    time::Duration,
};
use tokio::time::Instant;

/// Keys remembered for `ttl`, at most `capacity` of them.
pub struct ExpiringSet<K> {
    /// Each key with the time it was inserted and whether it is settled.
    entries: HashMap<K, (Instant, bool)>,
    /// Insertion order; stale pairs (re-inserted or removed keys) are skipped.
    order: VecDeque<(Instant, K)>,
    ttl: Duration,
    capacity: usize,
}

/// What [`ExpiringSet::insert`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// New; `evicted` live entries were dropped to stay within capacity.
    New {
        /// Live entries evicted.
        evicted: u64,
    },
    /// Present already, settled or not.
    Present {
        /// Whether it was marked settled.
        settled: bool,
    },
}

impl<K: Clone + Eq + Hash> ExpiringSet<K> {
    /// An empty set.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// True if `key` was inserted less than `ttl` ago.
    #[cfg(test)]
    pub fn contains(&self, key: &K) -> bool {
        let now = Instant::now();
        self.entries
            .get(key)
            .is_some_and(|(at, _)| now.duration_since(*at) < self.ttl)
    }

    /// Inserts `key`, unsettled, unless it is present.
    pub fn insert(&mut self, key: K) -> Inserted {
        let now = Instant::now();
        self.expire(now);
        if let Some((_, settled)) = self.entries.get(&key) {
            return Inserted::Present { settled: *settled };
        }
        let mut evicted = 0;
        while self.entries.len() >= self.capacity {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).map(|e| e.0) == Some(at) {
                self.entries.remove(&old);
                evicted += 1;
            }
        }
        self.entries.insert(key.clone(), (now, false));
        self.order.push_back((now, key));
        Inserted::New { evicted }
    }

    /// Marks `key` settled, if present.
    pub fn settle(&mut self, key: &K) {
        if let Some((_, settled)) = self.entries.get_mut(key) {
            *settled = true;
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Live entries.
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
            if self.entries.get(&key).map(|e| e.0) == Some(at) {
                self.entries.remove(&key);
            }
        }
        // Drop stale order pairs so the queue stays O(entries).
        if self.order.len() > 2 * self.entries.len() + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(at, k)| entries.get(k).map(|e| e.0) == Some(*at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let mut set = ExpiringSet::new(Duration::from_secs(10), 100);
        assert_eq!(set.insert("a"), Inserted::New { evicted: 0 });
        assert_eq!(set.insert("a"), Inserted::Present { settled: false });
        set.settle(&"a");
        assert_eq!(set.insert("a"), Inserted::Present { settled: true });
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(set.contains(&"a"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!set.contains(&"a"));
        assert_eq!(
            set.insert("a"),
            Inserted::New { evicted: 0 },
            "after the TTL it is new again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_entries_are_evicted_at_capacity() {
        let mut set = ExpiringSet::new(Duration::from_secs(60), 3);
        for k in ["a", "b", "c"] {
            set.insert(k);
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(set.insert("d"), Inserted::New { evicted: 1 });
        assert!(!set.contains(&"a") && set.contains(&"b") && set.contains(&"d"));
        assert_eq!(set.len(), 3);
        set.remove(&"b");
        assert_eq!(
            set.insert("e"),
            Inserted::New { evicted: 0 },
            "room freed by remove"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_churn() {
        let mut set = ExpiringSet::new(Duration::from_secs(1), 1000);
        for i in 0..100_000u32 {
            set.insert(i);
            if i % 2 == 0 {
                set.remove(&i);
            }
        }
        assert!(set.len() <= 1000);
        assert!(set.order.len() <= 2 * 1000 + 16);
    }
}
