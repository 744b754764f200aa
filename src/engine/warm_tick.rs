//! Warm runners' tick: once a minute, a batch (a refresh event: nothing else changes) for each
//! HRA this replica writes whose warm reservations fall short of what its forecast expects.

use super::{applier::Clock, batcher::Batcher, warm::Forecasts};
use crate::{
    domain::{
        event::{Origin, ScaleEvent},
        hra::HraKey,
        warm,
    },
    store::HraStore,
};
use std::{collections::HashSet, sync::Arc};
use tokio_util::sync::CancellationToken;

/// Whether this replica writes an HRA (with scale-out, only its owner does).
pub type Owns = Arc<dyn Fn(&HraKey) -> bool + Send + Sync>;

/// Once a minute, opens a batch (a refresh event) for each HRA this replica writes that holds
/// fewer warm reservations than it now expects (HRAs it learned of, and those whose
/// warm-profile annotation another replica or an earlier run wrote); the batch's plan tops
/// them up. Stops with `stop`.
pub async fn run(
    forecasts: Arc<Forecasts>,
    batcher: Arc<Batcher>,
    store: Arc<dyn HraStore>,
    clock: Clock,
    owns: Owns,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(forecasts.settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut keys: HashSet<HraKey> = forecasts.keys().into_iter().collect();
        if let Ok(all) = store.list(None).await {
            keys.extend(
                all.into_iter()
                    .filter(|h| h.warm_profile.is_some())
                    .map(|h| h.key),
            );
        }
        for key in keys.into_iter().filter(|k| owns(k)) {
            let Ok(hra) = store.get(&key).await else {
                continue;
            };
            let now = clock();
            let (held, units) = (warm::held(&hra, now), hra.reserved_replicas(now));
            let short = forecasts.target(&hra, now).is_some_and(|target| {
                warm::missing(target, held, units.into(), hra.max_replicas) > 0
            });
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
