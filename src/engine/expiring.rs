//! A bounded set whose entries expire: remembered event ids (dedupe). Oldest entries are
//! evicted first when it is full.

use parking_lot::Mutex;
use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    time::Duration,
};
use tokio::time::Instant;

struct Inner<K> {
    /// Each key with the time it was (last) inserted.
    entries: HashMap<K, Instant>,
    /// Insertion order; stale pairs (re-inserted or removed keys) are skipped.
    order: VecDeque<(Instant, K)>,
}

/// Keys remembered for `ttl`, at most `capacity` of them.
pub struct ExpiringSet<K> {
    inner: Mutex<Inner<K>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Clone + Eq + Hash> ExpiringSet<K> {
    /// An empty set.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// True if `key` was inserted less than `ttl` ago.
    #[cfg(test)]
    pub fn contains(&self, key: &K) -> bool {
        let now = Instant::now();
        let inner = self.inner.lock();
        inner
            .entries
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < self.ttl)
    }

    /// Inserts `key` unless it is present; returns `(inserted, evicted)`, where `evicted`
    /// counts live entries dropped to stay within capacity.
    pub fn insert(&self, key: K) -> (bool, u64) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        self.expire(&mut inner, now);
        if inner.entries.contains_key(&key) {
            return (false, 0);
        }
        let mut evicted = 0;
        while inner.entries.len() >= self.capacity {
            let Some((at, old)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&old) == Some(&at) {
                inner.entries.remove(&old);
                evicted += 1;
            }
        }
        inner.entries.insert(key.clone(), now);
        inner.order.push_back((now, key));
        (true, evicted)
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        self.inner.lock().entries.remove(key);
    }

    /// Live entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let mut inner = self.inner.lock();
        self.expire(&mut inner, Instant::now());
        inner.entries.len()
    }

    fn expire(&self, inner: &mut Inner<K>, now: Instant) {
        while let Some((at, _)) = inner.order.front() {
            if now.duration_since(*at) < self.ttl {
                break;
            }
            let Some((at, key)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&key) == Some(&at) {
                inner.entries.remove(&key);
            }
        }
        // Drop stale order pairs so the queue stays O(entries).
        if inner.order.len() > 2 * inner.entries.len() + 16 {
            let entries = &inner.entries;
            inner.order.retain(|(at, k)| entries.get(k) == Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let set = ExpiringSet::new(Duration::from_secs(10), 100);
        assert_eq!(set.insert("a"), (true, 0));
        assert_eq!(set.insert("a"), (false, 0));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(set.contains(&"a"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!set.contains(&"a"));
        assert_eq!(set.insert("a"), (true, 0), "after the TTL it is new again");
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_entries_are_evicted_at_capacity() {
        let set = ExpiringSet::new(Duration::from_secs(60), 3);
        for k in ["a", "b", "c"] {
            set.insert(k);
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(set.insert("d"), (true, 1));
        assert!(!set.contains(&"a") && set.contains(&"b") && set.contains(&"d"));
        assert_eq!(set.len(), 3);
        set.remove(&"b");
        assert_eq!(set.insert("e"), (true, 0), "room freed by remove");
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_churn() {
        let set = ExpiringSet::new(Duration::from_secs(1), 1000);
        for i in 0..100_000u32 {
            set.insert(i);
            if i % 2 == 0 {
                set.remove(&i);
            }
        }
        assert!(set.len() <= 1000);
        assert!(set.inner.lock().order.len() <= 2 * 1000 + 16);
    }
}
