//! Counted figures of the Kubernetes path, asserted so that a regression fails CI instead of
//! waiting for someone to read a bench: API calls per dirty HRA with the watch cache, cold and
//! steady, and a cache that keeps listing while writes land still gets to watch. On the test
//! API server only (counts and latency are the fake's); the README's Performance table says
//! which of its figures these tests hold.

mod common;

use batch_scaler::{
    api::pb,
    store::{HraStore, kubernetes::KubeStore},
};
use batch_scaler_testkit::{cluster::TestCluster, fake_or_skip};
use common::*;
use serde_json::Value;
use std::{sync::Arc, time::Duration};

const WINDOW: Duration = Duration::from_millis(200);
const APPLIED: i32 = pb::Outcome::Applied as i32;

fn calls(api: &batch_scaler_testkit::apiserver::ApiServer) -> u64 {
    ["get", "list", "watch", "patch"]
        .iter()
        .map(|v| api.count(v))
        .sum()
}

/// One `+1` for each HRA in one `Publish`, then waits until every HRA's batch is applied.
async fn one_window(
    server: &TestServer,
    results: &mut tonic::Streaming<pb::BatchResult>,
    c: &TestCluster,
    names: &[String],
) {
    server
        .publish(names.iter().map(|n| ev(&c.namespace, n, 1)).collect())
        .await;
    let mut applied = 0;
    while applied < names.len() {
        if recv(results).await.outcome == APPLIED {
            applied += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_with_the_watch_cache_a_dirty_hra_costs_one_api_call_cold_and_steady() {
    const HRAS: usize = 1000;
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "request counts and latency are the test API server's");
    let names: Vec<String> = (0..HRAS).map(|i| format!("h{i}")).collect();
    for n in &names {
        api.insert(hra_object(&c.namespace, n, Some(100_000)));
    }
    // The bench's setting: every request takes 20 ms, and LISTs are answered in the 500-object
    // pages the watcher asks for, as a real API server answers them.
    api.set_latency(Duration::from_millis(20));
    api.set_page_size(500);
    api.reset_counts();
    let store = Arc::new(
        KubeStore::new(c.client(), Duration::from_secs(10))
            .with_watch_cache(std::slice::from_ref(&c.namespace)),
    );
    // Cold: the service starts and the first window runs while its cache is filling.
    let server = TestServer::start(store.clone() as Arc<dyn HraStore>, test_settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    one_window(&server, &mut results, &c, &names).await;
    let cold = calls(api) as f64 / HRAS as f64;
    tokio::time::timeout(Duration::from_secs(30), store.cache().unwrap().ready())
        .await
        .expect("the watch cache synced");
    api.reset_counts();
    one_window(&server, &mut results, &c, &names).await;
    let steady = calls(api) as f64 / HRAS as f64;
    let (gets, patches) = (api.count("get"), api.count("patch"));
    eprintln!(
        "api calls per dirty HRA: cold {cold:.3}, steady {steady:.3} ({gets} GETs, {patches} PATCHes)"
    );
    assert!(cold <= 2.0, "cold start: {cold:.3} API calls per dirty HRA");
    assert!(
        steady <= 1.05,
        "steady: {steady:.3} API calls per dirty HRA"
    );
    assert_eq!(gets, 0, "steady windows plan from the cache");
    assert_eq!(c.reservations("h0").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_cache_listing_while_thousands_of_writes_land_gets_to_watch() {
    const HRAS: usize = 600;
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "LIST paging and latency are the test API server's");
    for i in 0..HRAS {
        api.insert(hra_object(&c.namespace, &format!("h{i}"), None));
    }
    // Pages of 3 at 3 ms: the first list takes about 0.6 s, during which another writer keeps
    // changing HRAs, more than a thousand times a second (the bench's own windows did this).
    api.set_latency(Duration::from_millis(3));
    let store = Arc::new(
        KubeStore::new(c.client(), Duration::from_secs(10))
            .with_watch_cache(std::slice::from_ref(&c.namespace)),
    );
    let cache = store.cache().unwrap();
    let ready = cache.ready();
    tokio::pin!(ready);
    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    let mut written = 0usize;
    loop {
        tokio::select! {
            () = &mut ready => break,
            () = &mut deadline => panic!(
                "the cache never finished a list while {written} writes landed ({} LISTs)",
                api.count("list")
            ),
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                for _ in 0..20 {
                    let n = written;
                    api.edit(
                        &c.namespace,
                        &format!("h{}", n % HRAS),
                        Box::new(move |o: &mut Value| {
                            o["metadata"]["labels"]["touched"] = (n % 7).to_string().into()
                        }),
                    );
                    written += 1;
                }
            }
        }
    }
    assert!(
        written > 1000,
        "only {written} writes landed during the list"
    );
    // And it watches: a window for ten HRAs costs their PATCHes alone.
    let server = TestServer::start(store.clone() as Arc<dyn HraStore>, test_settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    let names: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    for n in &names {
        let current = c.object(n).await.unwrap()["metadata"]["resourceVersion"].clone();
        eventually(Duration::from_secs(10), "the cache caught up", || async {
            cache
                .get(&key(&c.namespace, n))
                .is_some_and(|h| current == h.resource_version.as_str())
        })
        .await;
    }
    api.set_latency(Duration::ZERO);
    api.reset_counts();
    one_window(&server, &mut results, &c, &names).await;
    assert_eq!(
        (api.count("get"), api.count("list"), api.count("patch")),
        (0, 0, 10)
    );
}
