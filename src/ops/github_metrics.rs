//! Metrics of drift repair: GitHub requests, recovered deliveries, verified reservations and
//! the rate limit left.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Labels of `github_requests`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `deliveries`, `delivery`, `job`, `access_token`.
    pub endpoint: &'static str,
    /// The HTTP status, or `error` (no answer: connection, timeout).
    pub code: String,
}

/// Label of `recovered_deliveries` and `verified_reservations`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GithubResultLabel {
    /// What came of it.
    pub result: &'static str,
}

/// Drift repair's figures.
#[derive(Clone, Default)]
pub struct GithubMetrics {
    requests: Family<RequestLabels, Counter>,
    recovered: Family<GithubResultLabel, Counter>,
    verified: Family<GithubResultLabel, Counter>,
    /// `x-ratelimit-remaining` of the last answer that carried it.
    pub ratelimit_remaining: Gauge,
}

impl GithubMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "github_requests",
            "Requests to GitHub's REST API, by endpoint and HTTP status (error: no answer)",
            m.requests.clone(),
        );
        registry.register(
            "recovered_deliveries",
            "Failed workflow_job webhook deliveries handled, by result (queued, duplicate, ignored: no HRA or an action that does not scale, invalid: unreadable payload, gone: no longer on GitHub, refused: the intake's error, dropped: backlog full)",
            m.recovered.clone(),
        );
        registry.register(
            "verified_reservations",
            "Reservations checked against GitHub, by result (kept: the job still waits or runs, completed: it finished, gone: 404)",
            m.verified.clone(),
        );
        registry.register(
            "github_ratelimit_remaining",
            "x-ratelimit-remaining of GitHub's last answer (-1 until an answer carried it)",
            m.ratelimit_remaining.clone(),
        );
        m.ratelimit_remaining.set(-1);
        m
    }

    /// Counts one request.
    pub fn request(&self, endpoint: &'static str, code: String) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, code })
            .inc();
    }

    /// Counts `n` recovered deliveries by result.
    pub fn recovered(&self, result: &'static str, n: u64) {
        self.recovered
            .get_or_create(&GithubResultLabel { result })
            .inc_by(n);
    }

    /// Counts one verified reservation by result.
    pub fn verified(&self, result: &'static str) {
        self.verified
            .get_or_create(&GithubResultLabel { result })
            .inc();
    }

    /// (deliveries recovered and queued, reservations verified, of those completed or gone).
    pub fn totals(&self) -> (u64, u64, u64) {
        let verified = |result| {
            self.verified
                .get_or_create(&GithubResultLabel { result })
                .get()
        };
        let ended = verified("completed") + verified("gone");
        let queued = self
            .recovered
            .get_or_create(&GithubResultLabel { result: "queued" })
            .get();
        (queued, ended + verified("kept"), ended)
    }
}
