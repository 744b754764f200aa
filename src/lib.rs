//! batch-scaler: takes scale events for HorizontalRunnerAutoscalers over gRPC, batches them
//! per HRA over a window, and applies each batch as capacity reservations.
//!
//! Layers (see `ARCHITECTURE.md`): [`domain`] (pure types and the planner) ← [`store`]
//! (where HRAs live) ← [`engine`] (batching and applying) ← [`api`] (gRPC) and [`ops`]
//! (metrics, probes, logs), wired by [`app`] from [`config`].

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod engine;
pub mod github;
pub mod ops;
pub mod replay;
pub mod store;
