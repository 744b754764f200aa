//! Per-HRA series, labelled `namespace` and `hra` only (never a repository or a job: those
//! are unbounded): one series per HRA per metric.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::sync::atomic::AtomicU64;

/// Buckets of the job duration histograms: 1 s to 6 h.
pub const JOB_SECONDS_BUCKETS: [f64; 16] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
    14400.0, 21600.0,
];

/// Labels of `reservations_expired`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExpiredLabels {
    /// The HRA's namespace.
    pub namespace: String,
    /// The HRA's name.
    pub hra: String,
    /// `before_start` or `while_running`.
    pub when: &'static str,
}

fn job_histogram() -> Histogram {
    Histogram::new(JOB_SECONDS_BUCKETS)
}

/// Labels of per-HRA series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HraLabels {
    /// The HRA's namespace.
    pub namespace: String,
    /// The HRA's name.
    pub hra: String,
}

impl HraLabels {
    /// The labels of the HRA `namespace/name`.
    pub fn of(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            hra: name.to_owned(),
        }
    }
}

/// Labels of the warm reservation counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WarmLabels {
    /// The HRA's namespace.
    pub namespace: String,
    /// The HRA's name.
    pub hra: String,
    /// `added`, `claimed` or `expired` (unclaimed).
    pub event: &'static str,
}

/// What one change of an HRA's job ledger adds to its series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LedgerChange {
    /// A job's wait, in seconds.
    pub wait: Option<f64>,
    /// A job's run, in seconds.
    pub run: Option<f64>,
    /// Reservations that expired before their job started.
    pub expired_before_start: u64,
    /// Reservations that expired while their job ran.
    pub expired_while_running: u64,
    /// Runner-seconds the reservations asked for.
    pub reserved_seconds: f64,
    /// `(waiting, running)` jobs now, when known.
    pub gauges: Option<(u64, u64)>,
}

/// Figures of each HRA.
#[derive(Clone)]
pub struct HraMetrics {
    /// Units of capacity the HRA's reservations hold after its last applied batch: one per
    /// waiting or running job (named or grouped) and per job-less unit.
    reservation_units: Family<HraLabels, Gauge>,
    startup: Family<HraLabels, Histogram, fn() -> Histogram>,
    execution: Family<HraLabels, Histogram, fn() -> Histogram>,
    reserved_seconds: Family<HraLabels, Counter<f64, AtomicU64>>,
    busy_seconds: Family<HraLabels, Counter<f64, AtomicU64>>,
    expired: Family<ExpiredLabels, Counter>,
    waiting: Family<HraLabels, Gauge>,
    running: Family<HraLabels, Gauge>,
    warm: Family<WarmLabels, Counter>,
}

impl Default for HraMetrics {
    fn default() -> Self {
        Self {
            reservation_units: Family::default(),
            startup: Family::new_with_constructor(job_histogram),
            execution: Family::new_with_constructor(job_histogram),
            reserved_seconds: Family::default(),
            busy_seconds: Family::default(),
            expired: Family::default(),
            waiting: Family::default(),
            running: Family::default(),
            warm: Family::default(),
        }
    }
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
        registry.register(
            "job_startup_duration_seconds",
            "Jobs' waits for a runner (created_at to started_at), each job once, by namespace and hra",
            m.startup.clone(),
        );
        registry.register(
            "job_execution_duration_seconds",
            "Jobs' runs (started_at to completed_at), each job once, by namespace and hra",
            m.execution.clone(),
        );
        registry.register(
            "reserved_runner_seconds",
            "Integral over time of the runners an HRA's reservations ask ARC for (min(maxReplicas, unexpired replicas)), up to its last write or GetJobStats",
            m.reserved_seconds.clone(),
        );
        registry.register(
            "busy_runner_seconds",
            "Sum of the runs of an HRA's jobs (runner-seconds in use)",
            m.busy_seconds.clone(),
        );
        registry.register(
            "reservations_expired",
            "Jobs whose reservation expired before they started or while they ran, by namespace, hra and when",
            m.expired.clone(),
        );
        registry.register(
            "jobs_waiting",
            "Jobs queued and not started, by namespace and hra",
            m.waiting.clone(),
        );
        registry.register(
            "jobs_running",
            "Jobs started and not completed, by namespace and hra",
            m.running.clone(),
        );
        registry.register(
            "warm_reservations",
            "Warm reservations (--warm-runners forecast) added, claimed by a queued job, or expired unclaimed, by namespace, hra and event",
            m.warm.clone(),
        );
        m
    }

    /// Counts an applied batch's warm reservations (a series appears only once it counts
    /// something).
    pub fn warm(&self, (namespace, name): (&str, &str), [added, claimed, expired]: [u64; 3]) {
        for (event, n) in [("added", added), ("claimed", claimed), ("expired", expired)] {
            if n > 0 {
                let labels = WarmLabels {
                    namespace: namespace.to_owned(),
                    hra: name.to_owned(),
                    event,
                };
                self.warm.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// Records what the job ledger of the HRA `namespace/name` added.
    pub fn ledger(&self, (namespace, name): (&str, &str), added: &LedgerChange) {
        let labels = HraLabels::of(namespace, name);
        if let Some(wait) = added.wait {
            self.startup.get_or_create(&labels).observe(wait);
        }
        if let Some(run) = added.run {
            self.execution.get_or_create(&labels).observe(run);
            self.busy_seconds.get_or_create(&labels).inc_by(run);
        }
        if added.reserved_seconds > 0.0 {
            self.reserved_seconds
                .get_or_create(&labels)
                .inc_by(added.reserved_seconds);
        }
        for (when, n) in [
            ("before_start", added.expired_before_start),
            ("while_running", added.expired_while_running),
        ] {
            if n > 0 {
                let expired = ExpiredLabels {
                    namespace: labels.namespace.clone(),
                    hra: labels.hra.clone(),
                    when,
                };
                self.expired.get_or_create(&expired).inc_by(n);
            }
        }
        if let Some((waiting, running)) = added.gauges {
            let set = |g: &Family<HraLabels, Gauge>, n: u64| {
                g.get_or_create(&labels)
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            };
            set(&self.waiting, waiting);
            set(&self.running, running);
        }
    }

    /// Records the units the HRA `namespace/name` holds after an applied batch.
    pub fn reservation_units(&self, (namespace, name): (&str, &str), units: u64) {
        self.reservation_units
            .get_or_create(&HraLabels::of(namespace, name))
            .set(i64::try_from(units).unwrap_or(i64::MAX));
    }
}
