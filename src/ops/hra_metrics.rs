//! Per-HRA series, labelled `namespace` and `hra` only (never a repository or a job: those
//! are unbounded): one series per HRA per metric.

use crate::domain::hra::HraKey;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

/// Labels of per-HRA series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HraLabels {
    /// The HRA's namespace.
    pub namespace: String,
    /// The HRA's name.
    pub hra: String,
}

impl HraLabels {
    /// The labels of `key`.
    pub fn of(key: &HraKey) -> Self {
        Self {
            namespace: key.namespace.clone(),
            hra: key.name.clone(),
        }
    }
}

/// Figures of each HRA.
#[derive(Clone, Default)]
pub struct HraMetrics {
    /// Units of capacity the HRA's reservations hold after its last applied batch: one per
    /// waiting or running job (named or grouped) and per job-less unit.
    reservation_units: Family<HraLabels, Gauge>,
}

impl HraMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "reservation_units",
            "Units of capacity an HRA's reservations hold after its last applied batch (jobs, named or grouped, and job-less units; expired ones dropped), by namespace and hra",
            m.reservation_units.clone(),
        );
        m
    }

    /// Records the units `key` holds after an applied batch.
    pub fn reservation_units(&self, key: &HraKey, units: u64) {
        self.reservation_units
            .get_or_create(&HraLabels::of(key))
            .set(i64::try_from(units).unwrap_or(i64::MAX));
    }
}
