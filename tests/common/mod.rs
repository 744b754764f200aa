//! Shared helpers for the integration tests: everything lives in the dev-only testkit crate.
#![allow(unused_imports)]

pub use batch_scaler_testkit::*;
