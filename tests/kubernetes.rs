//! End to end: gRPC in, a real `kube::Client` out over HTTP to the test API server, or to an
//! existing cluster with `USE_EXISTING_CLUSTER=true` (see `tests/README.md`). Assertions
//! that need the fake (request counts, injected faults, held watches) run only there.

mod common;

use batch_scaler::{
    api::pb,
    config::Settings,
    domain::hra::HraKey,
    store::{
        kubernetes::KubeStore,
        resource::{APPLIED_BATCHES_ANNOTATION, PLURAL},
    },
};
use batch_scaler_testkit::{apiserver::Fault, cluster::TestCluster, fake_or_skip};
use common::*;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tokio_stream::StreamExt;

const WINDOW: Duration = Duration::from_millis(200);

fn event(c: &TestCluster, name: &str, amount: i32) -> pb::ScaleEvent {
    ev(&c.namespace, name, amount)
}

/// An HRA carrying every kind of field we must leave alone.
fn rich_hra(name: &str) -> Value {
    json!({
        "apiVersion": "actions.summerwind.dev/v1alpha1",
        "kind": "HorizontalRunnerAutoscaler",
        "metadata": {
            "name": name,
            "labels": {"team": "platform", "app.kubernetes.io/part-of": "ci"},
            "annotations": {"owner": "someone-else", "kubectl.kubernetes.io/last-applied-configuration": "{\"x\":1}"},
            "creationTimestamp": "2026-01-02T03:04:05Z",
        },
        "spec": {
            "scaleTargetRef": {"kind": "RunnerDeployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [{"type": "TotalNumberOfQueuedAndInProgressWorkflowRuns", "repositoryNames": ["org/repo"]}],
            "scheduledOverrides": [{"startTime": "2026-01-01T00:00:00+09:00", "endTime": "2026-01-02T00:00:00+09:00", "minReplicas": 0}],
            "scaleUpTriggers": [{"githubEvent": {"workflowJob": {}}, "duration": "30m", "amount": 1}],
            "scaleDownDelaySecondsAfterScaleOut": 300,
        },
        "status": {"desiredReplicas": 3, "lastSuccessfulScaleOutTime": "2026-01-02T03:04:05Z",
            "cacheEntries": [{"key": "desiredReplicas", "value": 3, "expirationTime": "2026-01-02T03:05:05Z"}]},
    })
}

fn settings(window: Duration) -> Settings {
    test_settings(window)
}

const APPLIED: i32 = pb::Outcome::Applied as i32;
const RETRYING: i32 = pb::Outcome::Retrying as i32;
const FAILED: i32 = pb::Outcome::Failed as i32;

#[tokio::test]
async fn kube_a_window_costs_one_get_and_one_patch_per_dirty_hra() {
    let c = TestCluster::start().await;
    for name in ["a", "b", "idle"] {
        c.create(rich_hra(name)).await;
    }
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    server
        .publish(vec![
            event(&c, "a", 1),
            event(&c, "b", 2),
            event(&c, "a", 1),
            event(&c, "b", -1),
        ])
        .await;
    let mut got = [recv(&mut results).await, recv(&mut results).await];
    got.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        (got[0].outcome, got[0].added, got[0].after, got[0].events),
        (APPLIED, 2, 2, 2)
    );
    assert_eq!(
        (got[1].outcome, got[1].added, got[1].completed, got[1].after),
        (APPLIED, 2, 1, 1)
    );
    let api = c.fake();
    if let Some(api) = api {
        assert_eq!((api.count("get"), api.count("patch")), (2, 2));
    }
    assert_eq!(
        (c.reservations("a").await, c.reservations("b").await),
        (2, 1)
    );
    // The patch carried the precondition, the list and our annotation, nothing else.
    for patch in api.map(|a| a.patches()).unwrap_or_default() {
        let spec: Vec<&String> = patch["spec"].as_object().unwrap().keys().collect();
        assert_eq!(spec, ["capacityReservations"]);
        assert!(patch["metadata"]["resourceVersion"].is_string());
        let annotations: Vec<&String> = patch["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(annotations, [APPLIED_BATCHES_ANNOTATION]);
    }
    let a = c.object("a").await.unwrap();
    let written = &a["spec"]["capacityReservations"][0];
    assert!(written["effectiveTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        written["effectiveTime"].as_str().unwrap().len(),
        "2026-05-29T17:04:57Z".len()
    );
    // GetTarget and ListTargets read through the same client.
    let mut client = server.client().await;
    let t = client
        .get_target(pb::TargetRef {
            namespace: c.namespace.clone(),
            name: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (t.reserved_replicas, t.max_replicas, t.min_replicas),
        (2, Some(10), Some(1))
    );
    assert_eq!(
        t.resource_version,
        a["metadata"]["resourceVersion"].as_str().unwrap()
    );
    let all = client
        .list_targets(pb::ListTargetsRequest {
            namespace: c.namespace.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "idle"]
    );
    let missing = pb::TargetRef {
        namespace: c.namespace.clone(),
        name: "nope".into(),
    };
    assert_eq!(
        client.get_target(missing).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
}

#[tokio::test]
async fn kube_fields_we_do_not_own_are_unchanged_byte_for_byte() {
    let c = TestCluster::start().await;
    let object = rich_hra("a");
    let status = object["status"].clone();
    c.create(object).await;
    // A create drops `status` (a subresource): actions-runner-controller writes it through
    // `/status`, as here.
    assert!(c.object("a").await.unwrap().get("status").is_none());
    c.patch_status(PLURAL, "a", status).await;
    let before = c.object("a").await.unwrap();
    assert!(before["status"]["desiredReplicas"].is_number());
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    server.publish(vec![event(&c, "a", 3)]).await;
    assert_eq!(recv(&mut results).await.outcome, APPLIED);
    server.publish(vec![event(&c, "a", -3)]).await;
    assert_eq!(recv(&mut results).await.after, 0);
    let after = c.object("a").await.unwrap();
    let text = |v: &Value| serde_json::to_string(v).unwrap();
    for pointer in [
        "/spec/scaleTargetRef",
        "/spec/minReplicas",
        "/spec/maxReplicas",
        "/spec/metrics",
        "/spec/scheduledOverrides",
        "/spec/scaleUpTriggers",
        "/spec/scaleDownDelaySecondsAfterScaleOut",
        "/metadata/labels",
        "/metadata/creationTimestamp",
        "/status",
    ] {
        assert_eq!(
            text(after.pointer(pointer).unwrap()),
            text(before.pointer(pointer).unwrap()),
            "{pointer}"
        );
    }
    for (k, v) in before["metadata"]["annotations"].as_object().unwrap() {
        assert_eq!(&after["metadata"]["annotations"][k], v, "annotation {k}");
    }
    assert!(
        after["spec"].get("capacityReservations").is_none(),
        "an empty list is removed"
    );
}

#[tokio::test]
async fn kube_a_concurrent_writer_between_read_and_write_loses_nothing() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "a foreign write timed between our read and our write");
    c.create(rich_hra("a")).await;
    let theirs = json!({"name": "theirs", "effectiveTime": "2026-01-01T00:00:00Z",
        "expirationTime": "2099-01-01T00:00:00Z", "replicas": 1});
    api.edit_after_next_get(
        &c.namespace,
        "a",
        Box::new(move |o| o["spec"]["capacityReservations"] = json!([theirs])),
    );
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    server.publish(vec![event(&c, "a", 2)]).await;
    let r = recv(&mut results).await;
    assert_eq!(
        (r.outcome, r.attempt, r.before, r.after),
        (APPLIED, 1, 1, 3)
    );
    assert_eq!(
        (api.count("get"), api.count("patch")),
        (2, 2),
        "409 then a re-read and re-plan"
    );
    let list = c.object("a").await.unwrap()["spec"]["capacityReservations"].clone();
    assert_eq!(list[0]["name"], "theirs");
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn kube_a_burst_of_500s_is_retried_then_applied() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "injected 500s");
    c.create(rich_hra("a")).await;
    for _ in 0..3 {
        api.fault_next("patch", Fault::Status(500));
    }
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    server
        .publish(vec![event(&c, "a", 1), event(&c, "a", 1)])
        .await;
    for attempt in 1..=3 {
        let r = recv(&mut results).await;
        assert_eq!((r.outcome, r.attempt), (RETRYING, attempt));
        assert!(r.error.contains("500"), "{}", r.error);
    }
    let r = recv(&mut results).await;
    assert_eq!(
        (r.outcome, r.attempt, r.added, r.after, r.events),
        (APPLIED, 4, 2, 2, 2)
    );
    assert_eq!(c.reservations("a").await, 2);
}

#[tokio::test]
async fn kube_not_found_fails_once_while_another_hra_applies_on_time() {
    let c = TestCluster::start().await;
    c.create(rich_hra("a")).await;
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    server
        .publish(vec![event(&c, "gone", 1), event(&c, "a", 1)])
        .await;
    let mut got = [recv(&mut results).await, recv(&mut results).await];
    got.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(got[0].outcome, APPLIED);
    assert_eq!((got[1].name.as_str(), got[1].outcome), ("gone", FAILED));
    assert!(got[1].error.contains("not found"), "{}", got[1].error);
    // Intake goes on, and the missing HRA is never tried again.
    server.publish(vec![event(&c, "a", 1)]).await;
    assert_eq!(recv(&mut results).await.name, "a");
    if let Some(api) = c.fake() {
        assert_eq!(api.count("patch"), 2);
    }
    assert!(
        tokio::time::timeout(WINDOW * 3, results.next())
            .await
            .is_err(),
        "no further result"
    );
}

#[tokio::test]
async fn kube_forbidden_and_invalid_are_terminal() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "injected 403 and 422 answers");
    c.create(rich_hra("a")).await;
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    for code in [403, 422] {
        api.fault_next("patch", Fault::Status(code));
        server.publish(vec![event(&c, "a", 1)]).await;
        let r = recv(&mut results).await;
        assert_eq!((r.outcome, r.attempt), (FAILED, 1), "{code}");
    }
    assert_eq!(c.reservations("a").await, 0);
}

