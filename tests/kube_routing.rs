//! RouteJob and ScaleJob on the Kubernetes backend: routing reads HRAs, RunnerDeployments and
//! RunnerSets through watch caches, and follows objects created, edited and deleted while the
//! service runs. Runs on the test API server, or an existing cluster with
//! `USE_EXISTING_CLUSTER=true` (see tests/README.md).

mod common;

use batch_scaler::{
    api::pb,
    store::{
        kubernetes::KubeStore,
        runners::{RUNNER_DEPLOYMENTS, RUNNER_SETS},
    },
};
use batch_scaler_testkit::{cluster::TestCluster, fake_or_skip};
use common::*;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

fn runner(kind: &str, name: &str, spec: Value) -> Value {
    let spec = if kind == "RunnerDeployment" {
        json!({"template": {"spec": spec}})
    } else {
        spec
    };
    json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec})
}

/// The service on the kubernetes backend, watching the test's namespace.
async fn serve(c: &TestCluster) -> TestServer {
    let store = KubeStore::new(c.client(), Duration::from_secs(2))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    TestServer::start(Arc::new(store), test_settings(Duration::from_millis(100))).await
}

/// Waits until `job` routes to `want` (an HRA name, or none).
async fn routes_to(server: &TestServer, job: pb::WorkflowJob, want: Option<&str>) {
    let client = server.client().await;
    eventually(
        Duration::from_secs(10),
        "the route to follow the cluster",
        || {
            let (mut client, job) = (client.clone(), job.clone());
            async move {
                match client.route_job(job).await {
                    Ok(r) => r.into_inner().target.as_ref().map(|t| t.name.as_str()) == want,
                    // Still listing: routing says so instead of answering without a target.
                    Err(e) if e.code() == tonic::Code::Unavailable => false,
                    Err(e) => panic!("{e:?}"),
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn kube_routing_follows_runner_objects_created_edited_and_deleted() {
    let c = TestCluster::start().await;
    // Unique names: on an existing cluster other tests' organizations must not interfere.
    let org = c.namespace.clone();
    for name in ["app", "linux", "gpu"] {
        c.create(hra_object(&c.namespace, name, None)).await;
    }
    let gpu_hra = json!({"kind": "RunnerSet", "name": "gpu"});
    c.patch_spec(
        "horizontalrunnerautoscalers",
        "gpu",
        json!({"scaleTargetRef": gpu_hra}),
    )
    .await;
    c.create(runner(
        "RunnerDeployment",
        "app",
        json!({"repository": format!("{org}/app")}),
    ))
    .await;
    c.create(runner(
        "RunnerDeployment",
        "linux",
        json!({"organization": org, "labels": ["linux"]}),
    ))
    .await;
    let server = serve(&c).await;

    routes_to(
        &server,
        queued_job(&format!("{org}/app"), &[], "1"),
        Some("app"),
    )
    .await;
    routes_to(
        &server,
        queued_job(&format!("{org}/web"), &["linux"], "2"),
        Some("linux"),
    )
    .await;
    // A RunnerSet appears: GPU jobs route to it.
    c.create(runner(
        "RunnerSet",
        "gpu",
        json!({"organization": org, "labels": ["gpu"]}),
    ))
    .await;
    routes_to(
        &server,
        queued_job(&format!("{org}/web"), &["gpu"], "3"),
        Some("gpu"),
    )
    .await;
    // The RunnerDeployment's labels change: linux jobs no longer match it.
    c.patch_spec(
        RUNNER_DEPLOYMENTS,
        "linux",
        json!({"template": {"spec": {"labels": ["arm64"]}}}),
    )
    .await;
    routes_to(
        &server,
        queued_job(&format!("{org}/web"), &["linux"], "4"),
        None,
    )
    .await;
    // The RunnerSet is deleted: GPU jobs have nowhere to go.
    c.delete(RUNNER_SETS, "gpu").await;
    routes_to(
        &server,
        queued_job(&format!("{org}/web"), &["gpu"], "5"),
        None,
    )
    .await;

    // ScaleJob queues the routed event; our own write does not disturb routing.
    let job = pb::WorkflowJob {
        wait: true,
        ..queued_job(&format!("{org}/app"), &[], "42")
    };
    let r = server
        .client()
        .await
        .scale_job(job)
        .await
        .unwrap()
        .into_inner();
    let batch = r.batch.expect("waited");
    assert_eq!(
        (batch.outcome, batch.added),
        (pb::Outcome::Applied as i32, 1)
    );
    let object = c.object("app").await.unwrap();
    assert_eq!(object["spec"]["capacityReservations"][0]["name"], "42");
    routes_to(
        &server,
        queued_job(&format!("{org}/app"), &[], "6"),
        Some("app"),
    )
    .await;
}

#[tokio::test]
async fn kube_a_cluster_without_runner_sets_still_routes_to_runner_deployments() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "a cluster without the RunnerSet CRD");
    api.without_runner_sets();
    let org = c.namespace.clone();
    c.create(hra_object(&c.namespace, "linux", None)).await;
    c.create(runner(
        "RunnerDeployment",
        "linux",
        json!({"organization": org, "labels": ["linux"]}),
    ))
    .await;
    let server = serve(&c).await;
    routes_to(
        &server,
        queued_job(&format!("{org}/web"), &["linux"], "1"),
        Some("linux"),
    )
    .await;
    let (code, _) = http_get(server.http_addr, "/readyz").await;
    assert_eq!(
        code, 200,
        "the missing RunnerSet CRD does not hold readiness"
    );
}
