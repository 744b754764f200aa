//! A matrix burst over gRPC: ten thousand waiting calls (on twenty connections of at most 512
//! calls each), and `ScaleJobs`, the streaming form of `ScaleJob` that answers each job in
//! completion order with its ids.

mod common;

use batch_scaler::{api::pb, config::Settings, store::MemoryStore};
use common::*;
use serde_json::json;
use std::{collections::HashSet, time::Duration};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Code, transport::Channel};

const APPLIED: i32 = pb::Outcome::Applied as i32;

fn store(pools: usize) -> MemoryStore {
    let mut objects = Vec::new();
    for p in 0..pools {
        let name = format!("pool-{p}");
        objects.push(hra_object("burst", &name, None));
        objects.push(json!({"apiVersion": "actions.summerwind.dev/v1alpha1",
            "kind": "RunnerDeployment", "metadata": {"name": name, "namespace": "burst"},
            "spec": {"template": {"spec": {"organization": "octo", "labels": [name]}}}}));
    }
    MemoryStore::with_objects(objects).unwrap()
}

fn pool_job(i: usize, pools: usize) -> pb::WorkflowJob {
    pb::WorkflowJob {
        event_id: format!("delivery-{i}"),
        wait: true,
        ..queued_job(
            "octo/app",
            &["self-hosted", &format!("pool-{}", i % pools)],
            &i.to_string(),
        )
    }
}

async fn channel(server: &TestServer) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn pending_events(client: &mut pb::batch_scaler_client::BatchScalerClient<Channel>) -> u64 {
    client
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pending_events
}

#[tokio::test]
async fn ten_thousand_calls_wait_at_once_on_twenty_connections_with_the_default_limits() {
    const CALLS: usize = 10_000;
    const POOLS: usize = 4;
    // A connection holds at most --max-concurrent-streams (512) calls at once: a frontend
    // with more waiting deliveries uses ScaleJobs, or more connections, as here.
    const CONNECTIONS: usize = 20;
    // Default limits, a window long enough that every call is waiting before it closes.
    let settings = test_settings(Duration::from_secs(600));
    assert_eq!(
        settings.grpc.max_concurrent_streams,
        Settings::default().grpc.max_concurrent_streams
    );
    let (mut server, _store) = TestServer::with_store(store(POOLS), settings).await;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(pb::batch_scaler_client::BatchScalerClient::new(
            channel(&server).await,
        ));
    }
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let mut client = clients[i % CONNECTIONS].clone();
            tokio::spawn(async move { client.scale_job(pool_job(i, POOLS)).await })
        })
        .collect();
    let mut stats = server.client().await;
    eventually(Duration::from_secs(60), "every call to be waiting", || {
        let mut stats = stats.clone();
        async move { pending_events(&mut stats).await == CALLS as u64 }
    })
    .await;
    assert_eq!(pending_events(&mut stats).await, CALLS as u64);
    // Shutdown applies what is pending at once: one batch per HRA answers every call, and
    // every answer reaches its caller before the connection closes.
    server.shutdown().await.unwrap();
    let mut batches = HashSet::new();
    for call in calls {
        let result = call.await.unwrap().unwrap().into_inner();
        let batch = result.batch.expect("waited for its batch");
        assert_eq!(batch.outcome, APPLIED, "{batch:?}");
        batches.insert(batch.batch_id);
    }
    assert_eq!(batches.len(), POOLS, "one batch per HRA");
}

#[tokio::test]
async fn scale_jobs_answers_each_job_with_its_ids_in_completion_order() {
    let window = Duration::from_millis(400);
    let (server, store) = TestServer::with_store(store(2), test_settings(window)).await;
    let mut client = server.client().await;
    let (jobs, rx) = mpsc::channel(16);
    let mut answers = client
        .scale_jobs(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let invalid = pb::WorkflowJob {
        job_id: String::new(),
        event_id: "d-invalid".into(),
        ..pool_job(0, 2)
    };
    let unmatched = pb::WorkflowJob {
        labels: vec!["gpu".into()],
        event_id: "d-unmatched".into(),
        ..pool_job(1, 2)
    };
    let hurried = pb::WorkflowJob {
        wait_timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 50_000_000,
        }),
        ..pool_job(3, 2)
    };
    for job in [pool_job(2, 2), invalid, unmatched, hurried] {
        jobs.send(job).await.unwrap();
    }
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), answers.next())
            .await
            .expect("an answer in time")
            .expect("stream open")
            .expect("no stream error")
    };
    // Answered at once: the invalid job (its error is its answer) and the unmatched one.
    let a = next().await;
    assert_eq!(
        (a.code, a.event_id.as_str()),
        (Code::InvalidArgument as u32, "d-invalid")
    );
    assert!(a.message.contains("job_id"), "{}", a.message);
    let a = next().await;
    assert_eq!((a.code, a.event_id.as_str()), (0, "d-unmatched"));
    assert!(a.route.unwrap().target.is_none() && a.batch.is_none());
    // The hurried job's wait ends before the window: DEADLINE_EXCEEDED, still queued.
    let a = next().await;
    assert_eq!(
        (a.code, a.job_id.as_str(), a.event_id.as_str()),
        (Code::DeadlineExceeded as u32, "3", "delivery-3")
    );
    // Then the batch: the waiting job gets it.
    let a = next().await;
    assert_eq!((a.code, a.job_id.as_str()), (0, "2"));
    assert_eq!(a.batch.unwrap().outcome, APPLIED);
    let reserved = |name: &str| {
        let o = store.object(&key("burst", name)).unwrap();
        o["spec"]["capacityReservations"]
            .as_array()
            .map(|l| l.iter().map(|r| r["name"].to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(reserved("pool-0"), ["\"2\""]);
    eventually(
        Duration::from_secs(5),
        "the hurried job applied",
        || async { reserved("pool-1") == ["\"3\""] },
    )
    .await;
    // A redelivery on the same stream is a duplicate; closing our side ends the stream.
    jobs.send(pool_job(2, 2)).await.unwrap();
    let a = next().await;
    assert!(a.duplicate && a.code == 0, "{a:?}");
    drop(jobs);
    let end = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn scale_jobs_answers_waiting_jobs_on_shutdown_then_says_unavailable() {
    let (mut server, _store) =
        TestServer::with_store(store(1), test_settings(Duration::from_secs(600))).await;
    let mut client = server.client().await;
    let (jobs, rx) = mpsc::channel(16);
    let mut answers = client
        .scale_jobs(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for i in 0..3 {
        jobs.send(pool_job(i, 1)).await.unwrap();
    }
    let stats = server.client().await;
    eventually(Duration::from_secs(10), "three jobs pending", || {
        let mut stats = stats.clone();
        async move { pending_events(&mut stats).await == 3 }
    })
    .await;
    let stopping = tokio::spawn(async move { server.shutdown().await });
    let mut applied = 0;
    let end = loop {
        match answers.next().await {
            Some(Ok(a)) => {
                assert_eq!(a.batch.unwrap().outcome, APPLIED);
                applied += 1;
            }
            other => break other,
        }
    };
    assert_eq!(applied, 3);
    let status = end.expect("ends with a status").unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    drop(jobs);
    stopping.await.unwrap().unwrap();
}
