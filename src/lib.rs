//! batch-scaler: takes scale events for HorizontalRunnerAutoscalers over gRPC, batches them
//! per HRA over a window, and applies each batch as capacity reservations.

pub mod app;
pub mod applier;
pub mod args;
pub mod auth;
pub mod batcher;
pub mod dashboard;
pub mod error;
pub mod event;
pub mod expiring;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod model;
pub mod pb;
pub mod planner;
pub mod results;
pub mod store;
pub mod telemetry;
pub mod transport;
