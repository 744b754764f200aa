//! Bounds on pending events: an HRA whose writes keep failing takes events only up to its
//! bound, then intake answers RESOURCE_EXHAUSTED naming the HRA and the bound, while other
//! HRAs go on; a refused event id is not remembered, so the producer's retry is applied.

mod common;

use batch_scaler::{api::pb, store::StoreError};
use common::*;
use std::time::Duration;
use tonic::Code;

const WINDOW: Duration = Duration::from_millis(100);

#[tokio::test]
async fn a_failing_hra_takes_events_up_to_its_bound_then_resource_exhausted() {
    let store = FaultyStore::with_objects([
        hra_object("ci", "stuck", None),
        hra_object("ci", "ok", None),
    ])
    .unwrap();
    store.fail_next_writes(
        &key("ci", "stuck"),
        10_000,
        StoreError::transient("503 down"),
    );
    let mut settings = test_settings(WINDOW);
    settings.engine.retry.deadline = Duration::from_secs(600);
    settings.engine.bounds.per_hra = 50;
    settings.engine.bounds.total = 80;
    let (server, _store) = TestServer::with_store(store, settings).await;

    let flood: Vec<pb::ScaleEvent> = (0..60).map(|_| ev("ci", "stuck", 1)).collect();
    let err = server.try_publish(flood).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().starts_with(
            "events[50]: HRA ci/stuck already holds 50 pending replicas (--max-pending-per-hra)"
        ),
        "{}",
        err.message()
    );
    assert!(
        err.message()
            .contains("the 50 events before it were accepted"),
        "{}",
        err.message()
    );
    // Retrying does not make room: the batch holding them is still being retried.
    let mut client = server.client().await;
    let again = client.scale(ev("ci", "stuck", 1)).await.unwrap_err();
    assert_eq!(again.code(), Code::ResourceExhausted);
    // Another HRA goes on, up to the total bound.
    server
        .publish((0..30).map(|_| ev("ci", "ok", 1)).collect())
        .await;
    let total = client.scale(ev("ci", "ok", 1)).await.unwrap_err();
    assert_eq!(total.code(), Code::ResourceExhausted);
    assert!(
        total.message().contains("80 replicas are pending in all"),
        "{}",
        total.message()
    );
    // Once the batch of `ok` is written, its events no longer count.
    eventually(Duration::from_secs(5), "room for more events", || {
        let mut client = client.clone();
        async move { client.scale(ev("ci", "ok", 1)).await.is_ok() }
    })
    .await;
    let metrics = scrape(server.http_addr).await;
    assert!(
        sample(
            &metrics,
            "batch_scaler_events_received_total{result=\"exhausted\"}"
        ) >= 3.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_refused_event_id_is_not_taken_for_a_duplicate_later() {
    let store = FaultyStore::with_objects([hra_object("ci", "a", None)]).unwrap();
    let mut settings = test_settings(WINDOW);
    settings.engine.bounds.per_hra = 1;
    let (server, _store) = TestServer::with_store(store, settings).await;
    let mut client = server.client().await;
    let mut watch = watch_all(&server).await;
    let first = pb::ScaleEvent {
        event_id: "d-1".into(),
        ..ev("ci", "a", 1)
    };
    let second = pb::ScaleEvent {
        event_id: "d-2".into(),
        ..ev("ci", "a", 1)
    };
    assert!(!client.scale(first).await.unwrap().into_inner().duplicate);
    let refused = client.scale(second.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    recv(&mut watch).await;
    eventually(Duration::from_secs(5), "the retry to be accepted", || {
        let (mut client, second) = (client.clone(), second.clone());
        async move {
            match client.scale(second).await {
                Ok(ack) => {
                    assert!(
                        !ack.into_inner().duplicate,
                        "a refused id is not remembered"
                    );
                    true
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted);
                    false
                }
            }
        }
    })
    .await;
    assert_eq!(recv(&mut watch).await.added, 1);
}
