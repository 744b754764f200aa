//! Metrics of the gRPC port's connections: how many are open, and why each one closed (the
//! HTTP/2 GOAWAY we sent, named by its error code, or the peer going away).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Label of `connections_closed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `goaway_<code>` (we sent HTTP/2 GOAWAY with that error code, e.g.
    /// `goaway_enhance_your_calm`), `peer` (closed by the client or the network without a
    /// GOAWAY of ours), a limit of ours (`preface_timeout`, `idle_timeout`, `evicted_at_cap`,
    /// `connection_cap`), `tls_handshake_failed`, `tls_handshake_timeout`.
    pub reason: &'static str,
}

/// The connection figures.
#[derive(Clone, Default)]
pub struct ConnectionMetrics {
    /// Connections open now (past their TLS handshake, when TLS is on).
    pub open: Gauge,
    closed: Family<ReasonLabel, Counter>,
}

impl ConnectionMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "connections_open",
            "Connections to the gRPC port open now",
            m.open.clone(),
        );
        registry.register(
            "connections_closed",
            "Connections to the gRPC port closed, by reason: goaway_<code> (we sent HTTP/2 GOAWAY with that error code; goaway_enhance_your_calm is h2 flood protection), peer (closed by the client or the network), preface_timeout, idle_timeout, evicted_at_cap, connection_cap, tls_handshake_failed, tls_handshake_timeout",
            m.closed.clone(),
        );
        m
    }

    /// Counts one connection closed for `reason`.
    pub fn closed(&self, reason: &'static str) {
        self.closed.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Connections closed for `reason` so far.
    pub fn closed_count(&self, reason: &'static str) -> u64 {
        self.closed.get_or_create(&ReasonLabel { reason }).get()
    }
}
