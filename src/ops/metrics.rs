//! Prometheus metrics of the pipeline (prometheus-client), encoded as text on scrape.

use super::{
    connection_metrics::ConnectionMetrics, github_metrics::GithubMetrics, hra_metrics::HraMetrics,
    peer_metrics::PeerMetrics,
};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        exemplar::HistogramWithExemplars,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use std::{collections::VecDeque, sync::atomic::AtomicU64, time::Duration};

/// How many recent apply latencies [`Snapshot`] takes its percentiles over.
const RECENT_LATENCIES: usize = 512;

/// The counters a dashboard reads, since the process started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// When the metrics were created (the process started).
    pub started: DateTime<Utc>,
    /// Events queued.
    pub events_accepted: u64,
    /// Events dropped as duplicates.
    pub events_duplicate: u64,
    /// Events refused: invalid, denied, exhausted, refused.
    pub events_rejected: u64,
    /// Outcomes reported: applied, retrying, failed, dry-run.
    pub batches: [u64; 4],
    /// Writes that met a conflict.
    pub write_conflicts: u64,
    /// Attempts retried.
    pub retries: u64,
    /// Median and 99th percentile of the last applied batches' oldest-event age.
    pub apply_latency: (Duration, Duration),
    /// Failed deliveries recovered from GitHub and queued.
    pub deliveries_recovered: u64,
    /// Reservations checked against GitHub.
    pub reservations_verified: u64,
    /// Of those, completed because their job finished (or is gone).
    pub reservations_completed: u64,
}

/// Label of `events_received`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// accepted, duplicate, invalid, denied, exhausted, refused.
    pub result: &'static str,
}

/// Label of `batches`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// applied, retrying, failed, dry_run.
    pub outcome: &'static str,
}

