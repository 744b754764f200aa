//! What forwarding to owners costs: `Publish` throughput into one replica, against the same
//! load spread over three replicas that share the HRAs out (two thirds of the events are
//! forwarded to their owner), all on the test API server in this process. Prints `name:
//! value` lines. Run: `cargo bench --bench forward`.

use batch_scaler::{
    api::pb::{self, batch_scaler_client::BatchScalerClient},
    app::{self, Listeners},
    config::Settings,
    store::{
        HraStore,
        kubernetes::KubeStore,
        membership::{Membership, MembershipConfig},
    },
};
use batch_scaler_testkit::apiserver::ApiServer;
use serde_json::json;
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::StreamExt;

const HRAS: usize = 100;
const EVENTS: u64 = 200_000;
const STREAMS: u64 = 6;

async fn replica(api: &ApiServer, name: &str) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::default();
    settings.engine.window = Duration::from_millis(200);
    settings.engine.bounds = Default::default();
    settings.membership = Some(Arc::new(Membership::start(
        api.client(),
        MembershipConfig {
            namespace: "members".into(),
            identity: name.into(),
            address: addr.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        },
    )));
    let store: Arc<dyn HraStore> = Arc::new(
        KubeStore::new(api.client(), Duration::from_secs(10)).with_watch_cache(&["bench".into()]),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app::serve(settings, store, Listeners::grpc(listener), async {
            let _ = stopped.await;
        })
        .await;
    });
    (addr, stop)
}

async fn members_seen(addr: SocketAddr, n: u32) {
    let mut client = BatchScalerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    while client
        .get_stats(pb::GetStatsRequest {})
        .await
        .map_or(true, |s| s.into_inner().members != n)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `EVENTS` id-less `±1` events over the HRAs, on `STREAMS` Publish streams spread over
/// `addrs`; the seconds it took until every stream's summary came.
async fn publish(addrs: &[SocketAddr]) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..STREAMS {
        let addr = addrs[s as usize % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut client = BatchScalerClient::connect(format!("http://{addr}"))
                .await
                .unwrap()
                .max_encoding_message_size(usize::MAX);
            let per = EVENTS / STREAMS;
            let events = tokio_stream::iter(0..per).map(move |i| pb::ScaleEvent {
                namespace: "bench".into(),
                name: format!("hra-{}", (s * per + i) as usize % HRAS),
                amount: if i % 2 == 0 { 1 } else { -1 },
                ..Default::default()
            });
            let summary = client.publish(events).await.unwrap().into_inner();
            assert_eq!(summary.accepted, per);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let api = ApiServer::start().await;
    for i in 0..HRAS {
        api.insert(json!({"apiVersion": "actions.summerwind.dev/v1alpha1",
            "kind": "HorizontalRunnerAutoscaler",
            "metadata": {"name": format!("hra-{i}"), "namespace": "bench"},
            "spec": {"scaleTargetRef": {"name": "r"}}}));
    }
    let (one, stop_one) = replica(&api, "solo").await;
    members_seen(one, 1).await;
    let alone = publish(&[one]).await;
    drop(stop_one);
    let mut three = Vec::new();
    let mut stops = Vec::new();
    for i in 0..3 {
        let (addr, stop) = replica(&api, &format!("member-{i}")).await;
        three.push(addr);
        stops.push(stop);
    }
    // The solo replica's Lease expires after 15 s; until then it counts: wait for 3 live.
    for addr in &three {
        members_seen(*addr, 3).await;
    }
    let spread = publish(&three).await;
    let rate = |secs: f64| EVENTS as f64 / secs;
    println!("forward_ingest_1_replica_events_per_s: {:.0}", rate(alone));
    println!(
        "forward_ingest_3_replicas_events_per_s: {:.0}",
        rate(spread)
    );
    println!("forward_cost_ratio: {:.2}", rate(spread) / rate(alone));
    drop(stops);
}
