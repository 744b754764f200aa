//! The README's promises at their edges, on Kubernetes over real HTTP: one failing HRA (or
//! forty) never delays another; reads come from the watch cache; a namespaced Role is
//! enough; readiness is what the service can really do. On the test API server, and (where
//! no fault injection is needed) on an existing cluster with `USE_EXISTING_CLUSTER=true`.

mod common;

use batch_scaler::{
    api::pb,
    config::Settings,
    store::{HraStore, kubernetes::KubeStore},
};
use batch_scaler_testkit::{cluster::TestCluster, fake_or_skip};
use common::*;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

const WINDOW: Duration = Duration::from_millis(200);

async fn start_cached(c: &TestCluster, settings: Settings) -> TestServer {
    let store = KubeStore::new(c.client(), Duration::from_secs(30))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    let store: Arc<dyn HraStore> = Arc::new(store);
    TestServer::start(store, settings).await
}

#[tokio::test]
async fn kube_forty_failing_hras_do_not_delay_ten_healthy_ones() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "failing writes are injected by the test API server");
    const FAILING: usize = 40;
    const HEALTHY: usize = 10;
    for i in 0..FAILING {
        c.create(hra_object(&c.namespace, &format!("bad-{i}"), None))
            .await;
        // An admission webhook that times out after a second: every PATCH fails, slowly.
        api.fail_patches_of(
            &c.namespace,
            &format!("bad-{i}"),
            500,
            Duration::from_secs(1),
        );
    }
    for i in 0..HEALTHY {
        c.create(hra_object(&c.namespace, &format!("good-{i}"), None))
            .await;
    }
    api.set_latency(Duration::from_millis(20));
    let mut settings = test_settings(WINDOW);
    // Fewer write slots than failing HRAs, and retries as eager as they come.
    settings.engine.max_concurrent_writes = 8;
    settings.engine.retry.deadline = Duration::from_secs(600);
    let server = start_cached(&c, settings).await;
    let mut results = watch_all(&server).await;
    server
        .publish(
            (0..FAILING)
                .map(|i| ev(&c.namespace, &format!("bad-{i}"), 1))
                .collect(),
        )
        .await;
    // Until every failing HRA is retrying (their first attempts share the slots with
    // everyone's: nobody can tell yet that they will fail).
    let mut retrying = std::collections::HashSet::new();
    let all_retrying = async {
        while retrying.len() < FAILING {
            let r = recv(&mut results).await;
            if r.outcome == pb::Outcome::Retrying as i32 {
                retrying.insert(r.name);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_retrying)
        .await
        .expect("every failing HRA got to make an attempt");
    let queued = Instant::now();
    server
        .publish(
            (0..HEALTHY)
                .map(|i| ev(&c.namespace, &format!("good-{i}"), 1))
                .collect(),
        )
        .await;
    eventually(
        Duration::from_secs(45),
        "every healthy HRA applied",
        || async {
            let mut applied = 0;
            for i in 0..HEALTHY {
                applied += c.reservations(&format!("good-{i}")).await;
            }
            applied == HEALTHY
        },
    )
    .await;
    let took = queued.elapsed();
    eprintln!(
        "isolation: {HEALTHY} healthy HRAs applied {took:?} after queueing, beside {FAILING} failing"
    );
    // One window, then a write slot that retries cannot all hold, then the write itself.
    assert!(
        took < WINDOW + Duration::from_secs(2),
        "healthy HRAs waited {took:?}"
    );
    for i in 0..FAILING {
        assert_eq!(c.reservations(&format!("bad-{i}")).await, 0);
    }
}

#[tokio::test]
async fn kube_reads_come_from_the_watch_cache() {
    let c = TestCluster::start().await;
    for name in ["a", "b"] {
        c.create(hra_object(&c.namespace, name, None)).await;
    }
    let server = start_cached(&c, test_settings(WINDOW)).await;
    let mut client = server.client().await;
    eventually(Duration::from_secs(10), "the cache to list both", || {
        let mut client = client.clone();
        let ns = c.namespace.clone();
        async move {
            client
                .list_targets(pb::ListTargetsRequest { namespace: ns })
                .await
                .is_ok_and(|r| r.into_inner().targets.len() == 2)
        }
    })
    .await;
    let api = c.fake();
    let before = api.map(|a| (a.count("list"), a.count("get")));
    for _ in 0..40 {
        let listed = client
            .list_targets(pb::ListTargetsRequest {
                namespace: c.namespace.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.targets.len(), 2);
        let target = client
            .get_target(pb::TargetRef {
                namespace: c.namespace.clone(),
                name: "a".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!target.resource_version.is_empty());
    }
    if let (Some(api), Some(before)) = (api, before) {
        assert_eq!(
            (api.count("list"), api.count("get")),
            before,
            "40 ListTargets and 40 GetTarget cost the API server nothing"
        );
    }
    // What we write is read back at once (read your writes), from the cache.
    let written = client
        .scale_and_wait(ev(&c.namespace, "a", 2))
        .await
        .unwrap()
        .into_inner()
        .batch
        .unwrap();
    assert_eq!(written.after, 2);
    let target = client
        .get_target(pb::TargetRef {
            namespace: c.namespace.clone(),
            name: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(target.capacity_reservations.len(), 2);
}

async fn health(server: &TestServer) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;

#[tokio::test]
async fn kube_not_serving_and_routing_unavailable_until_every_watch_cache_has_listed() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "a slow list is held back by the test API server");
    let org = c.namespace.clone();
    c.create(hra_object(&c.namespace, "linux", None)).await;
    c.create(
        serde_json::json!({"apiVersion": "actions.summerwind.dev/v1alpha1",
        "kind": "RunnerDeployment", "metadata": {"name": "linux"},
        "spec": {"template": {"spec": {"organization": org, "labels": ["linux"]}}}}),
    )
    .await;
    // Thousands of RunnerDeployments still being listed.
    api.open_lists(batch_scaler::store::runners::RUNNER_DEPLOYMENTS, false);
    let mut server = start_cached(&c, test_settings(WINDOW)).await;
    let mut client = server.client().await;
    let job = queued_job(&format!("{org}/web"), &["linux"], "7");
    // The HRAs are listed; routing is not complete, and nothing pretends it is.
    eventually(Duration::from_secs(10), "the HRA cache to list", || {
        let mut client = client.clone();
        let ns = c.namespace.clone();
        async move {
            client
                .list_targets(pb::ListTargetsRequest { namespace: ns })
                .await
                .is_ok_and(|r| r.into_inner().targets.len() == 1)
        }
    })
    .await;
    assert_ne!(health(&server).await, SERVING);
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 503);
    let route = client.route_job(job.clone()).await.unwrap_err();
    assert_eq!(route.code(), tonic::Code::Unavailable, "{route:?}");
    assert!(
        route.message().contains("routing is not ready"),
        "{route:?}"
    );
    let scaled = client
        .scale_job(pb::WorkflowJob {
            wait: true,
            ..job.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(scaled.code(), tonic::Code::Unavailable);
    assert_eq!(c.reservations("linux").await, 0, "nothing queued");
    // Once listed: serving, and the job routes.
    api.open_lists(batch_scaler::store::runners::RUNNER_DEPLOYMENTS, true);
    eventually(Duration::from_secs(10), "SERVING", || async {
        health(&server).await == SERVING
    })
    .await;
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 200);
    let route = client.route_job(job).await.unwrap().into_inner();
    assert_eq!(route.target.unwrap().name, "linux");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn kube_a_namespaced_role_is_enough() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "the namespaced Role is emulated by the test API server");
    for name in ["a", "b"] {
        c.create(hra_object(&c.namespace, name, None)).await;
    }
    api.allow_only_namespaces(&[&c.namespace]);
    let server = start_cached(&c, test_settings(WINDOW)).await;
    let mut client = server.client().await;
    eventually(Duration::from_secs(10), "ready", || async {
        http_get(server.http_addr, "/readyz").await.0 == 200
    })
    .await;
    let all = client
        .list_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = all.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b"],
        "ListTargets {{}} lists the watched namespace"
    );
    let applied = client
        .scale_and_wait(ev(&c.namespace, "a", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.batch.unwrap().outcome, pb::Outcome::Applied as i32);
    // Outside the Role: the API server's 403 is PERMISSION_DENIED, not a crash or a hang.
    let other = client
        .get_target(pb::TargetRef {
            namespace: "elsewhere".into(),
            name: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied, "{other:?}");
}

#[tokio::test]
async fn kube_status_churn_and_our_own_writes_cost_no_routing_rebuild() {
    let c = TestCluster::start().await;
    let org = c.namespace.clone();
    c.create(hra_object(&c.namespace, "linux", None)).await;
    c.create(
        serde_json::json!({"apiVersion": "actions.summerwind.dev/v1alpha1",
        "kind": "RunnerDeployment", "metadata": {"name": "linux"},
        "spec": {"template": {"spec": {"organization": org, "labels": ["linux"]}}}}),
    )
    .await;
    let store = KubeStore::new(c.client(), Duration::from_secs(30))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    let routing = store.routing().expect("a watch cache routes");
    let store: Arc<dyn HraStore> = Arc::new(store);
    let server = TestServer::start(store, test_settings(WINDOW)).await;
    let mut client = server.client().await;
    eventually(Duration::from_secs(10), "routing ready", || async {
        routing.index().is_some()
    })
    .await;
    let built = routing.rebuilds();
    // A busy cluster: status written over and over, and our own reservation writes.
    for i in 0..20 {
        c.edit("linux", |o| {
            o["status"] = serde_json::json!({"desiredReplicas": i})
        })
        .await;
    }
    client
        .scale_and_wait(ev(&c.namespace, "linux", 1))
        .await
        .unwrap();
    // Let the watch deliver all of it: a label change after it is seen last.
    c.patch_spec(
        "runnerdeployments",
        "linux",
        serde_json::json!({"template": {"spec": {"organization": org, "labels": ["linux", "x64"]}}}),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the label change routed",
        || async { routing.rebuilds() > built },
    )
    .await;
    assert_eq!(
        routing.rebuilds(),
        built + 1,
        "40 status changes and a reservation write rebuilt nothing; the label change once"
    );
}
