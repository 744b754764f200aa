//! Warm runners in the service (`--warm-runners forecast`): each HRA's arrival profile,
//! learned at intake from its queued jobs' `created_at`; the warm target the applier tops the
//! HRA's warm reservations up to in every batch (`domain::warm::plan_topped_up`, the code
//! replay runs); and a tick, once a minute, that opens a batch for an HRA whose warm
//! reservations fall short of what it now expects (a refresh event: nothing else changes).
//! Profiles are kept by the HRA's owner, in memory.

use super::{applier::Clock, batcher::Batcher};
use crate::{
    domain::{
        event::{Origin, ScaleEvent},
        forecast::Profile,
        hra::{Hra, HraKey},
        warm::{self, is_warm},
    },
    store::HraStore,
};
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

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

/// The arrival profiles of the HRAs this replica writes.
pub struct Forecasts {
    profiles: Mutex<HashMap<HraKey, Profile>>,
    settings: WarmSettings,
    clock: Clock,
}

impl Forecasts {
    /// No profile yet.
    pub fn new(settings: WarmSettings, clock: Clock) -> Self {
        Self {
            profiles: Mutex::default(),
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
        self.profiles
            .lock()
            .entry(event.key.clone())
            .or_default()
            .observe(created);
    }

    /// How long a warm reservation lives.
    pub fn life(&self) -> TimeDelta {
        warm::life(TimeDelta::from_std(self.settings.runner_start).unwrap_or(TimeDelta::MAX))
    }

    /// The warm reservations `hra` should hold at `now`; `None` when nothing was learned of it.
    pub fn target(&self, hra: &Hra, now: DateTime<Utc>) -> Option<u32> {
        let start = self.settings.runner_start.as_secs();
        // The demand that comes before a runner asked for now is ready.
        let minutes = u32::try_from(start.div_ceil(60))
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let expected = self
            .profiles
            .lock()
            .get_mut(&hra.key)?
            .expected(now, minutes);
        let cap = self
            .settings
            .max
            .or_else(|| warm::default_cap(hra.max_replicas))
            .unwrap_or(u32::MAX);
        Some(warm::target(expected, cap))
    }

    /// Drops what was learned of `key` (another replica writes it now).
    pub fn forget(&self, key: &HraKey) {
        self.profiles.lock().remove(key);
    }

    /// The HRAs with a profile.
    pub fn keys(&self) -> Vec<HraKey> {
        self.profiles.lock().keys().cloned().collect()
    }
}

/// Warm reservations `hra` holds at `now`.
pub fn warm_held(hra: &Hra, now: DateTime<Utc>) -> u32 {
    hra.capacity_reservations
        .iter()
        .filter(|r| is_warm(&r.name) && r.expiration_time > now)
        .count() as u32
}

/// Once a minute, opens a batch (a refresh event) for each HRA holding fewer warm
/// reservations than it now expects; the batch's plan tops them up. Stops with `stop`.
pub async fn run(
    forecasts: Arc<Forecasts>,
    batcher: Arc<Batcher>,
    store: Arc<dyn HraStore>,
    clock: Clock,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(forecasts.settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for key in forecasts.keys() {
            let Ok(hra) = store.get(&key).await else {
                continue;
            };
            let now = clock();
            let short = forecasts
                .target(&hra, now)
                .is_some_and(|target| target > warm_held(&hra, now));
            if short {
                let refresh = ScaleEvent {
                    key,
                    amount: 0,
                    duration: None,
                    event_id: None,
                    job_id: None,
                    repository: None,
                    origin: Origin::Producer,
                    started: None,
                    times: None,
                };
                if let Err(e) = batcher.submit(&refresh, None) {
                    tracing::debug!(error = %e, "warm runners: no refresh batch now");
                }
            }
        }
    }
}
