//! The plain-HTTP side listener: Prometheus `/metrics`, `/healthz` and `/readyz`.

use super::metrics::Metrics;
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use std::{future::Future, sync::Arc};
use tokio::net::TcpListener;

/// Sets the gauges that are read on scrape (pending HRAs, applies in flight, watchers).
pub type GaugeRefresh = Arc<dyn Fn(&Metrics) + Send + Sync>;
/// Why the service is not ready, or `None` when it is.
pub type Readiness = Arc<dyn Fn() -> Option<&'static str> + Send + Sync>;

/// What the probe handlers read.
#[derive(Clone)]
pub struct Probes {
    /// Metrics to encode.
    pub metrics: Arc<Metrics>,
    /// Called before each scrape.
    pub refresh: GaugeRefresh,
    /// Asked on each `/readyz`.
    pub readiness: Readiness,
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    (p.refresh)(&p.metrics);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        p.metrics.encode(),
    )
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    match (p.readiness)() {
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        None => (StatusCode::OK, "ok\n".to_owned()),
    }
}

/// The routes of the side listener.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(probes)
}

/// Serves the side listener until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    probes: Probes,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(probes))
        .with_graceful_shutdown(shutdown)
        .await
}
