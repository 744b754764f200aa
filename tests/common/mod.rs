//! Shared helpers for the integration tests.
#![allow(dead_code)]

use batch_scaler::{
    model::{CapacityReservation, HraKey},
    results::{BatchReport, Filter, ResultHub, Subscription},
};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

/// An HRA object as `kubectl get -o json` would show it, with fields we must not touch.
pub fn hra_object(namespace: &str, name: &str, max: Option<i32>) -> Value {
    let mut spec = json!({
        "scaleTargetRef": {"kind": "RunnerDeployment", "name": name},
        "minReplicas": 1,
        "scaleUpTriggers": [{"githubEvent": {"workflowJob": {}}, "duration": "30m"}],
    });
    if let Some(max) = max {
        spec["maxReplicas"] = json!(max);
    }
    json!({
        "apiVersion": "actions.summerwind.dev/v1alpha1",
        "kind": "HorizontalRunnerAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "ci"}},
        "spec": spec,
    })
}

/// A reservation starting now, living `secs` seconds.
pub fn reservation(name: &str, secs: i64) -> CapacityReservation {
    let now = Utc::now();
    CapacityReservation {
        name: name.into(),
        effective_time: now,
        expiration_time: now + TimeDelta::seconds(secs),
        replicas: 1,
    }
}

/// Shorthand for a key.
pub fn key(namespace: &str, name: &str) -> HraKey {
    HraKey::new(namespace, name)
}

/// Watches every result of a hub.
pub fn watch(hub: &ResultHub) -> Subscription {
    hub.subscribe(Filter::default(), 0)
}

/// The next result, or a panic after `secs` seconds (of tokio time).
pub async fn next(sub: &mut Subscription, secs: u64) -> Arc<BatchReport> {
    tokio::time::timeout(Duration::from_secs(secs), sub.live.recv())
        .await
        .expect("a result in time")
        .expect("hub open")
}
