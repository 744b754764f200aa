//! Scale-out's wiring: forwarding to the other members, and its metrics.

use crate::{
    api::peers::Peers,
    config::Settings,
    ops::metrics::Metrics,
    store::{HraStore, membership::Membership},
};
use std::{sync::Arc, time::Duration};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Forwarding to the other members, presenting this replica's token and (with TLS) its own
/// certificate, trusting `--tls-client-ca` for theirs; `None` (each replica then writes what
/// it receives) with TLS but no client CA to verify peers by.
pub(super) fn peers_for(
    membership: Arc<Membership>,
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> Option<Arc<Peers>> {
    let tls = match &settings.grpc.tls {
        None => None,
        Some(credentials) => {
            let files = credentials.files();
            let Some(ca) = &files.client_ca else {
                tracing::warn!(
                    "forwarding between replicas needs --tls-client-ca to verify them: each replica writes what it receives"
                );
                return None;
            };
            let read = |p: &std::path::Path| std::fs::read(p).ok();
            let (Some(ca), Some(cert), Some(key)) = (read(ca), read(&files.cert), read(&files.key))
            else {
                return None;
            };
            Some(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .identity(Identity::from_pem(cert, key)),
            )
        }
    };
    let auth = settings.grpc.auth.clone();
    let peers = Peers::new(
        membership.clone(),
        Box::new(move || auth.token_with(crate::api::auth::Role::Peer)),
        tls,
        metrics.clone(),
    );
    // Members and how often they changed, for the metrics.
    let mut changes = membership.subscribe();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let n = changes.borrow_and_update().len();
            metrics.peers.members.set(n as i64);
            metrics.peers.ownership_changes.inc();
        }
    });
    Some(Arc::new(peers))
}

/// Keeps the members and owned-HRAs gauges current (HRA lists come from the watch cache:
/// free), until aborted.
pub(super) async fn count_owned(
    store: Arc<dyn HraStore>,
    peers: Option<Arc<Peers>>,
    metrics: Arc<Metrics>,
) {
    loop {
        if let Ok(hras) = store.list(None).await {
            let owned = match &peers {
                Some(p) => hras.iter().filter(|h| p.owns(&h.key)).count(),
                None => hras.len(),
            };
            metrics.peers.owned_hras.set(owned as i64);
            metrics
                .peers
                .members
                .set(peers.as_ref().map_or(1, |p| p.members()) as i64);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
