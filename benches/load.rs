//! Benchmarks that print `name: value` lines: intake against a null sink, fan-out against a
//! Kubernetes API with 20 ms latency, memory while folding 10 M events, apply latency.
//! Run all: `cargo bench --bench load`; one: `cargo bench --bench load -- --only
//! ingest|fanout|fold|latency`.

use batch_scaler::{
    api::pb::{self, batch_scaler_client::BatchScalerClient, batch_scaler_server},
    app::{self, Listeners},
    config::Settings,
    store::{HraStore, MemoryStore, kubernetes::KubeStore},
};
use batch_scaler_testkit::apiserver::ApiServer;
use serde_json::json;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming, transport::Channel};

type Stop = oneshot::Sender<()>;

fn hra(namespace: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "HorizontalRunnerAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": {"name": name}, "minReplicas": 0, "maxReplicas": 100000}})
}

/// Settings with this window and no bound on pending events (the loads hold millions).
fn with_window(window: Duration) -> Settings {
    let mut settings = Settings::default();
    settings.engine.window = window;
    settings.engine.bounds = Default::default();
    settings
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("hra-{i}")).collect()
}

async fn serve(
    store: Arc<dyn HraStore>,
    settings: Settings,
) -> (SocketAddr, Stop, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app::serve(settings, store, Listeners::grpc(listener), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, task)
}

async fn client(addr: SocketAddr) -> BatchScalerClient<Channel> {
    let c = BatchScalerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    c.max_encoding_message_size(usize::MAX)
}

