//! Write slots: at most `--max-concurrent-writes` attempts at once, each holding its slot only
//! while it reads, plans and writes (a batch sleeping before a retry holds none), and retries
//! never take more than half of them, so first attempts of healthy HRAs always find room
//! however many HRAs keep failing.

use tokio::sync::{Semaphore, SemaphorePermit};

/// The slots shared by every batch.
pub struct WriteSlots {
    all: Semaphore,
    retries: Semaphore,
    max: usize,
}

/// A slot held for one attempt.
pub struct Slot<'a> {
    _retry: Option<SemaphorePermit<'a>>,
    _slot: Option<SemaphorePermit<'a>>,
}

impl WriteSlots {
    /// `max` slots, half of them (at least one) open to retries.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            all: Semaphore::new(max),
            retries: Semaphore::new((max / 2).max(1)),
            max,
        }
    }

    /// Waits for a slot (fair: first come, first served) for a first attempt or a retry.
    pub async fn acquire(&self, retry: bool) -> Slot<'_> {
        // The semaphores are never closed, so a permit always comes.
        let retry = if retry {
            self.retries.acquire().await.ok()
        } else {
            None
        };
        let slot = self.all.acquire().await.ok();
        Slot {
            _retry: retry,
            _slot: slot,
        }
    }

    /// Slots in use now.
    pub fn in_use(&self) -> usize {
        self.max.saturating_sub(self.all.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn retries_take_at_most_half_and_first_attempts_find_the_rest() {
        let slots = WriteSlots::new(4);
        let r1 = slots.acquire(true).await;
        let r2 = slots.acquire(true).await;
        let third = tokio::time::timeout(Duration::from_secs(1), slots.acquire(true)).await;
        assert!(third.is_err(), "a third retry waits");
        let f1 = slots.acquire(false).await;
        let f2 = slots.acquire(false).await;
        assert_eq!(slots.in_use(), 4);
        drop((r1, r2, f1, f2));
        assert_eq!(slots.in_use(), 0);
    }
}