#[tokio::test]
async fn kube_a_write_whose_answer_is_lost_is_applied_exactly_once() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "a response dropped after the write landed");
    c.create(rich_hra("a")).await;
    api.fault_next("patch", Fault::ApplyThenDrop);
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    server.publish(vec![event(&c, "a", 1)]).await;
    let first = recv(&mut results).await;
    assert_eq!(first.outcome, RETRYING, "{}", first.error);
    let second = recv(&mut results).await;
    assert_eq!(
        (second.outcome, second.attempt, second.added),
        (APPLIED, 2, 1)
    );
    assert_eq!(second.batch_id, first.batch_id);
    assert_eq!(c.reservations("a").await, 1, "exactly one application");
    assert_eq!(
        api.count("patch"),
        1,
        "the retry saw its batch id and did not write again"
    );
}

#[tokio::test]
async fn kube_a_write_that_times_out_after_landing_is_not_applied_twice() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "a response stalled after the write landed");
    c.create(rich_hra("a")).await;
    api.fault_next("patch", Fault::ApplyThenStall(Duration::from_secs(4)));
    let server = TestServer::on_cluster(&c, settings(WINDOW)).await; // request timeout 2 s
    let mut results = watch_all(&server).await;
    server.publish(vec![event(&c, "a", 2)]).await;
    let first = recv(&mut results).await;
    assert_eq!(first.outcome, RETRYING);
    assert!(first.error.contains("no answer within"), "{}", first.error);
    assert_eq!(recv(&mut results).await.outcome, APPLIED);
    assert_eq!(c.reservations("a").await, 2);
}

