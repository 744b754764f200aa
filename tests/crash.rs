//! The real binary on the kubernetes backend (KUBECONFIG pointing at the test API server):
//! ScaleAndWait answers only once the HRA is written, and a SIGKILL at any point loses
//! nothing and doubles nothing once producers retry with the same job ids.

mod common;

use batch_scaler::api::pb::{self, batch_scaler_client::BatchScalerClient};
use common::apiserver::ApiServer;
use serde_json::{Value, json};
use std::{collections::BTreeMap, path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

const APPLIED: i32 = pb::Outcome::Applied as i32;

fn kubeconfig(api: &ApiServer) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "bs-kubeconfig-{}-{}",
        std::process::id(),
        api.addr.port()
    ));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"http://{}\"}}\n\
         users:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test, namespace: ci}}\n\
         current-context: test\n",
        api.addr
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the binary and returns it with a client once it logs its address.
async fn start(kubeconfig: &PathBuf, window: &str) -> (Child, BatchScalerClient<Channel>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch-scaler"))
        .args([
            "--backend",
            "kubernetes",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--window", window])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.trim().to_owned();
            }
        }
        panic!("exited before listening");
    })
    .await
    .expect("started in time");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = BatchScalerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    (child, client)
}

fn job(id: &str) -> pb::ScaleEvent {
    pb::ScaleEvent {
        namespace: "ci".into(),
        name: "a".into(),
        amount: 1,
        job_id: id.into(),
        ..Default::default()
    }
}

fn reservations(api: &ApiServer) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    let object = api.object("ci", "a").unwrap();
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
        "metadata": {"name": "a", "namespace": "ci"}, "spec": {"scaleTargetRef": {"name": "a"}}})
}

#[tokio::test]
async fn scale_and_wait_returns_applied_only_once_the_hra_is_written() {
    let api = ApiServer::start().await;
    api.insert(hra());
    let config = kubeconfig(&api);
    let (_child, mut client) = start(&config, "300ms").await;
    let r = client.scale_and_wait(job("J1")).await.unwrap().into_inner();
    assert_eq!(r.batch.unwrap().outcome, APPLIED);
    assert_eq!(reservations(&api).get("J1"), Some(&1));
    let gone = pb::ScaleEvent {
        name: "gone".into(),
        ..job("J2")
    };
    let r = client.scale_and_wait(gone).await.unwrap().into_inner();
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::Failed as i32);
    let seen = pb::ScaleEvent {
        event_id: "delivery-1".into(),
        ..job("J3")
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
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn a_sigkill_loses_nothing_and_retries_double_nothing() {
    let api = ApiServer::start().await;
    api.insert(hra());
    let config = kubeconfig(&api);
    let (mut child, client) = start(&config, "1s").await;

    // Wave 1 is applied before the crash; wave 2 waits in an open window when it comes.
    let wave1: Vec<String> = (0..5).map(|i| format!("w1-{i}")).collect();
    let wave2: Vec<String> = (0..5).map(|i| format!("w2-{i}")).collect();
    let call = |id: String| {
        let mut c = client.clone();
        tokio::spawn(async move { (id.clone(), c.scale_and_wait(job(&id)).await) })
    };
    let first: Vec<_> = wave1.iter().cloned().map(call).collect();
    let mut answers = Vec::new();
    for h in first {
        answers.push(h.await.unwrap());
    }
    let second: Vec<_> = wave2.iter().cloned().map(call).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    for h in second {
        answers.push(h.await.unwrap());
    }

    let stored = reservations(&api);
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
    let (_child, client) = start(&config, "200ms").await;
    let retries: Vec<_> = wave1
        .iter()
        .chain(&wave2)
        .map(|id| {
            let mut c = client.clone();
            let id = id.clone();
            tokio::spawn(async move { c.scale_and_wait(job(&id)).await })
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
    let stored = reservations(&api);
    assert_eq!(stored.len(), 10);
    assert!(stored.values().all(|&n| n == 1), "{stored:?}");
    let _ = std::fs::remove_file(config);
}
