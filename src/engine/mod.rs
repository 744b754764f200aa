//! Batching and applying. Data flows one way:
//!
//! intake ([`batcher::Batcher::submit`]) → per-HRA queue ([`queue`]) → a [`batch::Batch`]
//! owned by its [`run::BatchRun`] → attempts, one at a time, each in a write slot
//! ([`slots`]; [`applier::Applier::attempt`]) → outcome → [`sink::OutcomeSink`], which fans
//! out to the result hub ([`hub`]), waiters, event-id memory ([`idempotency`]), the job
//! ledgers ([`ledgers`]: intake records each job event there too) and metrics. Finished
//! jobs are remembered in the HRA itself, in the same write as the batch.

pub mod applier;
pub mod batch;
pub mod batcher;
mod expiring;
pub mod hub;
pub mod idempotency;
pub mod ledgers;
pub mod promises;
pub mod queue;
pub mod run;
pub mod sink;
pub mod slots;
pub mod warm;
pub mod warm_tick;

use crate::{
    domain::{duration::saturating_delta, planner::ReservationClock, tombstones::TombstoneLimits},
    ops::metrics::Metrics,
    store::HraStore,
};
use applier::{Applier, Clock, Policy, RetryPolicy};
use batcher::Batcher;
use hub::ResultHub;
use idempotency::{Idempotency, IdempotencyLimits};
use ledgers::Ledgers;
use queue::Bounds;
use sink::OutcomeSink;
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use warm::{Forecasts, WarmSettings};

/// How the engine batches, applies and remembers.
#[derive(Clone)]
pub struct EngineSettings {
    /// Batch window.
    pub window: Duration,
    /// Back-off and deadline for transient errors.
    pub retry: RetryPolicy,
    /// Plan and report, never write.
    pub dry_run: bool,
    /// Reservation life for events that give none, on HRAs without a trigger duration.
    pub default_duration: Duration,
    /// Most applies in flight at once.
    pub max_concurrent_writes: usize,
    /// Recent results kept for `WatchBatches.replay`.
    pub replay_capacity: usize,
    /// Results buffered per watcher before it starts missing them.
    pub watcher_buffer: usize,
    /// Event-id and finished-job memory.
    pub idempotency: IdempotencyLimits,
    /// Largest HRA object a write may produce (compact JSON bytes).
    pub max_hra_bytes: usize,
    /// Most events held (queued or in a batch not yet final), in all and per HRA.
    pub bounds: Bounds,
    /// Source of the planner's `now`.
    pub clock: Clock,
    /// When a job's reservation starts to age (`--reservation-clock`).
    pub reservation_clock: ReservationClock,
    /// What the job ledgers cover (`--ledger-window`).
    pub ledger_window: Duration,
    /// `--warm-runners forecast`: its settings; `None`: off.
    pub warm: Option<WarmSettings>,
}

/// The engine's parts, wired: intake goes to `batcher`, results come from `hub`.
#[derive(Clone)]
pub struct Engine {
    /// Takes events and runs batches.
    pub batcher: Arc<Batcher>,
    /// Fans results out to watchers.
    pub hub: Arc<ResultHub>,
    /// Each HRA's job ledger.
    pub ledgers: Arc<Ledgers>,
    /// Each HRA's arrival profile (`--warm-runners forecast`).
    pub forecasts: Option<Arc<Forecasts>>,
}

impl Engine {
    /// With `--warm-runners forecast`: starts the tick that opens a batch for an HRA whose
    /// warm reservations fall short of its forecast (until `stop`).
    pub fn start_warm(
        &self,
        store: Arc<dyn HraStore>,
        clock: Clock,
        owns: warm_tick::Owns,
        stop: CancellationToken,
    ) {
        if let Some(forecasts) = self.forecasts.clone() {
            tracing::info!("warm runners: learning when each HRA's jobs arrive");
            let batcher = self.batcher.clone();
            tokio::spawn(warm_tick::run(forecasts, batcher, store, clock, owns, stop));
        }
    }

    /// Wires an engine over `store`, recording into `metrics`.
    pub fn new(store: Arc<dyn HraStore>, settings: &EngineSettings, metrics: Arc<Metrics>) -> Self {
        let EngineSettings {
            window,
            retry,
            dry_run,
            default_duration,
            max_concurrent_writes,
            replay_capacity,
            watcher_buffer,
            idempotency,
            max_hra_bytes,
            bounds,
            clock,
            reservation_clock,
            ledger_window,
            warm,
        } = settings.clone();
        let forecasts = warm.map(|w| Arc::new(Forecasts::new(w, clock.clone())));
        let tombstones = TombstoneLimits {
            ttl: saturating_delta(idempotency.tombstone_ttl),
            capacity: idempotency.tombstone_capacity,
        };
        let hub = Arc::new(ResultHub::new(
            replay_capacity,
            watcher_buffer,
            metrics.clone(),
        ));
        let idempotency = Arc::new(Idempotency::new(idempotency, metrics.clone()));
        let ledgers = Arc::new(Ledgers::new(
            saturating_delta(ledger_window),
            clock.clone(),
            metrics.clone(),
        ));
        let sink = OutcomeSink::new(
            hub.clone(),
            idempotency.clone(),
            metrics.clone(),
            ledgers.clone(),
        );
        let applier = Applier::new(
            store,
            Policy {
                retry,
                dry_run,
                default_life: saturating_delta(default_duration),
                tombstones,
                max_hra_bytes,
                reservation_clock,
            },
            clock,
            metrics,
        )
        .with_warm(forecasts.clone());
        let batcher = Arc::new(
            Batcher::new(
                applier,
                sink,
                idempotency,
                window,
                max_concurrent_writes,
                bounds,
                ledgers.clone(),
            )
            .with_forecasts(forecasts.clone()),
        );
        Self {
            batcher,
            hub,
            ledgers,
            forecasts,
        }
    }
}