#[tokio::test]
async fn kube_two_active_instances_lose_no_events() {
    let c = TestCluster::start().await;
    let names = ["a", "b", "c"];
    let existing = json!({"effectiveTime": "2026-01-01T00:00:00Z", "expirationTime": "2099-01-01T00:00:00Z", "replicas": 1});
    for n in names {
        let mut hra = rich_hra(n);
        hra["spec"]["maxReplicas"] = json!(1000);
        hra["spec"]["capacityReservations"] = json!(vec![existing.clone(); 5]);
        c.create(hra).await;
    }
    if let Some(api) = c.fake() {
        api.set_latency(Duration::from_millis(3));
    }
    let one = TestServer::on_cluster(&c, settings(Duration::from_millis(20))).await;
    let two = TestServer::on_cluster(&c, settings(Duration::from_millis(20))).await;
    let (mut w1, mut w2) = (watch_all(&one).await, watch_all(&two).await);
    let rounds = 10;
    let mut events_sent = 0;
    for round in 0..rounds {
        // Interleaved: both instances get events for every HRA, the same round at once.
        let evs = |amount| {
            names
                .iter()
                .map(|n| event(&c, n, amount))
                .collect::<Vec<_>>()
        };
        let second = if round % 3 == 0 { -1 } else { 1 };
        tokio::join!(one.publish(evs(2)), two.publish(evs(second)));
        events_sent += 2 * names.len();
    }
    let mut events_applied = 0;
    while events_applied < events_sent {
        let r = tokio::select! {
            r = recv(&mut w1) => r,
            r = recv(&mut w2) => r,
        };
        assert_ne!(r.outcome, FAILED, "{}", r.error);
        if r.outcome == APPLIED {
            events_applied += r.events as usize;
        }
    }
    // What one instance makes of all events, in any order (the list never runs empty):
    // 5 existing + 10 × 2 + 6 × 1 − 4 × 1 (rounds 0, 3, 6, 9).
    for n in names {
        assert_eq!(c.reservations(n).await, 27, "{n}: lost or doubled updates");
    }
    if let Some(api) = c.fake() {
        println!("409 conflicts re-planned: {}", api.count("conflict"));
    }
}

