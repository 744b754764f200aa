//! What a real kube-apiserver does with the objects we touch, asserted so that the test API
//! server is held to it: run on the fake by default and, with `USE_EXISTING_CLUSTER=true`, on
//! an existing cluster (or the fake served on its own, as CI does). `status` is written only
//! through its subresource, `metadata.generation` counts spec changes, LISTs page, unknown
//! fields are pruned, annotations are capped, Leases update conditionally.

mod common;

use batch_scaler::store::resource::{GROUP, PLURAL, VERSION};
use batch_scaler_testkit::cluster::TestCluster;
use common::*;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api,
    api::{ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams},
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A raw JSON request to the cluster.
async fn call(
    c: &TestCluster,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, kube::Error> {
    let mut builder = http::Request::builder().method(method).uri(path);
    builder = builder.header(
        "content-type",
        if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        },
    );
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    c.client()
        .request::<Value>(builder.body(body).unwrap())
        .await
}

fn hras(c: &TestCluster) -> String {
    format!(
        "/apis/{GROUP}/{VERSION}/namespaces/{}/{PLURAL}",
        c.namespace
    )
}

fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn kube_status_is_written_only_through_its_subresource_and_generation_counts_spec_changes() {
    let c = TestCluster::start().await;
    let mut object = hra_object(&c.namespace, "a", None);
    object["status"] = json!({"desiredReplicas": 5});
    c.create(object).await;
    let created = c.object("a").await.unwrap();
    assert!(created.get("status").is_none(), "a create drops status");
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created["metadata"]["creationTimestamp"].is_string(),
        "the server stamps the creation"
    );
    // The main resource ignores status; metadata changes do not count as generations.
    let path = format!("{}/a", hras(&c));
    let patched = call(
        &c,
        "PATCH",
        &path,
        Some(json!({"status": {"desiredReplicas": 7}, "metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    assert!(patched.get("status").is_none());
    assert_eq!(patched["metadata"]["labels"]["x"], "y");
    assert_eq!(patched["metadata"]["generation"], 1);
    // The subresource writes status only.
    let status = call(
        &c,
        "PATCH",
        &format!("{path}/status"),
        Some(json!({"status": {"desiredReplicas": 3}, "spec": {"minReplicas": 9}})),
    )
    .await
    .unwrap();
    assert_eq!(status["status"]["desiredReplicas"], 3);
    assert_eq!(
        status["spec"]["minReplicas"],
        created["spec"]["minReplicas"]
    );
    assert_eq!(status["metadata"]["generation"], 1);
    // A spec change is a new generation, and status stays.
    let spec = call(
        &c,
        "PATCH",
        &path,
        Some(json!({"spec": {"minReplicas": 2}})),
    )
    .await
    .unwrap();
    assert_eq!(spec["metadata"]["generation"], 2);
    assert_eq!(spec["status"]["desiredReplicas"], 3);
}

#[tokio::test]
async fn kube_lists_page_with_limit_and_continue() {
    let c = TestCluster::start().await;
    for i in 0..7 {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
    }
    let mut names = BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("{}?limit=2", hras(&c));
        if let Some(t) = &token {
            path.push_str(&format!("&continue={t}"));
        }
        let page = call(&c, "GET", &path, None).await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{} items on a page of 2", items.len());
        names.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        token = page["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 7);
    assert!(pages >= 4, "{pages} pages");
    // kube's own paging (what the service's lists and watches use) sees everything too.
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(),
        &c.namespace,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(GROUP, VERSION, "HorizontalRunnerAutoscaler"),
            PLURAL,
        ),
    );
    let mut all = 0;
    let mut params = ListParams::default().limit(3);
    loop {
        let page = api.list(&params).await.unwrap();
        all += page.items.len();
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => params = params.continue_token(&t),
            None => break,
        }
    }
    assert_eq!(all, 7);
    // An expired continue token is 410 Gone (the fake compacts on request; a real server
    // compacts on its own schedule).
    if let Some(fake) = c.fake() {
        let first = call(&c, "GET", &format!("{}?limit=2", hras(&c)), None)
            .await
            .unwrap();
        let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
        fake.compact();
        let gone = call(
            &c,
            "GET",
            &format!("{}?limit=2&continue={token}", hras(&c)),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&gone), 410);
    }
}

#[tokio::test]
async fn kube_unknown_fields_are_pruned_as_the_crd_schema_says() {
    let c = TestCluster::start().await;
    let mut object = hra_object(&c.namespace, "a", None);
    object["spec"]["capacityReservations"] = json!([{"name": "j", "effectiveTime": "2026-01-01T00:00:00Z",
        "expirationTime": "2099-01-01T00:00:00Z", "replicas": 1, "bogus": "x"}]);
    object["extra"] = json!({"not": "in the schema"});
    c.create(object).await;
    let stored = c.object("a").await.unwrap();
    assert!(stored.get("extra").is_none(), "{stored}");
    let item = &stored["spec"]["capacityReservations"][0];
    assert!(item.get("bogus").is_none(), "{item}");
    assert_eq!(item["name"], "j");
    // A patch is pruned the same way.
    let path = format!("{}/a", hras(&c));
    let patched = call(
        &c,
        "PATCH",
        &path,
        Some(
            json!({"spec": {"capacityReservations": [{"name": "k", "replicas": 1,
            "effectiveTime": "2026-01-01T00:00:00Z", "expirationTime": "2099-01-01T00:00:00Z",
            "nope": 1}]}}),
        ),
    )
    .await
    .unwrap();
    assert!(
        patched["spec"]["capacityReservations"][0]
            .get("nope")
            .is_none()
    );
}

#[tokio::test]
async fn kube_annotations_over_256_kib_are_refused() {
    let c = TestCluster::start().await;
    c.create(hra_object(&c.namespace, "a", None)).await;
    let path = format!("{}/a", hras(&c));
    let huge = "x".repeat(300 * 1024);
    let err = call(
        &c,
        "PATCH",
        &path,
        Some(json!({"metadata": {"annotations": {"example.com/huge": huge}}})),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), 422);
    assert!(err.to_string().contains("Too long"), "{err}");
    let fits = "x".repeat(200 * 1024);
    call(
        &c,
        "PATCH",
        &path,
        Some(json!({"metadata": {"annotations": {"example.com/big": fits}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn kube_leases_update_only_from_the_version_read() {
    let c = TestCluster::start().await;
    let api: Api<Lease> = Api::namespaced(c.client(), &c.namespace);
    let mut watch = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("member-a".into()),
            ..ObjectMeta::default()
        },
        spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    let read = api.get("member-a").await.unwrap();
    assert_eq!(
        read.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    // Renewed from the version read: accepted, with a new version.
    let mut renewed = read.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    let after = api
        .replace("member-a", &PostParams::default(), &renewed)
        .await
        .unwrap();
    assert_ne!(
        after.metadata.resource_version,
        read.metadata.resource_version
    );
    // From the stale version: 409, nothing changed.
    let mut stale = read;
    stale.spec.as_mut().unwrap().holder_identity = Some("pod-c".into());
    let err = api
        .replace("member-a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 409);
    let now = api.get("member-a").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("pod-b"));
    // The watch saw the create and the renewal.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), watch.next()).await {
            Ok(Some(Ok(WatchEvent::Added(l) | WatchEvent::Modified(l)))) => {
                seen.push(l.spec.unwrap().holder_identity.unwrap_or_default())
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("watch ended: {other:?}"),
        }
    }
    assert_eq!(seen, ["pod-a", "pod-b"]);
}
