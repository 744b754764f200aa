//! Replicas of the service sharing a test cluster's HRAs out by member Leases.

use crate::{TestServer, cluster::TestCluster, eventually};
use batch_scaler::{
    api::pb,
    config::Settings,
    store::{
        HraStore,
        kubernetes::KubeStore,
        membership::{Membership, MembershipConfig},
    },
};
use std::{sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// The service on `c` with `settings`, member `name` of the test's namespace (Leases of 6 s,
/// renewed every 2 s), watching that namespace.
pub async fn member(c: &TestCluster, name: &str, mut settings: Settings) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    settings.membership = Some(Arc::new(Membership::start(
        c.client(),
        MembershipConfig {
            namespace: c.namespace.clone(),
            identity: format!("{}-{name}", c.namespace),
            address,
            lease_duration: Duration::from_secs(6),
            renew_every: Duration::from_secs(2),
        },
    )));
    let store = KubeStore::new(c.client(), Duration::from_secs(10))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    let store: Arc<dyn HraStore> = Arc::new(store);
    TestServer::start_on(listener, store, settings).await
}

/// Waits (at most 20 s) until each of `servers` sees `n` members.
pub async fn await_members(servers: &[TestServer], n: usize) {
    for server in servers {
        let client = server.client().await;
        eventually(
            Duration::from_secs(20),
            "every replica sees every member",
            || {
                let mut client = client.clone();
                async move {
                    client
                        .get_stats(pb::GetStatsRequest {})
                        .await
                        .is_ok_and(|s| s.into_inner().members as usize == n)
                }
            },
        )
        .await;
    }
}
