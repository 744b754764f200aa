//! Test-only support for batch-scaler, kept out of the service's own dependencies: a
//! fault-injecting Kubernetes API server, a faulty memory store, a test cluster that is the
//! fake or an existing cluster, the service on port 0, and builders shared by every test.

pub mod apiserver;
pub mod cluster;
pub mod faulty;
pub mod github;
pub mod h2_raw;
pub mod members;
pub mod otlp;
pub mod process;
pub mod remembered;
pub mod trace;

pub use faulty::{FaultyStore, WriteFault};

use batch_scaler::{
    api::pb::{self, batch_scaler_client::BatchScalerClient},
    app,
    config::Settings,
    domain::{
        hra::{CapacityReservation, HraKey},
        report::BatchReport,
    },
    engine::{
        applier::RetryPolicy,
        hub::{Filter, ResultHub, Subscription},
    },
    store::HraStore,
};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

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

/// A wire event for `namespace/name`.
pub fn ev(namespace: &str, name: &str, amount: i32) -> pb::ScaleEvent {
    pb::ScaleEvent {
        namespace: namespace.into(),
        name: name.into(),
        amount,
        ..Default::default()
    }
}

/// A wire event carrying a job id and an event id.
pub fn job_ev(
    namespace: &str,
    name: &str,
    amount: i32,
    job: &str,
    event_id: &str,
) -> pb::ScaleEvent {
    pb::ScaleEvent {
        job_id: job.into(),
        event_id: event_id.into(),
        ..ev(namespace, name, amount)
    }
}

/// A `queued` workflow job of an organization's repository.
pub fn queued_job(repository: &str, labels: &[&str], job_id: &str) -> pb::WorkflowJob {
    pb::WorkflowJob {
        action: "queued".into(),
        repository: repository.into(),
        owner_type: "Organization".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        job_id: job_id.into(),
        ..Default::default()
    }
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

/// Polls `condition` every 10 ms until it holds, or panics naming `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A plain HTTP/1.1 GET of `path` at `addr`: the status code and the whole response.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("listener up");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("response read");
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// The Prometheus text of the probes listener at `addr`.
pub async fn scrape(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").await.1
}

/// The value of one sample (`name{labels}` exactly as exported), 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Waits up to 5 s until the metric `series` at `metrics_addr` reads `value`.
pub async fn await_sample(metrics_addr: SocketAddr, series: &str, value: f64) {
    eventually(Duration::from_secs(5), series, || async {
        sample(&scrape(metrics_addr).await, series) == value
    })
    .await;
}

/// A channel to `https://localhost:PORT` of `addr`, trusting the CA certificate `ca_pem`.
pub async fn tls_channel(addr: SocketAddr, ca_pem: &str) -> Channel {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Waits until the service at `metrics_addr` has accepted `n` events in all.
pub async fn wait_accepted(metrics_addr: SocketAddr, n: u64) {
    let series = "batch_scaler_events_received_total{result=\"accepted\"}";
    eventually(Duration::from_secs(10), "events to be accepted", || async {
        sample(&scrape(metrics_addr).await, series) >= n as f64
    })
    .await;
}

/// Settings for tests: a short window and quick back-off.
pub fn test_settings(window: Duration) -> Settings {
    let mut settings = Settings::default();
    settings.engine.window = window;
    settings.engine.retry = RetryPolicy {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
        deadline: Duration::from_secs(5),
    };
    settings.shutdown_grace = Duration::from_secs(5);
    settings
}

/// The service on 127.0.0.1:0, stopped by [`TestServer::shutdown`].
pub struct TestServer {
    /// Where it listens for gRPC.
    pub addr: SocketAddr,
    /// Where it serves metrics and probes.
    pub http_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts the service on `store`.
    pub async fn start(store: Arc<dyn HraStore>, settings: Settings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, store, settings).await
    }

    /// Starts the service on `store`, answering gRPC on `listener` (bound beforehand, so
    /// that settings can name its address).
    pub async fn start_on(
        listener: TcpListener,
        store: Arc<dyn HraStore>,
        settings: Settings,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let listeners = app::Listeners {
            grpc: listener,
            http: Some(http),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app::serve(settings, store, listeners, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            http_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts the service on `store`, returned for checks and fault injection.
    pub async fn with_store<S: HraStore>(store: S, settings: Settings) -> (Self, Arc<S>) {
        let store = Arc::new(store);
        (Self::start(store.clone(), settings).await, store)
    }

    /// Starts the service on the Kubernetes backend of `cluster` (no watch cache).
    pub async fn on_cluster(cluster: &cluster::TestCluster, settings: Settings) -> Self {
        let store = batch_scaler::store::kubernetes::KubeStore::new(
            cluster.client(),
            Duration::from_secs(2),
        );
        Self::start(Arc::new(store), settings).await
    }

    /// Sends one event with `ScaleAndWait` and returns its batch's result.
    pub async fn scale_and_wait(&self, event: pb::ScaleEvent) -> pb::BatchResult {
        let r = self.client().await.scale_and_wait(event).await.unwrap();
        r.into_inner().batch.expect("not a duplicate")
    }

    /// A new client connection.
    pub async fn client(&self) -> BatchScalerClient<Channel> {
        BatchScalerClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// Publishes `events` on one stream.
    pub async fn try_publish(
        &self,
        events: Vec<pb::ScaleEvent>,
    ) -> Result<pb::PublishSummary, tonic::Status> {
        self.client()
            .await
            .publish(tokio_stream::iter(events))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Publishes `events` on one stream and checks they were all accepted.
    pub async fn publish(&self, events: Vec<pb::ScaleEvent>) {
        let n = events.len() as u64;
        let summary = self.try_publish(events).await.unwrap();
        assert_eq!(summary.accepted, n);
    }

    /// Starts shutdown and waits (at most 10 s) for the service to finish.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stopped in time")?
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Every batch result `server` reports from now on.
pub async fn watch_all(server: &TestServer) -> tonic::Streaming<pb::BatchResult> {
    let req = pb::WatchBatchesRequest::default();
    server
        .client()
        .await
        .watch_batches(req)
        .await
        .unwrap()
        .into_inner()
}

/// The next result of a watch stream, or a panic after 10 s.
pub async fn recv(stream: &mut tonic::Streaming<pb::BatchResult>) -> pb::BatchResult {
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_stream::StreamExt::next(stream),
    )
    .await
    .expect("a result in time")
    .expect("stream open")
    .expect("no error")
}
