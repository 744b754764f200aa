//! Open dashboards cost the API server nothing: `WatchTargets` streams on the Kubernetes
//! backend are served from the watch cache. Counted on the test API server (on an existing
//! cluster there is no count to read, so it is skipped there).

mod common;

use batch_scaler::{api::pb, store::kubernetes::KubeStore};
use batch_scaler_testkit::{cluster::TestCluster, fake_or_skip};
use common::*;
use std::{sync::Arc, time::Duration};
use tokio_stream::StreamExt as _;

const HRAS: usize = 50;
const DASHBOARDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_open_dashboards_add_no_api_server_requests() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "the API server's request counts");
    for i in 0..HRAS {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
    }
    let store = KubeStore::new(c.client(), Duration::from_secs(10))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    let server =
        TestServer::start(Arc::new(store), test_settings(Duration::from_millis(100))).await;
    let request = || pb::ListTargetsRequest {
        namespace: c.namespace.clone(),
    };
    // The first dashboard, once the cache has listed everything.
    let mut client = server.client().await;
    let mut first = client.watch_targets(request()).await.unwrap().into_inner();
    let snapshot = tokio::time::timeout(Duration::from_secs(10), first.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.targets.len(), HRAS);
    // Until the watch cache has listed, reads go to the API server; a read that found it not
    // ready just before may still be on its way. Measure once the service is ready and the
    // count has settled.
    eventually(Duration::from_secs(10), "the service ready", || async {
        batch_scaler_testkit::http_get(server.http_addr, "/readyz")
            .await
            .0
            == 200
    })
    .await;
    let mut settled = api.count("list");
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = api.count("list");
        if now == settled {
            break;
        }
        settled = now;
    }
    let before = (api.count("get"), api.count("list"));
    // Twenty more dashboards, each with its snapshot, open for three seconds.
    let mut streams = Vec::new();
    for _ in 0..DASHBOARDS {
        let mut s = client.watch_targets(request()).await.unwrap().into_inner();
        let snapshot = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(snapshot.targets.len(), HRAS);
        streams.push(s);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        (api.count("get"), api.count("list")),
        before,
        "GETs and LISTs while {DASHBOARDS} dashboards were open"
    );
}
