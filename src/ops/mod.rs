//! Running it: Prometheus metrics, the probes listener and logging setup.

pub mod connection_metrics;
pub mod github_metrics;
pub mod hra_metrics;
pub mod metrics;
pub mod peer_metrics;
pub mod probes;
pub mod reload;
pub mod telemetry;
pub mod traces;
