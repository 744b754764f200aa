//! End to end over real gRPC on port 0, memory backend.

mod common;

use batch_scaler::api::pb;
use common::*;
use prost_types::Duration as PbDuration;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;

const WINDOW: Duration = Duration::from_millis(300);

/// An event whose reservations live `secs` seconds (0: the default).
fn ev_for(namespace: &str, name: &str, amount: i32, secs: i64) -> pb::ScaleEvent {
    pb::ScaleEvent {
        duration: (secs > 0).then_some(PbDuration {
            seconds: secs,
            nanos: 0,
        }),
        ..ev(namespace, name, amount)
    }
}

fn two_hras() -> FaultyStore {
    FaultyStore::with_objects([hra_object("ci", "a", None), hra_object("ci", "b", Some(4))])
        .unwrap()
}

async fn target(server: &TestServer, name: &str) -> pb::Target {
    let req = pb::TargetRef {
        namespace: "ci".into(),
        name: name.into(),
    };
    server
        .client()
        .await
        .get_target(req)
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn published_events_become_one_batch_per_hra_with_the_right_counters() {
    let (server, _store) = TestServer::with_store(two_hras(), test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    let events = vec![
        ev_for("ci", "a", 1, 60),
        ev("ci", "b", 1),
        ev_for("ci", "a", 1, 60),
        ev("ci", "b", -1),
        ev("ci", "a", -1),
    ];
    let summary = server.try_publish(events).await.unwrap();
    assert_eq!((summary.accepted, summary.duplicates), (5, 0));
    let mut results = [recv(&mut watch).await, recv(&mut watch).await];
    results.sort_by(|x, y| x.name.cmp(&y.name));
    let (a, b) = (&results[0], &results[1]);
    assert_eq!(a.outcome, pb::Outcome::Applied as i32);
    assert_eq!(
        (a.events, a.before, a.expired, a.added, a.completed, a.after),
        (3, 0, 0, 2, 1, 1)
    );
    assert_eq!((b.events, b.added, b.completed, b.after), (2, 1, 1, 0));
    assert_eq!((a.attempt, a.error.as_str(), a.missed), (1, "", 0));
    assert!(!a.batch_id.is_empty() && a.batch_id != b.batch_id);
    assert!(a.at.is_some());

    let t = target(&server, "a").await;
    assert_eq!(t.capacity_reservations.len(), 1);
    assert_eq!(t.reserved_replicas, 1);
    let r = &t.capacity_reservations[0];
    let life = r.expiration_time.unwrap().seconds - r.effective_time.unwrap().seconds;
    assert_eq!((life, r.replicas), (60, 1));
    assert_eq!((t.min_replicas, t.max_replicas), (Some(1), None));
    assert_eq!(target(&server, "b").await.max_replicas, Some(4));

    // The next window is a new batch.
    server.try_publish(vec![ev("ci", "a", 2)]).await.unwrap();
    let next = recv(&mut watch).await;
    assert_eq!((next.name.as_str(), next.before, next.after), ("a", 1, 3));
    // An event without a duration gets the HRA trigger's (30m here).
    let t = target(&server, "a").await;
    let r = t.capacity_reservations.last().unwrap();
    assert_eq!(
        r.expiration_time.unwrap().seconds - r.effective_time.unwrap().seconds,
        1800
    );
}

/// A frontend keeps one `Publish` stream open for good: what it sends is counted as it
/// arrives, not when the stream ends.
#[tokio::test]
async fn an_open_publish_stream_is_counted_as_its_events_arrive() {
    let (server, _store) = TestServer::with_store(two_hras(), test_settings(WINDOW)).await;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut client = server.client().await;
    let stream = tokio::spawn(async move {
        client
            .publish(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    for _ in 0..3 {
        tx.send(ev("ci", "a", 1)).await.unwrap();
    }
    wait_accepted(server.http_addr, 3).await;
    assert!(!stream.is_finished(), "the stream is still open");
    drop(tx);
    let summary = stream.await.unwrap().unwrap().into_inner();
    assert_eq!(summary.accepted, 3);
    let text = scrape(server.http_addr).await;
    assert_eq!(
        sample(
            &text,
            "batch_scaler_events_received_total{result=\"accepted\"}"
        ),
        3.0,
        "counted once"
    );
}

#[tokio::test]
async fn reservation_life_is_the_event_s_then_the_trigger_s_then_the_default() {
    let mut no_trigger = hra_object("ci", "plain", None);
    no_trigger["spec"]
        .as_object_mut()
        .unwrap()
        .remove("scaleUpTriggers");
    let store = two_hras();
    store.insert(no_trigger).unwrap();
    let (server, store) = TestServer::with_store(store, test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    let life = |t: &pb::Target| {
        let r = t.capacity_reservations.last().unwrap();
        r.expiration_time.unwrap().seconds - r.effective_time.unwrap().seconds
    };
    server
        .try_publish(vec![ev("ci", "plain", 1), ev_for("ci", "b", 1, 90)])
        .await
        .unwrap();
    recv(&mut watch).await;
    recv(&mut watch).await;
    assert_eq!(life(&target(&server, "plain").await), 600, "the default");
    assert_eq!(life(&target(&server, "b").await), 90, "the event's own");
    assert_eq!(
        target(&server, "b").await.trigger_duration.unwrap().seconds,
        1800
    );
    assert_eq!(target(&server, "plain").await.trigger_duration, None);
    // An edit of the trigger applies from the next batch on.
    store
        .inner()
        .modify(&key("ci", "b"), |o| {
            o["spec"]["scaleUpTriggers"][0]["duration"] = "45m".into()
        })
        .unwrap();
    server.try_publish(vec![ev("ci", "b", 1)]).await.unwrap();
    recv(&mut watch).await;
    assert_eq!(
        life(&target(&server, "b").await),
        45 * 60,
        "the trigger's, as edited"
    );
}

#[tokio::test]
async fn scale_queues_one_event_and_targets_can_be_listed() {
    let store = two_hras();
    store.insert(hra_object("other", "z", None)).unwrap();
    let (server, _store) = TestServer::with_store(store, test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    let mut client = server.client().await;
    let ack = client
        .scale(ev_for("ci", "b", 3, 30))
        .await
        .unwrap()
        .into_inner();
    assert!(!ack.duplicate);
    let r = recv(&mut watch).await;
    assert_eq!((r.name.as_str(), r.added, r.after), ("b", 3, 3));
    assert_eq!(target(&server, "b").await.reserved_replicas, 3);

    let all = client
        .list_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = all
        .targets
        .iter()
        .map(|t| format!("{}/{}", t.namespace, t.name))
        .collect();
    assert_eq!(names, ["ci/a", "ci/b", "other/z"]);
    assert_eq!(all.targets[1].reserved_replicas, 3);
    assert!(!all.targets[1].resource_version.is_empty());
    let ci = pb::ListTargetsRequest {
        namespace: "ci".into(),
    };
    assert_eq!(
        client
            .list_targets(ci)
            .await
            .unwrap()
            .into_inner()
            .targets
            .len(),
        2
    );
}

#[tokio::test]
async fn a_conflict_between_read_and_write_is_re_planned() {
    let (server, store) = TestServer::with_store(two_hras(), test_settings(WINDOW)).await;
    let k = key("ci", "a");
    store.edit_after_next_read(&k, Box::new(|l| l.push(reservation("other-writer", 300))));
    let mut watch = watch_all(&server).await;
    server
        .try_publish(vec![ev_for("ci", "a", 1, 60)])
        .await
        .unwrap();
    let r = recv(&mut watch).await;
    assert_eq!((r.outcome, r.attempt), (pb::Outcome::Applied as i32, 1));
    assert_eq!(
        (r.before, r.added, r.after),
        (1, 1, 2),
        "counters of the re-plan"
    );
    let names: Vec<_> = target(&server, "a")
        .await
        .capacity_reservations
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["other-writer", ""]);
}

#[tokio::test]
async fn a_missing_hra_fails_once_while_others_go_on() {
    let (server, _store) = TestServer::with_store(two_hras(), test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    server
        .try_publish(vec![ev("ci", "ghost", 1), ev("ci", "a", 1)])
        .await
        .unwrap();
    let mut got = [recv(&mut watch).await, recv(&mut watch).await];
    got.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(got[0].outcome, pb::Outcome::Applied as i32);
    assert_eq!(got[1].outcome, pb::Outcome::Failed as i32);
    assert!(got[1].error.contains("not found"), "{}", got[1].error);
    // Later windows go on for the good HRA and never retry the missing one.
    server.try_publish(vec![ev("ci", "a", 1)]).await.unwrap();
    let r = recv(&mut watch).await;
    assert_eq!(
        (r.name.as_str(), r.outcome),
        ("a", pb::Outcome::Applied as i32)
    );
    let extra = tokio::time::timeout(WINDOW * 3, watch.next()).await;
    assert!(extra.is_err(), "no further result: {extra:?}");
}

#[tokio::test]
async fn a_watcher_that_never_reads_does_not_hold_up_others() {
    let names: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let store = FaultyStore::with_objects(names.iter().map(|n| hra_object("ci", n, None))).unwrap();
    let mut settings = test_settings(Duration::from_millis(50));
    settings.engine.watcher_buffer = 64;
    let (server, _store) = TestServer::with_store(store, settings).await;
    // A stuck dashboard: a tiny HTTP/2 window and nobody reading.
    let stuck_channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let mut stuck_client = pb::batch_scaler_client::BatchScalerClient::new(stuck_channel);
    let mut stuck = stuck_client
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut watch = watch_all(&server).await;

    let rounds = 5;
    for _ in 0..rounds {
        let events = names.iter().map(|n| ev("ci", n, 1)).collect();
        server.try_publish(events).await.unwrap();
        for _ in 0..names.len() {
            let r = recv(&mut watch).await;
            assert_eq!(r.outcome, pb::Outcome::Applied as i32);
            assert_eq!(r.missed, 0, "the reading watcher loses nothing");
        }
    }
    // The stuck watcher got what fitted and is told how many it missed.
    let mut received = 0u64;
    let mut missed = 0u64;
    while let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_millis(300), stuck.next()).await
    {
        received += 1;
        missed += r.missed;
    }
    assert!(missed > 0, "received {received}, missed {missed}");
    assert_eq!(received + missed, rounds * names.len() as u64);
}

#[tokio::test]
async fn shutdown_mid_window_applies_what_was_accepted_and_ends_watch_streams() {
    let (mut server, store) =
        TestServer::with_store(two_hras(), test_settings(Duration::from_secs(3600))).await;
    let mut watch = watch_all(&server).await;
    server
        .try_publish(vec![ev("ci", "a", 2), ev("ci", "b", 1)])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let a = store.object(&key("ci", "a")).unwrap();
    assert_eq!(
        a["spec"]["capacityReservations"].as_array().unwrap().len(),
        2
    );
    let outcomes = [
        recv(&mut watch).await.outcome,
        recv(&mut watch).await.outcome,
    ];
    assert_eq!(outcomes, [pb::Outcome::Applied as i32; 2]);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(
        end.is_none() || end.unwrap().is_err(),
        "the watch stream ended"
    );
}

#[tokio::test]
async fn invalid_events_name_the_field_and_earlier_ones_stay_accepted() {
    let (server, _store) = TestServer::with_store(two_hras(), test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    let events = vec![
        ev("ci", "a", 1),
        ev("ci", "b", 1),
        ev("ci", "Bad_Name", 1),
        ev("ci", "a", 1),
    ];
    let err = server.try_publish(events).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("events[2].name: must be a DNS-1123 subdomain"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("2 events before it were accepted"),
        "{}",
        err.message()
    );
    let mut applied = [recv(&mut watch).await, recv(&mut watch).await];
    applied.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        (applied[0].name.as_str(), applied[0].events),
        ("a", 1),
        "event 3 was not taken"
    );
    assert_eq!(applied[1].name, "b");

    let mut client = server.client().await;
    let cases = [
        (ev_for("", "a", 1, 0), "namespace"),
        (ev("ci", "a", 1001), "amount"),
        (ev_for("ci", "a", 1, 8 * 24 * 3600), "duration"),
        (
            pb::ScaleEvent {
                duration: Some(PbDuration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..ev("ci", "a", 1)
            },
            "duration",
        ),
    ];
    for (event, field) in cases {
        let err = client.scale(event).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{}",
            err.message()
        );
    }
    let missing = pb::TargetRef {
        namespace: "ci".into(),
        name: "nope".into(),
    };
    assert_eq!(
        client.get_target(missing).await.unwrap_err().code(),
        Code::NotFound
    );
    let bad = pb::TargetRef {
        namespace: "CI".into(),
        name: "a".into(),
    };
    assert_eq!(
        client.get_target(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn watch_filters_and_replays_recent_results() {
    let (server, _store) = TestServer::with_store(two_hras(), test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    for amount in [1, 2] {
        server
            .try_publish(vec![ev("ci", "a", amount), ev("ci", "b", 1)])
            .await
            .unwrap();
        recv(&mut watch).await;
        recv(&mut watch).await;
    }
    let mut client = server.client().await;
    let req = pb::WatchBatchesRequest {
        namespace: "ci".into(),
        name: "a".into(),
        replay: 5,
    };
    let mut only_a = client.watch_batches(req).await.unwrap().into_inner();
    let first = recv(&mut only_a).await;
    let second = recv(&mut only_a).await;
    assert_eq!((first.name.as_str(), first.added), ("a", 1));
    assert_eq!((second.name.as_str(), second.added), ("a", 2));
    server
        .try_publish(vec![ev("ci", "b", 1), ev("ci", "a", 3)])
        .await
        .unwrap();
    let live = recv(&mut only_a).await;
    assert_eq!((live.name.as_str(), live.added), ("a", 3));
    let other_ns = pb::WatchBatchesRequest {
        namespace: "prod".into(),
        name: String::new(),
        replay: 10,
    };
    let mut none = client.watch_batches(other_ns).await.unwrap().into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), none.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn get_stats_counts_events_and_outcomes_and_reports_pending_work() {
    let store = two_hras();
    let k = key("ci", "b");
    store.fail_next_writes(&k, 1, batch_scaler::store::StoreError::transient("503"));
    let (server, _store) = TestServer::with_store(store, test_settings(WINDOW)).await;
    let mut client = server.client().await;
    let mut watch = watch_all(&server).await;
    let empty = client
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((empty.events_accepted, empty.batches_applied), (0, 0));
    assert!(empty.started.is_some() && empty.at.is_some());

    server
        .publish(vec![ev("ci", "a", 1), ev("ci", "a", 1), ev("ci", "b", 1)])
        .await;
    let pending = client
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((pending.pending_hras, pending.pending_events), (2, 3));
    let _ = client.scale(ev("ci", "x", 0)).await;
    let bad = client
        .scale(pb::ScaleEvent {
            namespace: "Bad_NS".into(),
            ..ev("ci", "a", 1)
        })
        .await;
    assert!(bad.is_err());
    // a applied, b retrying then applied, x failed (not found).
    let mut outcomes = Vec::new();
    while outcomes.len() < 4 {
        outcomes.push(recv(&mut watch).await.outcome);
    }
    let s = client
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.events_accepted, s.events_rejected, s.batches_applied),
        (4, 1, 2)
    );
    assert_eq!((s.batches_retrying, s.batches_failed, s.retries), (1, 1, 1));
    assert_eq!(
        (s.pending_hras, s.pending_events, s.applies_in_flight),
        (0, 0, 0)
    );
    let p50 = s.apply_latency_p50.unwrap();
    assert!(
        p50.seconds > 0 || p50.nanos as u128 >= WINDOW.as_nanos() / 2,
        "{p50:?}"
    );
}

/// Overviews show each HRA's last batch from the service, however many batches of other
/// HRAs came since: a failing HRA stays visible, with its reason.
#[tokio::test]
async fn targets_carry_each_hra_s_last_batch() {
    let (server, store) =
        TestServer::with_store(two_hras(), test_settings(Duration::from_millis(5))).await;
    let b = key("ci", "b");
    store.fail_next_writes(
        &b,
        1,
        batch_scaler::store::StoreError::invalid("admission webhook denied the request"),
    );
    let mut client = server.client().await;
    let failed = client.scale_and_wait(ev("ci", "b", 1)).await.unwrap();
    let failed = failed.into_inner().batch.unwrap();
    assert_eq!(failed.outcome, pb::Outcome::Failed as i32);
    let mut last_a = String::new();
    for _ in 0..40 {
        let r = client.scale_and_wait(ev("ci", "a", 1)).await.unwrap();
        last_a = r.into_inner().batch.unwrap().batch_id;
    }
    let list = client
        .list_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let last = |name: &str| {
        list.targets
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.last_batch.clone())
            .unwrap()
    };
    assert_eq!(last("a").batch_id, last_a);
    let b_last = last("b");
    assert_eq!(b_last.outcome, pb::Outcome::Failed as i32);
    assert!(
        b_last.error.contains("admission webhook"),
        "{}",
        b_last.error
    );
    let one = target(&server, "b").await;
    assert_eq!(one.last_batch.unwrap().batch_id, failed.batch_id);
}