/// Labels of `credentials_reloads`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// The file read.
    pub file: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The exemplar of a write: the trace it was made in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabel {
    /// Hex trace id.
    pub trace_id: String,
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    events: Family<ResultLabel, Counter>,
    batches: Family<OutcomeLabel, Counter>,
    write_seconds: HistogramWithExemplars<TraceLabel>,
    conflicts: Counter,
    retries: Counter,
    event_age_seconds: Histogram,
    watch_dropped: Counter,
    dedupe_hits: Counter,
    dedupe_evictions: Counter,
    jobs_routed: Family<ResultLabel, Counter>,
    tombstones_dropped: Counter,
    too_large_events: Counter,
    started: DateTime<Utc>,
    recent_latencies: Mutex<VecDeque<Duration>>,
    /// Applies running now (set on scrape).
    pub in_flight: Gauge,
    /// HRAs with events waiting for a batch (set on scrape).
    pub pending_hras: Gauge,
    /// Connected `WatchBatches` streams (set on scrape).
    pub watchers: Gauge,
    /// Seconds until the served TLS certificate expires (set on scrape).
    pub tls_expiry_seconds: Gauge<f64, AtomicU64>,
    credentials_reloads: Family<ReloadLabels, Counter>,
    /// Scale-out: members, owned HRAs, forwarding.
    pub peers: PeerMetrics,
    /// Drift repair: GitHub requests, recovered deliveries, verified reservations.
    pub github: GithubMetrics,
    /// The gRPC port's connections: open, and closed by reason.
    pub connections: ConnectionMetrics,
    /// Per-HRA series.
    pub hras: HraMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("batch_scaler");
        let events = Family::<ResultLabel, Counter>::default();
        registry.register(
            "events_received",
            "Scale events received, by result (accepted, duplicate, invalid, denied, exhausted, refused)",
            events.clone(),
        );
        let batches = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "batches",
            "Batch outcomes reported, by outcome (applied, retrying, failed, dry_run)",
            batches.clone(),
        );
        let write_seconds = HistogramWithExemplars::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "write_duration_seconds",
            "Time of one HRA write (conditional patch), success or not",
            write_seconds.clone(),
        );
        let conflicts = Counter::default();
        registry.register(
            "write_conflicts",
            "Writes refused because the HRA changed since it was read (re-planned)",
            conflicts.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "retries",
            "Apply attempts that failed and were retried",
            retries.clone(),
        );
        let event_age_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "event_age_at_apply_seconds",
            "Age of a batch's oldest event when the batch was applied",
            event_age_seconds.clone(),
        );
        let watch_dropped = Counter::default();
        registry.register(
            "watch_results_dropped",
            "Batch results dropped for watchers too slow to keep up",
            watch_dropped.clone(),
        );
        let dedupe_hits = Counter::default();
        registry.register(
            "dedupe_hits",
            "Events dropped because their event_id was seen",
            dedupe_hits.clone(),
        );
        let dedupe_evictions = Counter::default();
        registry.register(
            "dedupe_evictions",
            "Remembered event_ids evicted before their TTL to stay within capacity",
            dedupe_evictions.clone(),
        );
        let jobs_routed = Family::<ResultLabel, Counter>::default();
        registry.register(
            "jobs_routed",
            "Workflow jobs routed by RouteJob and ScaleJob, by result (routed, ignored, unmatched, ambiguous)",
            jobs_routed.clone(),
        );
        let tombstones_dropped = Counter::default();
        registry.register(
            "tombstones_dropped",
            "Finished jobs dropped from an HRA's finished-jobs annotation before their TTL, to stay within --tombstone-capacity",
            tombstones_dropped.clone(),
        );
        let too_large_events = Counter::default();
        registry.register(
            "hra_too_large_events",
            "Events of batches failed because the HRA object would exceed --max-hra-bytes",
            too_large_events.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "applies_in_flight",
            "Batches being applied now",
            in_flight.clone(),
        );
        let pending_hras = Gauge::default();
        registry.register(
            "pending_hras",
            "HRAs with events waiting for a batch",
            pending_hras.clone(),
        );
        let watchers = Gauge::default();
        registry.register(
            "watchers",
            "Connected WatchBatches streams",
            watchers.clone(),
        );
        let tls_expiry_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "tls_certificate_expiry_seconds",
            "Seconds until the TLS certificate served now expires (only with --tls-cert)",
            tls_expiry_seconds.clone(),
        );
        let credentials_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "credentials_reloads",
            "Credential files read again after they changed, by file and result (ok: in use; error: refused, the previous ones stay)",
            credentials_reloads.clone(),
        );
        let peers = PeerMetrics::register(&mut registry);
        let connections = ConnectionMetrics::register(&mut registry);
        let github = GithubMetrics::register(&mut registry);
        let hras = HraMetrics::register(&mut registry);
        super::traces::register(&mut registry);
        Self {
            registry,
            events,
            batches,
            write_seconds,
            conflicts,
            retries,
            event_age_seconds,
            watch_dropped,
            dedupe_hits,
            dedupe_evictions,
            jobs_routed,
            tombstones_dropped,
            too_large_events,
            started: Utc::now(),
            recent_latencies: Mutex::new(VecDeque::with_capacity(RECENT_LATENCIES)),
            in_flight,
            pending_hras,
            watchers,
            tls_expiry_seconds,
            credentials_reloads,
            peers,
            github,
            connections,
            hras,
        }
    }

    /// Counts `n` events by what forwarding did with them.
    pub fn forwarded(&self, result: &'static str, n: u64) {
        self.peers.forwarded(result, n);
    }

    /// Counts one reload of a credential file that changed.
    pub fn credentials_reload(&self, file: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        let file = file.to_owned();
        self.credentials_reloads
            .get_or_create(&ReloadLabels { file, result })
            .inc();
    }

    /// Counts finished jobs dropped from an HRA's annotation to stay within its capacity.
    pub fn tombstones_dropped(&self, n: u64) {
        self.tombstones_dropped.inc_by(n);
    }

    /// Counts the events of a batch failed because the HRA would grow past its size limit.
    pub fn too_large(&self, events: u64) {
        self.too_large_events.inc_by(events);
    }

    /// Counts received events by result.
    pub fn event(&self, result: &'static str, n: u64) {
        if n > 0 {
            self.events.get_or_create(&ResultLabel { result }).inc_by(n);
        }
    }

    /// Counts one routed job by result.
    pub fn job_routed(&self, result: &'static str) {
        self.jobs_routed
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts one reported outcome.
    pub fn batch(&self, outcome: &'static str) {
        self.batches.get_or_create(&OutcomeLabel { outcome }).inc();
        if outcome == "retrying" {
            self.retries.inc();
        }
    }

    /// Records one write's duration, and whether it met a conflict.
    pub fn write(&self, took: Duration, conflict: bool) {
        // With traces on, the bucket keeps the trace of its latest write as an exemplar.
        let exemplar = super::traces::current().map(|sc| TraceLabel {
            trace_id: sc.trace_id().to_string(),
        });
        self.write_seconds
            .observe(took.as_secs_f64(), exemplar, None);
        if conflict {
            self.conflicts.inc();
        }
    }

    /// Records the age of a batch's oldest event when it was applied.
    pub fn event_age(&self, age: Duration) {
        self.event_age_seconds.observe(age.as_secs_f64());
        let mut recent = self.recent_latencies.lock();
        if recent.len() == RECENT_LATENCIES {
            recent.pop_front();
        }
        recent.push_back(age);
    }

    /// The counters since start, and recent apply latency.
    pub fn snapshot(&self) -> Snapshot {
        let events = |result| self.events.get_or_create(&ResultLabel { result }).get();
        let batches = |outcome| self.batches.get_or_create(&OutcomeLabel { outcome }).get();
        let mut recent: Vec<Duration> = self.recent_latencies.lock().iter().copied().collect();
        recent.sort_unstable();
        let at = |q: f64| {
            let i = ((recent.len() as f64 - 1.0) * q).round() as usize;
            recent.get(i).copied().unwrap_or_default()
        };
        let (recovered, verified, completed) = self.github.totals();
        Snapshot {
            started: self.started,
            events_accepted: events("accepted"),
            events_duplicate: events("duplicate"),
            events_rejected: ["invalid", "denied", "exhausted", "refused"]
                .into_iter()
                .map(events)
                .sum(),
            batches: ["applied", "retrying", "failed", "dry_run"].map(batches),
            write_conflicts: self.conflicts.get(),
            retries: self.retries.get(),
            apply_latency: (at(0.5), at(0.99)),
            deliveries_recovered: recovered,
            reservations_verified: verified,
            reservations_completed: completed,
        }
    }

    /// Counts results dropped for slow watchers.
    pub fn watch_dropped(&self, n: u64) {
        self.watch_dropped.inc_by(n);
    }

    /// Counts dedupe hits and evictions.
    pub fn dedupe(&self, hits: u64, evictions: u64) {
        self.dedupe_hits.inc_by(hits);
        self.dedupe_evictions.inc_by(evictions);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests;
