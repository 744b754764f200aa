//! The job ledgers of the HRAs this replica writes: fed by intake (each job event as it is
//! taken in) and by the outcome sink (each applied write's reservations), read by
//! `GetJobStats` and mirrored in the per-HRA metrics.

use super::applier::Clock;
use crate::{
    domain::{
        event::ScaleEvent,
        hra::HraKey,
        job_times::ledger_event,
        ledger::{Added, Figures, Ledger, Summary, Written},
    },
    ops::{hra_metrics::LedgerChange, metrics::Metrics},
};
use chrono::TimeDelta;
use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc};

/// Every HRA's ledger.
pub struct Ledgers {
    ledgers: Mutex<HashMap<HraKey, Ledger>>,
    window: TimeDelta,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Ledgers {
    /// Ledgers covering the last `window`.
    pub fn new(window: TimeDelta, clock: Clock, metrics: Arc<Metrics>) -> Self {
        Self {
            ledgers: Mutex::default(),
            window,
            clock,
            metrics,
        }
    }

    /// Records a job's event as it is taken in (events without a job id tell it nothing).
    pub fn record(&self, event: &ScaleEvent) {
        let Some(job) = &event.job_id else {
            return;
        };
        let now = (self.clock)();
        let what = ledger_event(event.amount, event.started, event.times.as_ref(), now);
        let job: Arc<str> = Arc::from(job.as_str());
        let (added, gauges) = self.with(&event.key, |l| (l.record(&job, what, now), l.gauges()));
        self.observe(&event.key, added, gauges);
    }

    /// Records an applied write of `key`.
    pub fn written(&self, key: &HraKey, written: &Written) {
        let added = self.with(key, |l| {
            l.warm(written.warm, written.at);
            l.written(written.profile.clone(), &written.expired, written.at)
        });
        self.observe(key, added, None);
    }

    /// `key`'s figures now. An HRA's ledger starts with the first event this replica takes
    /// for it, so `since` never claims a time another replica owned it: without one, the
    /// figures are empty since now.
    pub fn figures(&self, key: &HraKey) -> Figures {
        let now = (self.clock)();
        let (figures, reserved) = {
            let mut ledgers = self.ledgers.lock();
            match ledgers.get_mut(key) {
                Some(l) => l.figures(now),
                None => Ledger::new(now, self.window).figures(now),
            }
        };
        let added = Added {
            reserved_seconds: reserved,
            ..Added::default()
        };
        self.observe(key, added, None);
        figures
    }

    /// `(HRAs, buckets, sketch bins, active jobs, finished jobs)` held, for the figures.
    pub fn size(&self) -> (usize, usize, usize, usize, usize) {
        let ledgers = self.ledgers.lock();
        let mut total = (ledgers.len(), 0, 0, 0, 0);
        for l in ledgers.values() {
            let (b, s, a, f) = l.size();
            total = (total.0, total.1 + b, total.2 + s, total.3 + a, total.4 + f);
        }
        total
    }

    /// Each kept HRA's summary, for overviews.
    pub fn summaries(&self) -> HashMap<HraKey, Summary> {
        let now = (self.clock)();
        let mut ledgers = self.ledgers.lock();
        ledgers
            .iter_mut()
            .map(|(key, l)| (key.clone(), l.summary(now)))
            .collect()
    }

    /// Drops `key`'s ledger: another replica owns the HRA now (if it comes back, its
    /// ledger starts again, and `since` says so).
    pub fn forget(&self, key: &HraKey) {
        self.ledgers.lock().remove(key);
    }

    fn with<T>(&self, key: &HraKey, f: impl FnOnce(&mut Ledger) -> T) -> T {
        let now = (self.clock)();
        let mut ledgers = self.ledgers.lock();
        let ledger = ledgers
            .entry(key.clone())
            .or_insert_with(|| Ledger::new(now, self.window));
        f(ledger)
    }

    fn observe<G: Into<Option<(u64, u64)>>>(&self, key: &HraKey, added: Added, gauges: G) {
        let change = LedgerChange {
            wait: added.wait,
            run: added.run,
            expired_before_start: added.expired_before_start,
            expired_while_running: added.expired_while_running,
            reserved_seconds: added.reserved_seconds,
            gauges: gauges.into(),
        };
        self.metrics.hras.ledger(key.parts(), &change);
    }
}
