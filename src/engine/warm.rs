//! Warm runners in the service (`--warm-runners forecast`): each HRA's arrival profile,
//! learned at intake from its queued jobs' `created_at`; the warm target the applier tops the
//! HRA's warm reservations up to in every batch (`domain::warm::plan_topped_up`, the code
//! replay runs). `warm_tick.rs` opens a batch for an HRA whose warm reservations fall short.
//! Profiles are kept by the HRA's owner and written back to the HRA (its warm-profile
//! annotation, at most hourly, with a batch that happens anyway), so a restart or a new owner
//! starts from what was learned.

use super::applier::Clock;
use crate::domain::{
    event::ScaleEvent,
    forecast::Profile,
    hra::{Hra, HraKey},
    warm,
};
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use std::{collections::HashMap, time::Duration};

/// `--warm-max` and `--runner-start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarmSettings {
    /// Most warm reservations per HRA (`None`: 20 % of its `maxReplicas`).
    pub max: Option<u32>,
    /// How long a runner takes to be ready: warm runners cover the jobs expected within it.
    pub runner_start: Duration,
    /// How often each HRA's warm reservations are checked against its forecast.
    pub tick: Duration,
}

/// How often the forecast is looked at: the profiles count minutes.
pub const TICK: Duration = Duration::from_secs(60);

/// How often an HRA's profile is written back to it (with a batch that happens anyway).
pub const PERSIST_EVERY: TimeDelta = TimeDelta::hours(1);
/// Most arrivals kept for an HRA until its profile is read from the HRA.
const MAX_PENDING: usize = 10_000;

/// What this replica learned of one HRA.
#[derive(Default)]
struct Learned {
    profile: Profile,
    /// The HRA's own annotation was read into `profile`.
    loaded: bool,
    /// Arrivals taken in before it was.
    pending: Vec<DateTime<Utc>>,
    /// When `profile` was last handed to a write.
    persisted: Option<DateTime<Utc>>,
}

impl Learned {
    /// Starts from what the HRA holds (a restart, a new owner) and adds what came since.
    fn load(&mut self, hra: &Hra) {
        if self.loaded {
            return;
        }
        if let Some(value) = &hra.warm_profile {
            match Profile::decode(value) {
                Ok(profile) => self.profile = profile,
                Err(e) => {
                    tracing::warn!(hra = %hra.key, error = %e, "ignoring an unreadable warm profile")
                }
            }
        }
        for at in self.pending.drain(..) {
            self.profile.observe(at);
        }
        self.loaded = true;
    }
}

/// The arrival profiles of the HRAs this replica writes.
pub struct Forecasts {
    learned: Mutex<HashMap<HraKey, Learned>>,
    /// `--warm-max`, `--runner-start`, the tick.
    pub settings: WarmSettings,
    clock: Clock,
}

impl Forecasts {
    /// No profile yet.
    pub fn new(settings: WarmSettings, clock: Clock) -> Self {
        Self {
            learned: Mutex::default(),
            settings,
            clock,
        }
    }

    /// Learns from an event taken in: a job's `queued` counts at its `created_at` (else now).
    pub fn observe(&self, event: &ScaleEvent) {
        if event.amount <= 0 || event.job_id.is_none() {
            return;
        }
        let created = event
            .times
            .as_ref()
            .and_then(|t| t.created_at)
            .unwrap_or_else(|| (self.clock)());
        let mut learned = self.learned.lock();
        let l = learned.entry(event.key.clone()).or_default();
        if l.loaded {
            l.profile.observe(created);
        } else if l.pending.len() < MAX_PENDING {
            l.pending.push(created);
        }
    }

    /// How long a warm reservation lives.
    pub fn life(&self) -> TimeDelta {
        warm::life(TimeDelta::from_std(self.settings.runner_start).unwrap_or(TimeDelta::MAX))
    }

    /// The warm reservations `hra` should hold at `now`; `None` when nothing is known of its
    /// arrivals (here or in its warm-profile annotation).
    pub fn target(&self, hra: &Hra, now: DateTime<Utc>) -> Option<u32> {
        let mut learned = self.learned.lock();
        let l = match learned.get_mut(&hra.key) {
            Some(l) => l,
            None if hra.warm_profile.is_some() => learned.entry(hra.key.clone()).or_default(),
            None => return None,
        };
        l.load(hra);
        let start = TimeDelta::from_std(self.settings.runner_start).unwrap_or(TimeDelta::MAX);
        Some(warm::wanted(
            &mut l.profile,
            hra,
            now,
            start,
            self.settings.max,
        ))
    }

    /// The warm-profile annotation a write of `hra` at `now` should carry: what was learned,
    /// at most once per [`PERSIST_EVERY`], and only when it changed.
    pub fn persist(&self, hra: &Hra, now: DateTime<Utc>) -> Option<String> {
        let mut learned = self.learned.lock();
        let l = learned.get_mut(&hra.key)?;
        l.load(hra);
        if l.persisted.is_some_and(|t| now - t < PERSIST_EVERY) {
            return None;
        }
        l.persisted = Some(now);
        let value = l.profile.encode();
        (hra.warm_profile.as_deref() != Some(value.as_str())).then_some(value)
    }

    /// Drops what was learned of `key` (another replica writes it now; it reads the HRA's
    /// annotation when it does).
    pub fn forget(&self, key: &HraKey) {
        self.learned.lock().remove(key);
    }

    /// The HRAs with a profile here.
    pub fn keys(&self) -> Vec<HraKey> {
        self.learned.lock().keys().cloned().collect()
    }
}
