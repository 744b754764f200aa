//! Metrics of scale-out: members, owned HRAs, forwarded events, ownership changes.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Label of `forwarded_events`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForwardLabel {
    /// `forwarded` (the owner took it), `local` (owner unreachable: applied here), `refused`
    /// (the owner answered with an error that went back to the producer).
    pub result: &'static str,
}

/// Label of `scale_out_off`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why scale-out is off.
    pub reason: &'static str,
}

/// Scale-out's figures.
#[derive(Clone, Default)]
pub struct PeerMetrics {
    /// 1, labelled with the reason, while scale-out is off on the Kubernetes backend with
    /// `--peers auto` (a misconfiguration when there are several replicas).
    scale_out_off: Family<ReasonLabel, Gauge>,
    off_reason: std::sync::Arc<parking_lot::Mutex<Option<&'static str>>>,
    /// Live members this replica sees (set by the membership).
    pub members: Gauge,
    /// HRAs this replica owns now (set periodically).
    pub owned_hras: Gauge,
    /// Changes of the members this replica sees.
    pub ownership_changes: Counter,
    forwarded: Family<ForwardLabel, Counter>,
}

impl PeerMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "members",
            "Live replicas (unexpired member Leases) this replica sees",
            m.members.clone(),
        );
        registry.register(
            "owned_hras",
            "HRAs this replica owns (writes) now",
            m.owned_hras.clone(),
        );
        registry.register(
            "ownership_changes",
            "Changes of the live members, each moving some HRAs to another owner",
            m.ownership_changes.clone(),
        );
        registry.register(
            "scale_out_off",
            "1 while scale-out is off with --peers auto on the Kubernetes backend, labelled with why (several replicas would each write every HRA they receive events for)",
            m.scale_out_off.clone(),
        );
        registry.register(
            "forwarded_events",
            "Events received for an HRA another replica owns, by result (forwarded, local: owner unreachable, refused: the owner's error answered, unknown: job-less events the owner took but did not answer, not applied here and answered UNAVAILABLE)",
            m.forwarded.clone(),
        );
        m
    }

    /// Counts `n` events by what forwarding did with them.
    pub fn forwarded(&self, result: &'static str, n: u64) {
        if n > 0 {
            self.forwarded
                .get_or_create(&ForwardLabel { result })
                .inc_by(n);
        }
    }

    /// Notes that scale-out is off for `reason`.
    pub fn set_scale_out_off(&self, reason: &'static str) {
        self.scale_out_off
            .get_or_create(&ReasonLabel { reason })
            .set(1);
        *self.off_reason.lock() = Some(reason);
    }

    /// Why scale-out is off, if it is (see [`PeerMetrics::set_scale_out_off`]).
    pub fn scale_out_off(&self) -> Option<&'static str> {
        *self.off_reason.lock()
    }
}