/// `total` id-less events across `hras`, on `streams` concurrent Publish streams; `burst`
/// events of one sign in a row per HRA. Returns the seconds it took.
async fn load(addr: SocketAddr, hras: &[String], total: u64, streams: u64, burst: u64) -> f64 {
    let hras = Arc::new(hras.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..streams {
        let hras = hras.clone();
        let mut c = client(addr).await;
        tasks.push(tokio::spawn(async move {
            let per = total / streams;
            let events = tokio_stream::iter(0..per).map(move |i| {
                let n = s * per + i;
                let h = (n % hras.len() as u64) as usize;
                let round = n / hras.len() as u64;
                pb::ScaleEvent {
                    namespace: "bench".into(),
                    name: hras[h].clone(),
                    amount: if (round / burst).is_multiple_of(2) {
                        1
                    } else {
                        -1
                    },
                    ..Default::default()
                }
            });
            let summary = c.publish(events).await.unwrap().into_inner();
            assert_eq!(summary.accepted, per);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

/// A server of the same proto that only counts what it receives.
#[derive(Default, Clone)]
struct NullSink(Arc<AtomicU64>);

type Results =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::BatchResult, Status>> + Send>>;

#[tonic::async_trait]
impl batch_scaler_server::BatchScaler for NullSink {
    async fn publish(
        &self,
        r: Request<Streaming<pb::ScaleEvent>>,
    ) -> Result<Response<pb::PublishSummary>, Status> {
        let mut stream = r.into_inner();
        let mut accepted = 0;
        while let Some(_event) = stream.message().await? {
            accepted += 1;
        }
        self.0.fetch_add(accepted, Ordering::Relaxed);
        Ok(Response::new(pb::PublishSummary {
            accepted,
            duplicates: 0,
        }))
    }
    async fn scale(&self, _: Request<pb::ScaleEvent>) -> Result<Response<pb::ScaleAck>, Status> {
        Ok(Response::new(pb::ScaleAck::default()))
    }
    async fn scale_and_wait(
        &self,
        _: Request<pb::ScaleEvent>,
    ) -> Result<Response<pb::ScaleResult>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    type WatchBatchesStream = Results;
    async fn watch_batches(
        &self,
        _: Request<pb::WatchBatchesRequest>,
    ) -> Result<Response<Results>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    async fn get_stats(
        &self,
        _: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    type WatchTargetsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::TargetsUpdate, Status>> + Send>,
    >;
    async fn watch_targets(
        &self,
        _: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<Self::WatchTargetsStream>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    async fn get_job_stats(
        &self,
        _: Request<pb::TargetRef>,
    ) -> Result<Response<pb::JobStats>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    async fn get_target(&self, _: Request<pb::TargetRef>) -> Result<Response<pb::Target>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    async fn list_targets(
        &self,
        _: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<pb::ListTargetsResponse>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    async fn route_job(&self, _: Request<pb::WorkflowJob>) -> Result<Response<pb::Route>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    async fn scale_job(
        &self,
        _: Request<pb::WorkflowJob>,
    ) -> Result<Response<pb::ScaleJobResult>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    type ForwardStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ForwardedAnswer, Status>> + Send>,
    >;
    async fn forward(
        &self,
        _: Request<Streaming<pb::ForwardedEvent>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        Err(Status::unimplemented("null sink"))
    }
    type ScaleJobsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ScaleJobResult, Status>> + Send>,
    >;
    async fn scale_jobs(
        &self,
        _: Request<Streaming<pb::WorkflowJob>>,
    ) -> Result<Response<Self::ScaleJobsStream>, Status> {
        Err(Status::unimplemented("null sink"))
    }
}

async fn null_sink() -> (SocketAddr, Stop) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(batch_scaler_server::BatchScalerServer::new(
                NullSink::default(),
            ))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    (addr, stop)
}

async fn ingest() {
    const EVENTS: u64 = 1_000_000;
    const STREAMS: u64 = 4;
    let hras = names(100);
    let mut ours = Vec::new();
    let mut null = Vec::new();
    let mut ratios = Vec::new();
    // Alternating rounds on a shared, noisy machine: the median of per-round ratios.
    for _round in 0..5 {
        let (addr, stop) = null_sink().await;
        null.push(EVENTS as f64 / load(addr, &hras, EVENTS, STREAMS, 1).await);
        let _ = stop.send(());
        let store = MemoryStore::with_objects(hras.iter().map(|n| hra("bench", n))).unwrap();
        let settings = with_window(Duration::from_secs(3600));
        let (addr, stop, task) = serve(Arc::new(store), settings).await;
        ours.push(EVENTS as f64 / load(addr, &hras, EVENTS, STREAMS, 1).await);
        let _ = stop.send(());
        task.await.unwrap();
        ratios.push(ours[ours.len() - 1] / null[null.len() - 1]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!("ingest_events_per_s: {:.0}", median(&mut ours));
    println!("null_sink_events_per_s: {:.0}", median(&mut null));
    println!("ingest_ratio: {:.2}", median(&mut ratios));
}

/// Publishes one +1 for each HRA and waits until all are APPLIED; returns ms from the
/// window's close to the last result.
async fn one_window(addr: SocketAddr, hras: &[String], window: Duration) -> f64 {
    let mut c = client(addr).await;
    let mut watch = c
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let started = Instant::now();
    let events: Vec<_> = hras
        .iter()
        .map(|n| pb::ScaleEvent {
            namespace: "bench".into(),
            name: n.clone(),
            amount: 1,
            ..Default::default()
        })
        .collect();
    c.publish(tokio_stream::iter(events)).await.unwrap();
    let mut applied = 0;
    while applied < hras.len() {
        let r = watch.next().await.unwrap().unwrap();
        if r.outcome == pb::Outcome::Applied as i32 {
            applied += 1;
        }
    }
    (started.elapsed().saturating_sub(window)).as_secs_f64() * 1000.0
}

fn calls(api: &ApiServer) -> u64 {
    ["get", "list", "watch", "patch"]
        .iter()
        .map(|v| api.count(v))
        .sum()
}

async fn fanout() {
    const HRAS: usize = 1000;
    let api = ApiServer::start().await;
    let hras = names(HRAS);
    for n in &hras {
        api.insert(hra("bench", n));
    }
    api.set_latency(Duration::from_millis(20));
    // A real API server answers the watcher's LIST in pages of the 500 it asks for; the test
    // API server's own page size (3) is there to exercise paging, and would make this list
    // 334 round trips.
    api.set_page_size(500);
    let store =
        Arc::new(KubeStore::new(api.client(), Duration::from_secs(10)).with_watch_cache(&[]));
    let window = Duration::from_millis(200);
    let (addr, stop, task) = serve(store.clone(), with_window(window)).await;
    // Cold: the service has just started; its cache is filling while the first window runs.
    let cold_ms = one_window(addr, &hras, window).await;
    let cold_calls = calls(&api);
    // Steady: the cache has listed and watches (a cache that never synced would time out
    // here instead of being measured as GET + PATCH).
    tokio::time::timeout(Duration::from_secs(30), store.cache().unwrap().ready())
        .await
        .expect("the watch cache synced");
    api.reset_counts();
    let steady_ms = one_window(addr, &hras, window).await;
    let steady_calls = calls(&api);
    let _ = stop.send(());
    task.await.unwrap();
    println!("fanout_apply_ms: {steady_ms:.0}");
    println!("fanout_apply_cold_ms: {cold_ms:.0}");
    println!(
        "api_calls_per_dirty_hra: {:.3}",
        steady_calls as f64 / HRAS as f64
    );
    println!(
        "api_calls_per_dirty_hra_cold: {:.3}",
        cold_calls as f64 / HRAS as f64
    );
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs in a child process so its peak RSS is its own.
async fn fold_child() {
    let events: u64 = std::env::var("BENCH_FOLD_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let hras = names(1000);
    let store = MemoryStore::with_objects(hras.iter().map(|n| hra("bench", n))).unwrap();
    let settings = with_window(Duration::from_secs(3600));
    let (addr, stop, task) = serve(Arc::new(store), settings).await;
    // Queued and completed events in bursts of 50 per HRA, as webhooks arrive.
    let secs = load(addr, &hras, events, 4, 50).await;
    let rss = peak_rss_mb();
    let _ = stop.send(());
    task.await.unwrap();
    println!("fold_peak_rss_mb: {rss:.1}");
    println!("fold_events_per_s: {:.0}", events as f64 / secs);
}

fn fold() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--only", "fold-child"])
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

async fn latency() {
    const WORKERS: usize = 20;
    const SAMPLES: usize = 20;
    let api = ApiServer::start().await;
    let hras = names(WORKERS);
    for n in &hras {
        api.insert(hra("bench", n));
    }
    api.set_latency(Duration::from_millis(1));
    let store = KubeStore::new(api.client(), Duration::from_secs(10)).with_watch_cache(&[]);
    store.cache().unwrap().ready().await;
    let settings = with_window(Duration::from_millis(100));
    let (addr, stop, task) = serve(Arc::new(store), settings).await;
    let mut tasks = Vec::new();
    for name in hras {
        tasks.push(tokio::spawn(async move {
            let mut c = client(addr).await;
            let req = pb::WatchBatchesRequest {
                namespace: "bench".into(),
                name: name.clone(),
                replay: 0,
            };
            let mut watch = c.watch_batches(req).await.unwrap().into_inner();
            let mut samples = Vec::new();
            for _ in 0..SAMPLES {
                let event = pb::ScaleEvent {
                    namespace: "bench".into(),
                    name: name.clone(),
                    amount: 1,
                    ..Default::default()
                };
                c.scale(event).await.unwrap();
                let accepted = Instant::now();
                loop {
                    let r = watch.next().await.unwrap().unwrap();
                    if r.outcome == pb::Outcome::Applied as i32 {
                        break;
                    }
                }
                samples.push(accepted.elapsed().as_secs_f64() * 1000.0);
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    let _ = stop.send(());
    task.await.unwrap();
    println!("apply_latency_p50_ms: {:.1}", pct(0.50));
    println!("apply_latency_p99_ms: {:.1}", pct(0.99));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let run = |name: &str| only.is_none_or(|o| o == name);
    if only == Some("fold-child") {
        return fold_child().await;
    }
    if run("fold") {
        fold();
    }
    if run("ingest") {
        ingest().await;
    }
    if run("fanout") {
        fanout().await;
    }
    if run("latency") {
        latency().await;
    }
}