#[tokio::test]
async fn kube_shutdown_writes_a_pending_batch_before_exit() {
    let c = TestCluster::start().await;
    c.create(rich_hra("a")).await;
    let mut server = TestServer::on_cluster(&c, settings(Duration::from_secs(3600))).await;
    server.publish(vec![event(&c, "a", 2)]).await;
    assert_eq!(c.reservations("a").await, 0);
    server.shutdown().await.unwrap();
    assert_eq!(c.reservations("a").await, 2);
}

#[tokio::test]
async fn kube_dry_run_sends_dry_run_patches_and_changes_nothing() {
    let c = TestCluster::start().await;
    c.create(rich_hra("a")).await;
    let before = c.object("a").await.unwrap();
    let server = TestServer::on_cluster(&c, {
        let mut s = settings(WINDOW);
        s.engine.dry_run = true;
        s
    })
    .await;
    let mut results = watch_all(&server).await;
    server.publish(vec![event(&c, "a", 3)]).await;
    let r = recv(&mut results).await;
    assert_eq!(
        (r.outcome, r.added, r.after),
        (pb::Outcome::DryRun as i32, 3, 3)
    );
    if let Some(api) = c.fake() {
        assert_eq!(api.count("patch"), 1);
    }
    assert_eq!(c.object("a").await.unwrap(), before);
}

async fn start_cached(c: &TestCluster, settings: Settings) -> (TestServer, Arc<KubeStore>) {
    let store = KubeStore::new(c.client(), Duration::from_secs(2))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    tokio::time::timeout(Duration::from_secs(5), store.cache().unwrap().ready())
        .await
        .unwrap();
    let store = Arc::new(store);
    (TestServer::start(store.clone(), settings).await, store)
}

