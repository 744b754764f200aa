//! The real binary on the kubernetes backend (KUBECONFIG pointing at the test API server, or
//! at an existing cluster with `USE_EXISTING_CLUSTER=true`):
//! ScaleAndWait answers only once the HRA is written, and a SIGKILL at any point loses
//! nothing and doubles nothing once producers retry with the same job ids.

mod common;

use batch_scaler::api::pb;
use batch_scaler_testkit::{cluster::TestCluster, process::ServiceProcess};
use common::wait_accepted;
use serde_json::{Value, json};
use std::{collections::BTreeMap, path::Path};

const APPLIED: i32 = pb::Outcome::Applied as i32;

/// Starts the binary against `kubeconfig`.
async fn start(kubeconfig: &Path, namespace: &str, window: &str) -> ServiceProcess {
    let binary = Path::new(env!("CARGO_BIN_EXE_batch-scaler"));
    ServiceProcess::start(binary, kubeconfig, namespace, window, &[]).await
}

fn job(c: &TestCluster, id: &str) -> pb::ScaleEvent {
    pb::ScaleEvent {
        namespace: c.namespace.clone(),
        name: "a".into(),
        amount: 1,
        job_id: id.into(),
        ..Default::default()
    }
}

async fn reservations(c: &TestCluster) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    let object = c.object("a").await.unwrap();
    for r in object
        .pointer("/spec/capacityReservations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        *count
            .entry(r["name"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    count
}

fn hra() -> Value {
    json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "HorizontalRunnerAutoscaler",
        "metadata": {"name": "a"}, "spec": {"scaleTargetRef": {"name": "a"}}})
}

#[tokio::test]
async fn kube_binary_scale_and_wait_returns_applied_only_once_the_hra_is_written() {
    let c = TestCluster::start().await;
    c.create(hra()).await;
    let config = c.kubeconfig();
    let ServiceProcess {
        child: _child,
        mut client,
        ..
    } = start(&config, &c.namespace, "300ms").await;
    let r = client
        .scale_and_wait(job(&c, "J1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.batch.unwrap().outcome, APPLIED);
    assert_eq!(reservations(&c).await.get("J1"), Some(&1));
    let gone = pb::ScaleEvent {
        name: "gone".into(),
        ..job(&c, "J2")
    };
    let r = client.scale_and_wait(gone).await.unwrap().into_inner();
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::Failed as i32);
    let seen = pb::ScaleEvent {
        event_id: "delivery-1".into(),
        ..job(&c, "J3")
    };
    assert!(
        !client
            .scale_and_wait(seen.clone())
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    assert!(
        client
            .scale_and_wait(seen)
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    if c.fake().is_some() {
        let _ = std::fs::remove_file(config);
    }
}

#[tokio::test]
async fn kube_binary_sigkill_loses_nothing_and_retries_double_nothing() {
    let c = TestCluster::start().await;
    c.create(hra()).await;
    let config = c.kubeconfig();
    let ServiceProcess {
        mut child,
        client,
        metrics,
        ..
    } = start(&config, &c.namespace, "1s").await;

    // Wave 1 is applied before the crash; wave 2 waits in an open window when it comes.
    let wave1: Vec<String> = (0..5).map(|i| format!("w1-{i}")).collect();
    let wave2: Vec<String> = (0..5).map(|i| format!("w2-{i}")).collect();
    let call = |id: String| {
        let mut client = client.clone();
        let event = job(&c, &id);
        tokio::spawn(async move { (id, client.scale_and_wait(event).await) })
    };
    let first: Vec<_> = wave1.iter().cloned().map(call).collect();
    let mut answers = Vec::new();
    for h in first {
        answers.push(h.await.unwrap());
    }
    let second: Vec<_> = wave2.iter().cloned().map(call).collect();
    wait_accepted(metrics, 10).await;
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    for h in second {
        answers.push(h.await.unwrap());
    }

    let stored = reservations(&c).await;
    let mut unanswered = Vec::new();
    for (id, answer) in &answers {
        match answer {
            Ok(r) => {
                assert_eq!(r.get_ref().batch.as_ref().unwrap().outcome, APPLIED, "{id}");
                assert_eq!(
                    stored.get(id),
                    Some(&1),
                    "{id} was acknowledged, so it is stored"
                );
            }
            Err(status) => {
                assert!(!stored.contains_key(id), "{id}: {status:?}");
                unanswered.push(id.clone());
            }
        }
    }
    assert_eq!(unanswered, wave2, "the open window died with the process");

    // After a restart every producer retries (acknowledged or not): one reservation per job.
    let ServiceProcess {
        child: _child,
        client,
        ..
    } = start(&config, &c.namespace, "200ms").await;
    let retries: Vec<_> = wave1
        .iter()
        .chain(&wave2)
        .map(|id| {
            let mut client = client.clone();
            let event = job(&c, id);
            tokio::spawn(async move { client.scale_and_wait(event).await })
        })
        .collect();
    for h in retries {
        assert_eq!(
            h.await
                .unwrap()
                .unwrap()
                .into_inner()
                .batch
                .unwrap()
                .outcome,
            APPLIED
        );
    }
    let stored = reservations(&c).await;
    assert_eq!(stored.len(), 10);
    assert!(stored.values().all(|&n| n == 1), "{stored:?}");
    if c.fake().is_some() {
        let _ = std::fs::remove_file(config);
    }
}
