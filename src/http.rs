//! The plain-HTTP side listener: Prometheus `/metrics`, `/healthz` and `/readyz`.

use crate::{batcher::Batcher, metrics::Metrics, results::ResultHub};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use std::{future::Future, sync::Arc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics to encode.
    pub metrics: Arc<Metrics>,
    /// For the pending/in-flight gauges.
    pub batcher: Arc<Batcher>,
    /// For the watchers gauge.
    pub results: Arc<ResultHub>,
    /// Fires when shutdown starts: not ready from then on.
    pub stopping: CancellationToken,
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    s.metrics.pending_hras.set(s.batcher.pending_hras() as i64);
    s.metrics.in_flight.set(s.batcher.in_flight() as i64);
    s.metrics.watchers.set(s.results.watchers() as i64);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    if s.stopping.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// The routes of the side listener.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves the side listener until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
