//! Scale-out over real HTTP: three replicas share the HRAs out by member Leases and forward
//! events to each HRA's owner, so a window costs one write per dirty HRA however the events
//! are spread, and a delivery id sent to two replicas is applied once. On the test API
//! server, or an existing cluster with `USE_EXISTING_CLUSTER=true`.

mod common;

use batch_scaler::{api::pb, config::Settings};
use batch_scaler_testkit::{
    cluster::TestCluster,
    h2_raw,
    members::{await_members, member},
};
use common::*;
use prost::Message;
use std::time::Duration;

const WINDOW: Duration = Duration::from_millis(300);

async fn replicas(c: &TestCluster, n: usize) -> Vec<TestServer> {
    let all = replicas_with(c, n, test_settings(WINDOW)).await;
    await_members(&all, n).await;
    all
}

/// `n` members with `settings` (not waited for).
async fn replicas_with(c: &TestCluster, n: usize, settings: Settings) -> Vec<TestServer> {
    let mut all = Vec::new();
    for i in 0..n {
        all.push(member(c, &format!("r{i}"), settings.clone()).await);
    }
    all
}

/// HRAs `h0`…`h{n-1}`.
async fn hras(c: &TestCluster, n: usize) {
    for i in 0..n {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_three_replicas_write_each_dirty_hra_once_per_window() {
    const HRAS: usize = 30;
    const WINDOWS: usize = 4;
    let c = TestCluster::start().await;
    for i in 0..HRAS {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
    }
    let all = replicas(&c, 3).await;
    let mut clients = Vec::new();
    for r in &all {
        clients.push(r.client().await);
    }
    // Every replica owns a share, and the shares add up.
    let mut owned = 0;
    for client in &mut clients {
        owned += client
            .get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner()
            .owned_hras;
    }
    assert_eq!(owned as usize, HRAS);
    if let Some(api) = c.fake() {
        api.reset_counts();
    }
    for window in 1..=WINDOWS {
        // Three events per HRA, each to another replica, as a Service spreads connections.
        let mut sends = Vec::new();
        for i in 0..HRAS {
            for (r, client) in clients.iter().enumerate() {
                let mut client = client.clone();
                let event = ev(&c.namespace, &format!("h{i}"), 1);
                let _ = r;
                sends.push(tokio::spawn(async move {
                    client.scale(event).await.unwrap();
                }));
            }
        }
        for send in sends {
            send.await.unwrap();
        }
        eventually(
            Duration::from_secs(20),
            "the window applied everywhere",
            || async {
                let mut done = true;
                for i in 0..HRAS {
                    done &= c.reservations(&format!("h{i}")).await == 3 * window;
                }
                done
            },
        )
        .await;
    }
    if let Some(api) = c.fake() {
        let (patches, conflicts) = (api.count("patch"), api.count("conflict"));
        let per_window = patches as f64 / (HRAS * WINDOWS) as f64;
        eprintln!(
            "scale-out: 3 replicas, {HRAS} HRAs, {WINDOWS} windows: {patches} writes ({per_window:.2} per dirty HRA-window), {conflicts} conflicts"
        );
        assert!(
            per_window <= 1.10,
            "{per_window:.2} writes per dirty HRA-window"
        );
        assert!(
            conflicts as f64 <= 0.01 * patches as f64,
            "{conflicts} conflicts in {patches} writes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_one_delivery_sent_to_two_replicas_is_applied_once() {
    let c = TestCluster::start().await;
    c.create(hra_object(&c.namespace, "a", None)).await;
    let all = replicas(&c, 3).await;
    let (mut first, mut second) = (all[0].client().await, all[1].client().await);
    // Job-less: only the event id can tell the two apart.
    let delivery = pb::ScaleEvent {
        event_id: "d-7b5c".into(),
        ..ev(&c.namespace, "a", 1)
    };
    let (a, b) = tokio::join!(
        first.scale_and_wait(delivery.clone()),
        second.scale_and_wait(delivery)
    );
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(c.reservations("a").await, 1, "{a:?} {b:?}");
    assert!(a.duplicate || b.duplicate, "one of them is the duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_stopped_owner_hands_its_hras_over_and_nothing_is_lost() {
    const HRAS: usize = 12;
    const ROUNDS: usize = 5;
    let c = TestCluster::start().await;
    for i in 0..HRAS {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
    }
    let mut all = replicas(&c, 3).await;
    let mut survivor = all[0].client().await;
    // A rolling update: one replica stops (its Lease expired on the way out) while events
    // keep coming to another, which forwarded a third of them to it.
    let mut leaving = all.remove(2);
    let namespace = c.namespace.clone();
    let sender = tokio::spawn(async move {
        for _ in 0..ROUNDS {
            for i in 0..HRAS {
                let answer = survivor
                    .scale_and_wait(ev(&namespace, &format!("h{i}"), 1))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(
                    answer.batch.map(|b| b.outcome),
                    Some(pb::Outcome::Applied as i32)
                );
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Calls on a connection to the leaving replica, opened before it stops, while it stops:
    // none is refused (it hands them to the others).
    let mut on_leaving = leaving.client().await;
    let late = {
        let namespace = c.namespace.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..HRAS {
                answers.push(on_leaving.scale(ev(&namespace, &format!("h{i}"), 1)).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    leaving.shutdown().await.unwrap();
    let late = late.await.unwrap();
    let delivered = late.iter().filter(|a| a.is_ok()).count();
    for answer in &late {
        if let Err(e) = answer {
            // Only the connection going away (a producer retries elsewhere), never a refusal.
            assert!(!e.message().contains("shutting down"), "{e:?}");
        }
    }
    assert!(delivered > 0, "{late:?}");
    tokio::time::timeout(Duration::from_secs(60), sender)
        .await
        .expect("every event answered")
        .unwrap();
    let mut total = 0;
    for i in 0..HRAS {
        total += c.reservations(&format!("h{i}")).await;
    }
    assert_eq!(total, ROUNDS * HRAS + delivered);
    // The others own everything now.
    let mut stats = all[1].client().await;
    eventually(Duration::from_secs(10), "two members left", || {
        let mut stats = stats.clone();
        async move {
            stats
                .get_stats(pb::GetStatsRequest {})
                .await
                .is_ok_and(|s| s.into_inner().members == 2)
        }
    })
    .await;
    let owned = stats
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .owned_hras
        + all[0]
            .client()
            .await
            .get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner()
            .owned_hras;
    assert_eq!(owned as usize, HRAS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_publish_to_one_replica_reaches_every_owner_in_order() {
    const HRAS: usize = 9;
    let c = TestCluster::start().await;
    for i in 0..HRAS {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
    }
    let all = replicas(&c, 3).await;
    // Per HRA: +3, -1, +2 in that order (the order decides nothing here, but it must hold:
    // -1 before the +3 would leave 5).
    let mut events = Vec::new();
    for amount in [3, -1, 2] {
        for i in 0..HRAS {
            events.push(ev(&c.namespace, &format!("h{i}"), amount));
        }
    }
    let n = events.len() as u64;
    let summary = all[0].try_publish(events).await.unwrap();
    assert_eq!((summary.accepted, summary.duplicates), (n, 0));
    eventually(Duration::from_secs(20), "every HRA written", || async {
        let mut done = true;
        for i in 0..HRAS {
            done &= c.reservations(&format!("h{i}")).await == 4;
        }
        done
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_producers_at_full_speed_never_cut_a_peer_link() {
    // Producers as gRPC C-core writes them (each event its own small DATA frame), at full
    // speed into one replica, which forwards two thirds of it to the owners over its links.
    const HRAS: usize = 30;
    const PRODUCERS: usize = 4;
    const STREAMS: usize = 2;
    const EVENTS: usize = 2500;
    let c = TestCluster::start().await;
    hras(&c, HRAS).await;
    let mut settings = test_settings(WINDOW);
    settings.engine.bounds = Default::default();
    let all = replicas_with(&c, 3, settings).await;
    await_members(&all, 3).await;
    let target = all[0].addr;
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let namespace = c.namespace.clone();
        producers.push(tokio::spawn(async move {
            let (send, _conn) = h2_raw::connect(target).await;
            let mut accepted = 0;
            for s in 0..STREAMS {
                let mut send = send.clone().ready().await.unwrap();
                let (answer, mut stream) = send
                    .send_request(h2_raw::grpc_call(target, "Publish"), false)
                    .unwrap();
                for i in 0..EVENTS {
                    let event = pb::ScaleEvent {
                        event_id: format!("p{p}-s{s}-e{i}"),
                        ..ev(&namespace, &format!("h{}", i % HRAS), 1)
                    };
                    let sent = h2_raw::send_frame(
                        &mut stream,
                        h2_raw::framed(&event),
                        Duration::from_secs(20),
                    )
                    .await;
                    assert!(
                        matches!(sent, Ok(true)),
                        "producer {p} stream {s}: {sent:?}"
                    );
                }
                stream.send_data(bytes::Bytes::new(), true).unwrap();
                let (body, trailers) = h2_raw::read_answer(answer.await.unwrap()).await;
                assert_eq!(trailers["grpc-status"], "0", "{trailers:?}");
                accepted += pb::PublishSummary::decode(&body[5..]).unwrap().accepted;
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for p in producers {
        accepted += p.await.unwrap();
    }
    assert_eq!(accepted as usize, PRODUCERS * STREAMS * EVENTS);
    let metrics = scrape(all[0].http_addr).await;
    let forwarded = |result: &str| {
        sample(
            &metrics,
            &format!("batch_scaler_forwarded_events_total{{result=\"{result}\"}}"),
        )
    };
    eprintln!(
        "peer links under full-speed producers: {} forwarded, {} applied here for an unreachable owner, {} unknown",
        forwarded("forwarded"),
        forwarded("local"),
        forwarded("unknown")
    );
    assert!(forwarded("forwarded") > 0.0);
    assert_eq!((forwarded("local"), forwarded("unknown")), (0.0, 0.0));
    for replica in &all {
        let metrics = scrape(replica.http_addr).await;
        for line in metrics.lines() {
            assert!(
                !line.starts_with("batch_scaler_connections_closed_total{reason=\"goaway_")
                    || line.contains("goaway_no_error"),
                "{line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_replicas_forward_with_their_peer_token_and_a_producer_token_cannot() {
    const HRAS: usize = 12;
    let c = TestCluster::start().await;
    hras(&c, HRAS).await;
    let mut settings = test_settings(WINDOW);
    settings.grpc.auth =
        batch_scaler::api::auth::TokenAuth::parse("frontend produce\nreplicas peer\nops read\n")
            .unwrap();
    let all = replicas_with(&c, 3, settings).await;
    let with = |token: &str, event: pb::ScaleEvent| {
        let mut r = tonic::Request::new(event);
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    // Each replica's members count needs a read token.
    for server in &all {
        let client = server.client().await;
        eventually(Duration::from_secs(20), "every replica sees 3", || {
            let mut client = client.clone();
            async move {
                let mut r = tonic::Request::new(pb::GetStatsRequest {});
                r.metadata_mut()
                    .insert("authorization", "Bearer ops".parse().unwrap());
                client
                    .get_stats(r)
                    .await
                    .is_ok_and(|s| s.into_inner().members == 3)
            }
        })
        .await;
    }
    let mut producer = all[0].client().await;
    for i in 0..HRAS {
        let answer = producer
            .scale_and_wait(with("frontend", ev(&c.namespace, &format!("h{i}"), 1)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.batch.map(|b| b.outcome),
            Some(pb::Outcome::Applied as i32)
        );
    }
    let metrics = scrape(all[0].http_addr).await;
    let forwarded = sample(
        &metrics,
        "batch_scaler_forwarded_events_total{result=\"forwarded\"}",
    );
    assert!(forwarded > 0.0, "owners took the forwarded events");
    // A producer's token may not pose as a replica.
    let refused = producer
        .forward(tonic::Request::from_parts(
            {
                let mut m = tonic::metadata::MetadataMap::new();
                m.insert("authorization", "Bearer frontend".parse().unwrap());
                m
            },
            Default::default(),
            tokio_stream::iter(Vec::<pb::ForwardedEvent>::new()),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
}

/// The service binary on the Kubernetes backend of `c`, without a member name or address.
fn nameless(c: &TestCluster, peers: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_batch-scaler"));
    command
        .args(["--backend", "kubernetes", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--peers", peers])
        .args(["--watch-namespace", &c.namespace])
        .env("KUBECONFIG", c.kubeconfig())
        .env_remove("POD_NAME")
        .env_remove("POD_IP");
    command
}

#[tokio::test]
async fn kube_scale_out_misconfigured_is_refused_with_on_and_shown_with_auto() {
    let c = TestCluster::start().await;
    // --peers on: refuses to start, naming what is missing.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        nameless(&c, "on").kill_on_drop(true).output(),
    )
    .await
    .expect("exited in time")
    .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("--peers on") && said.contains("no --member-name or POD_NAME"),
        "{said}"
    );
    // --peers auto: starts alone, and says so in GetStats and a metric.
    let mut service =
        batch_scaler_testkit::process::ServiceProcess::spawn(nameless(&c, "auto")).await;
    let stats = service
        .client
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.scale_out_off, "no --member-name or POD_NAME");
    let metrics = scrape(service.metrics).await;
    assert_eq!(
        sample(
            &metrics,
            "batch_scaler_scale_out_off{reason=\"no --member-name or POD_NAME\"}"
        ),
        1.0,
        "{metrics}"
    );
    service.kill().await;
}
