//! The probes listener's view of this service: gauges read from the engine at each scrape,
//! and readiness.

use crate::{
    api::tls::TlsCredentials,
    engine::Engine,
    ops::{metrics::Metrics, probes::Probes},
    store::HraStore,
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The probes of this service: gauges read from the engine, ready once the store is.
pub(super) fn probes_for(
    engine: &Engine,
    store: Arc<dyn HraStore>,
    metrics: Arc<Metrics>,
    tls: Option<Arc<TlsCredentials>>,
    stopping: CancellationToken,
) -> Probes {
    let Engine { batcher, hub, .. } = engine.clone();
    Probes {
        metrics,
        refresh: Arc::new(move |m: &Metrics| {
            m.pending_hras.set(batcher.pending_hras() as i64);
            m.in_flight.set(batcher.in_flight() as i64);
            m.watchers.set(hub.watchers() as i64);
            if let Some(tls) = &tls {
                let left = tls.not_after() - chrono::Utc::now().timestamp();
                m.tls_expiry_seconds.set(left as f64);
            }
        }),
        readiness: Arc::new(move || {
            if stopping.is_cancelled() {
                Some("shutting down")
            } else if !store.is_ready() {
                Some(
                    "waiting for the watch caches (HRAs, RunnerDeployments, RunnerSets) to list everything",
                )
            } else {
                None
            }
        }),
    }
}
