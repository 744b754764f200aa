//! Beyond the reference, over real gRPC: job-matched completions, event_id dedupe,
//! ScaleAndWait, dry-run.

mod common;

use batch_scaler::{api::pb, config::Settings};
use common::*;
use std::time::Duration;
use tonic::{Code, Request, Streaming};

const WINDOW: Duration = Duration::from_millis(150);
const APPLIED: i32 = pb::Outcome::Applied as i32;

fn job(amount: i32, job_id: &str) -> pb::ScaleEvent {
    pb::ScaleEvent {
        namespace: "ci".into(),
        name: "a".into(),
        amount,
        job_id: job_id.into(),
        ..Default::default()
    }
}

fn delivery(amount: i32, event_id: &str) -> pb::ScaleEvent {
    pb::ScaleEvent {
        event_id: event_id.into(),
        ..job(amount, "")
    }
}

async fn start(
    settings: Settings,
) -> (
    TestServer,
    std::sync::Arc<FaultyStore>,
    Streaming<pb::BatchResult>,
) {
    let store = FaultyStore::with_objects([hra_object("ci", "a", None)]).unwrap();
    let (server, store) = TestServer::with_store(store, settings).await;
    let watch = server
        .client()
        .await
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    (server, store, watch)
}

fn names(store: &FaultyStore) -> Vec<String> {
    let o = store.object(&key("ci", "a")).unwrap();
    o["spec"]["capacityReservations"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|r| r["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn stale_completions_do_not_steal_a_queued_jobs_runner() {
    let (server, store, mut watch) = start(test_settings(WINDOW)).await;
    server.try_publish(vec![job(1, "J1")]).await.unwrap();
    recv(&mut watch).await;
    server
        .try_publish(
            ["J0a", "J0b", "J0c", "J0d", "J0e"]
                .map(|j| job(-1, j))
                .to_vec(),
        )
        .await
        .unwrap();
    let r = recv(&mut watch).await;
    assert_eq!((r.events, r.added, r.completed, r.after), (5, 0, 0, 1));
    assert_eq!(names(&store), ["J1"]);
    // The same without job ids is the reference's behaviour (#4315): the runner is gone.
    server.try_publish(vec![job(1, "")]).await.unwrap();
    recv(&mut watch).await;
    server
        .try_publish((0..5).map(|_| job(-1, "")).collect())
        .await
        .unwrap();
    let r = recv(&mut watch).await;
    assert_eq!((r.completed, r.after), (5, 0));
}

#[tokio::test]
async fn completions_pair_with_their_jobs_across_windows() {
    let (server, store, mut watch) = start(test_settings(WINDOW)).await;
    // Completed before its queued event arrives: the late +1 adds nothing.
    server.try_publish(vec![job(-1, "early")]).await.unwrap();
    assert_eq!(recv(&mut watch).await.completed, 0);
    server.try_publish(vec![job(1, "early")]).await.unwrap();
    assert_eq!(recv(&mut watch).await.added, 0);
    assert!(names(&store).is_empty());
    // A redelivered queued event is not a second runner.
    server.try_publish(vec![job(1, "J")]).await.unwrap();
    recv(&mut watch).await;
    server.try_publish(vec![job(1, "J")]).await.unwrap();
    assert_eq!(recv(&mut watch).await.added, 0);
    assert_eq!(names(&store), ["J"]);
    // A completion takes its own reservation from the middle of the list.
    server
        .try_publish(vec![job(1, "K"), job(1, "L")])
        .await
        .unwrap();
    recv(&mut watch).await;
    server.try_publish(vec![job(-1, "K")]).await.unwrap();
    let r = recv(&mut watch).await;
    assert_eq!((r.completed, r.after), (1, 2));
    assert_eq!(names(&store), ["J", "L"]);
    // Job ids need amount ±1.
    let err = server
        .client()
        .await
        .scale(pb::ScaleEvent {
            amount: 2,
            ..job(0, "M")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("amount: must be 1 or -1"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn the_same_event_id_is_applied_once_until_its_ttl_after_its_batch_passes() {
    let ttl = Duration::from_millis(1500);
    let settings = {
        let mut s = test_settings(WINDOW);
        s.engine.idempotency.dedupe_ttl = ttl;
        s
    };
    let (server, store, mut watch) = start(settings).await;
    let mut client = server.client().await;
    // Twice in one stream.
    let summary = server
        .try_publish(vec![
            delivery(1, "d1"),
            delivery(1, "d1"),
            delivery(1, "d2"),
        ])
        .await
        .unwrap();
    assert_eq!((summary.accepted, summary.duplicates), (2, 1));
    assert_eq!(recv(&mut watch).await.events, 2);
    // The TTL runs from the batch's outcome, settled just after it was published.
    let remembered_by = tokio::time::Instant::now() + Duration::from_millis(100);
    // Again in another stream, and in a later window.
    let summary = server.try_publish(vec![delivery(1, "d2")]).await.unwrap();
    assert_eq!((summary.accepted, summary.duplicates), (0, 1));
    assert!(
        client
            .scale(delivery(1, "d1"))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    let wait = client
        .scale_and_wait(delivery(1, "d1"))
        .await
        .unwrap()
        .into_inner();
    assert!(wait.duplicate && wait.batch.is_none());
    assert_eq!(names(&store).len(), 2);
    // After the TTL the id is new again. (Polling would count dedupe hits: wait for the
    // instant the TTL has surely passed instead.)
    tokio::time::sleep_until(remembered_by + ttl).await;
    assert!(
        !client
            .scale(delivery(1, "d1"))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    assert_eq!(recv(&mut watch).await.added, 1);
    assert_eq!(names(&store).len(), 3);
    let (code, metrics) = http_get(server.http_addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("batch_scaler_dedupe_hits_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("batch_scaler_events_received_total{result=\"duplicate\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_batch_forgets_its_event_ids_so_a_retry_applies() {
    let store = FaultyStore::default();
    let (server, store) = TestServer::with_store(store, test_settings(WINDOW)).await;
    let mut client = server.client().await;
    let r = client
        .scale_and_wait(delivery(1, "d-404"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::Failed as i32);
    store.insert(hra_object("ci", "a", None)).unwrap();
    let r = client
        .scale_and_wait(delivery(1, "d-404"))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.duplicate);
    assert_eq!(r.batch.unwrap().outcome, APPLIED);
}

/// A producer that timed out and retries with the same delivery id is answered only once
/// the original event is applied: `duplicate: true` always means "in the HRA".
#[tokio::test]
async fn a_repeated_scale_and_wait_while_the_original_is_pending_waits_for_it() {
    let (server, store, mut watch) = start(test_settings(Duration::from_millis(800))).await;
    let mut client = server.client().await;
    let mut first = Request::new(pb::ScaleEvent {
        event_id: "d-slow".into(),
        ..job(1, "J")
    });
    first.set_timeout(Duration::from_millis(200));
    let err = client.scale_and_wait(first).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    let retry = pb::ScaleEvent {
        event_id: "d-slow".into(),
        ..job(1, "J")
    };
    let r = client
        .scale_and_wait(retry.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(r.duplicate && r.batch.is_none(), "{r:?}");
    assert_eq!(
        names(&store),
        ["J"],
        "applied when the duplicate is answered"
    );
    assert_eq!(recv(&mut watch).await.outcome, APPLIED);
    // Once applied, a repeat is answered at once.
    let started = std::time::Instant::now();
    let r = client.scale_and_wait(retry).await.unwrap().into_inner();
    assert!(r.duplicate);
    assert!(started.elapsed() < Duration::from_millis(800));

    // A repeat of an event whose batch then fails hears of the failure.
    let missing = pb::ScaleEvent {
        name: "nope".into(),
        event_id: "d-missing".into(),
        ..job(1, "X")
    };
    client.scale(missing.clone()).await.unwrap();
    let r = client.scale_and_wait(missing).await.unwrap().into_inner();
    assert!(!r.duplicate);
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::Failed as i32);
}

#[tokio::test]
async fn scale_and_wait_answers_with_the_final_outcome() {
    let (server, store, _watch) = start(test_settings(WINDOW)).await;
    let mut client = server.client().await;
    let started = std::time::Instant::now();
    let r = client
        .scale_and_wait(job(1, "J"))
        .await
        .unwrap()
        .into_inner();
    assert!(started.elapsed() >= WINDOW);
    let batch = r.batch.unwrap();
    assert_eq!((batch.outcome, batch.added, batch.events), (APPLIED, 1, 1));
    assert_eq!(
        names(&store),
        ["J"],
        "visible in the store when the answer comes"
    );
    let missing = pb::ScaleEvent {
        name: "nope".into(),
        ..job(1, "X")
    };
    let r = client.scale_and_wait(missing).await.unwrap().into_inner();
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::Failed as i32);
}

#[tokio::test]
async fn scale_and_wait_past_its_deadline_is_deadline_exceeded_and_still_applied() {
    let (server, store, mut watch) = start(test_settings(Duration::from_millis(800))).await;
    let mut client = server.client().await;
    let mut req = Request::new(job(1, "slow"));
    req.set_timeout(Duration::from_millis(300));
    let err = client.scale_and_wait(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("will be applied"));
    assert_eq!(recv(&mut watch).await.outcome, APPLIED);
    assert_eq!(names(&store), ["slow"]);
}

#[tokio::test]
async fn shutdown_answers_waiting_calls_with_their_outcome() {
    let (mut server, store, _watch) = start(test_settings(Duration::from_secs(3600))).await;
    let mut client = server.client().await;
    let waiting = tokio::spawn(async move { client.scale_and_wait(job(1, "J")).await });
    wait_accepted(server.http_addr, 1).await;
    server.shutdown().await.unwrap();
    let r = waiting.await.unwrap().unwrap().into_inner();
    assert_eq!(r.batch.unwrap().outcome, APPLIED);
    assert_eq!(names(&store), ["J"]);
}

#[tokio::test]
async fn dry_run_reports_what_a_real_run_would_do_and_changes_nothing() {
    let (server, store, mut watch) = start({
        let mut s = test_settings(WINDOW);
        s.engine.dry_run = true;
        s
    })
    .await;
    let before = store.object(&key("ci", "a")).unwrap();
    server
        .try_publish(vec![job(1, "J"), job(1, "K"), job(-1, "J")])
        .await
        .unwrap();
    let r = recv(&mut watch).await;
    assert_eq!(r.outcome, pb::Outcome::DryRun as i32);
    assert_eq!((r.added, r.completed, r.after), (2, 1, 1));
    assert_eq!(store.object(&key("ci", "a")).unwrap(), before);
    let r = server
        .client()
        .await
        .scale_and_wait(job(1, "L"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.batch.unwrap().outcome, pb::Outcome::DryRun as i32);
}
