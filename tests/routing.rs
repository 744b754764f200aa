//! RouteJob and ScaleJob end to end over gRPC on the memory backend: routing as
//! actions-runner-controller's webhook server does, jobs queued with their ids, and routing
//! that follows objects created, edited and deleted while the service runs.

mod common;

use batch_scaler::{api::pb, domain::routing::TargetKind, store::MemoryStore};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;

const WINDOW: Duration = Duration::from_millis(100);

fn runner_deployment(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
        "metadata": {"name": name, "namespace": ns}, "spec": {"template": {"spec": spec}}})
}

fn store() -> MemoryStore {
    MemoryStore::with_objects([
        hra_object("ci", "app", None),
        hra_object("ci", "linux", None),
        runner_deployment("ci", "app", json!({"repository": "octo/app"})),
        runner_deployment(
            "ci",
            "linux",
            json!({"organization": "octo", "labels": ["linux"]}),
        ),
    ])
    .unwrap()
}

fn target_name(r: &pb::Route) -> Option<&str> {
    r.target.as_ref().map(|t| t.name.as_str())
}

#[tokio::test]
async fn route_job_answers_where_how_much_how_long_and_why() {
    let (server, _store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    let mut client = server.client().await;
    let r = client
        .route_job(queued_job("octo/app", &["self-hosted"], "1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((target_name(&r), r.amount), (Some("app"), 1));
    assert_eq!(r.duration.unwrap().seconds, 1800, "the HRA trigger's 30m");
    assert!(
        r.reason.contains("repository runners: key octo/app"),
        "{}",
        r.reason
    );
    let r = client
        .route_job(queued_job("octo/web", &["Linux"], "2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(target_name(&r), Some("linux"));
    let r = client
        .route_job(queued_job("octo/web", &["gpu"], "3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.target.clone(), r.amount), (None, 1));
    assert!(r.reason.contains("label \"gpu\""), "{}", r.reason);
    let skipped = pb::WorkflowJob {
        action: "completed".into(),
        conclusion: "skipped".into(),
        ..queued_job("octo/app", &[], "1")
    };
    let r = client.route_job(skipped).await.unwrap().into_inner();
    assert_eq!((r.amount, r.target.clone()), (0, None));
    let bad = client
        .route_job(queued_job("octo", &[], "1"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().starts_with("repository: must be OWNER/REPO"),
        "{}",
        bad.message()
    );
    let no_id = client
        .route_job(queued_job("octo/app", &[], ""))
        .await
        .unwrap_err();
    assert!(no_id.message().starts_with("job_id"), "{}", no_id.message());
    // RouteJob queues nothing.
    let t = client
        .get_target(pb::TargetRef {
            namespace: "ci".into(),
            name: "app".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(t.capacity_reservations.is_empty());
    let metrics = scrape(server.http_addr).await;
    for line in [
        "batch_scaler_jobs_routed_total{result=\"routed\"} 2",
        "batch_scaler_jobs_routed_total{result=\"unmatched\"} 1",
        "batch_scaler_jobs_routed_total{result=\"ignored\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line}");
    }
}

#[tokio::test]
async fn scale_job_queues_the_routed_event_with_the_job_s_ids() {
    let (server, store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    let mut client = server.client().await;
    let job = pb::WorkflowJob {
        wait: true,
        event_id: "d-1".into(),
        ..queued_job("octo/app", &[], "42")
    };
    let r = client.scale_job(job.clone()).await.unwrap().into_inner();
    let batch = r.batch.expect("waited for the batch");
    assert_eq!(
        (batch.outcome, batch.added, batch.name.as_str()),
        (pb::Outcome::Applied as i32, 1, "app")
    );
    let object = store.object(&key("ci", "app")).unwrap();
    assert_eq!(
        object["spec"]["capacityReservations"][0]["name"], "42",
        "named by the job id"
    );
    // The same delivery again is a duplicate; the same job under a new delivery adds nothing.
    let again = client.scale_job(job.clone()).await.unwrap().into_inner();
    assert!(again.duplicate && again.batch.is_none());
    let redelivered = pb::WorkflowJob {
        event_id: "d-2".into(),
        ..job.clone()
    };
    let r = client.scale_job(redelivered).await.unwrap().into_inner();
    assert_eq!(r.batch.unwrap().added, 0);
    // Its completion removes exactly its reservation.
    let done = pb::WorkflowJob {
        action: "completed".into(),
        conclusion: "success".into(),
        has_runner: true,
        event_id: "d-3".into(),
        ..job
    };
    let r = client.scale_job(done).await.unwrap().into_inner();
    assert_eq!(r.route.unwrap().amount, -1);
    assert_eq!(r.batch.unwrap().completed, 1);
    // Nothing to scale is an answer, not an error, and queues nothing.
    let r = client
        .scale_job(pb::WorkflowJob {
            wait: true,
            ..queued_job("elsewhere/x", &[], "7")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.route.unwrap().target.is_none() && r.batch.is_none());
}

#[tokio::test]
async fn routing_follows_objects_created_edited_and_deleted_while_running() {
    let (server, store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    let client = server.client().await;
    let route = |job: pb::WorkflowJob| {
        let mut client = client.clone();
        async move { client.route_job(job).await.unwrap().into_inner() }
    };
    assert_eq!(
        target_name(&route(queued_job("octo/web", &["gpu"], "1")).await),
        None
    );
    // The runners gain the label: the same job now routes.
    store
        .put_runner(runner_deployment(
            "ci",
            "linux",
            json!({"organization": "octo", "labels": ["linux", "gpu"]}),
        ))
        .unwrap();
    assert_eq!(
        target_name(&route(queued_job("octo/web", &["gpu"], "1")).await),
        Some("linux")
    );
    // A new HRA with its own repository runners takes the repository's jobs.
    store.insert(hra_object("ci", "web", None)).unwrap();
    store
        .put_runner(runner_deployment(
            "ci",
            "web",
            json!({"repository": "octo/web"}),
        ))
        .unwrap();
    assert_eq!(
        target_name(&route(queued_job("octo/web", &[], "2")).await),
        Some("web")
    );
    // Its target deleted: back to the organization's runners.
    assert!(store.remove_runner(TargetKind::RunnerDeployment, "ci", "web"));
    assert_eq!(
        target_name(&route(queued_job("octo/web", &[], "3")).await),
        Some("linux")
    );
    // The HRA deleted: nothing for the organization either.
    assert!(store.remove(&key("ci", "linux")));
    let r = route(queued_job("octo/web", &[], "4")).await;
    assert_eq!(target_name(&r), None, "{}", r.reason);
    // Our own writes do not disturb routing.
    let job = pb::WorkflowJob {
        wait: true,
        ..queued_job("octo/app", &[], "5")
    };
    let r = server
        .client()
        .await
        .scale_job(job)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::Applied as i32);
    assert_eq!(
        target_name(&route(queued_job("octo/app", &[], "6")).await),
        Some("app")
    );
}

#[tokio::test]
async fn a_route_outside_the_allowed_namespaces_is_never_chosen() {
    let mut settings = test_settings(WINDOW);
    settings.allowed = batch_scaler::domain::namespaces::Allowlist::new(["other".to_owned()]);
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let r = server
        .client()
        .await
        .route_job(queued_job("octo/app", &[], "1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.target, None);
}