/// Waits until the watch cache holds `name` at its current resourceVersion.
async fn settle(c: &TestCluster, store: &KubeStore, name: &str) {
    let key = HraKey::new(&c.namespace, name);
    let cache = store.cache().expect("a watch cache");
    eventually(
        Duration::from_secs(5),
        "the watch cache to catch up",
        || async {
            let current = c.object(name).await.unwrap()["metadata"]["resourceVersion"].clone();
            cache
                .get(&key)
                .is_some_and(|h| current == h.resource_version.as_str())
        },
    )
    .await;
}

#[tokio::test]
async fn kube_with_the_watch_cache_a_window_costs_one_patch_per_dirty_hra() {
    let c = TestCluster::start().await;
    for name in ["a", "b", "c"] {
        c.create(rich_hra(name)).await;
    }
    let (server, store) = start_cached(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    let api = c.fake();
    api.inspect(|a| a.reset_counts());
    for round in 1..=3u32 {
        server
            .publish(vec![event(&c, "a", 1), event(&c, "b", 1)])
            .await;
        for _ in 0..2 {
            assert_eq!(recv(&mut results).await.outcome, APPLIED);
        }
        if let Some(api) = api {
            assert_eq!(
                (api.count("get"), api.count("patch")),
                (0, 2 * u64::from(round)),
                "round {round}"
            );
        }
        settle(&c, &store, "a").await;
        settle(&c, &store, "b").await;
    }
    assert_eq!(
        (c.reservations("a").await, c.reservations("b").await),
        (3, 3)
    );
    if let Some(api) = api {
        assert_eq!(api.count("conflict"), 0);
    }
}

#[tokio::test]
async fn kube_a_lagging_cache_costs_a_conflict_and_a_fresh_read_and_loses_nothing() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "a watch held back while another writer changes the HRA");
    c.create(rich_hra("a")).await;
    let (server, store) = start_cached(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    api.hold_watches(true);
    let theirs = json!([{"name": "theirs", "effectiveTime": "2026-01-01T00:00:00Z",
        "expirationTime": "2099-01-01T00:00:00Z", "replicas": 1}]);
    api.edit(
        &c.namespace,
        "a",
        Box::new(move |o| o["spec"]["capacityReservations"] = theirs),
    );
    api.reset_counts();
    server.publish(vec![event(&c, "a", 2)]).await;
    let r = recv(&mut results).await;
    assert_eq!(
        (r.outcome, r.before, r.after),
        (APPLIED, 1, 3),
        "re-planned from the fresh read"
    );
    assert_eq!(
        (api.count("conflict"), api.count("get"), api.count("patch")),
        (1, 1, 2)
    );
    // The watch catches up, and windows cost one PATCH again.
    api.hold_watches(false);
    settle(&c, &store, "a").await;
    api.reset_counts();
    server.publish(vec![event(&c, "a", 1)]).await;
    assert_eq!(recv(&mut results).await.after, 4);
    assert_eq!((api.count("get"), api.count("patch")), (0, 1));
}

#[tokio::test]
async fn kube_a_restarted_watch_loses_no_events() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "watch streams ended on purpose");
    c.create(rich_hra("a")).await;
    let (server, _store) = start_cached(&c, settings(WINDOW)).await;
    let mut results = watch_all(&server).await;
    let watches = api.count("watch");
    for round in 1..=3 {
        api.drop_watches();
        server
            .publish(vec![event(&c, "a", 1), event(&c, "a", 1)])
            .await;
        assert_eq!(recv(&mut results).await.after, 2 * round);
    }
    eventually(
        Duration::from_secs(5),
        "the watcher to come back",
        || async { api.count("watch") > watches },
    )
    .await;
    assert_eq!(c.reservations("a").await, 6);
}
