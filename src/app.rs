//! Wiring: store, applier, batcher, result hub and gRPC server, run until a shutdown future
//! resolves, then drained in order.

use crate::{
    applier::{Applier, Clock, DEFAULT_TOMBSTONE_TTL, RetryPolicy, system_clock},
    args::{Args, Backend},
    auth::Allowlist,
    batcher::{Batcher, DEFAULT_DEDUPE_CAPACITY, DEFAULT_DEDUPE_TTL},
    grpc::BatchScalerService,
    http::{self, HttpState},
    metrics::Metrics,
    results::ResultHub,
    store::{HraStore, MemoryStore, kubernetes::KubeStore, seed},
    transport::{self, GrpcOptions},
};
use anyhow::Context;
use chrono::TimeDelta;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long, after the last batch is done, open gRPC streams may keep the server up.
const CONNECTION_DRAIN: Duration = Duration::from_secs(3);

/// HRAs the memory backend starts with when no `--seed` is given.
pub const EMBEDDED_SEED: &str = include_str!("../examples/hras.yaml");

/// Everything the running service needs besides its store and listeners.
#[derive(Clone)]
pub struct Settings {
    /// Batch window.
    pub window: Duration,
    /// Reservation life for events that give none.
    pub default_duration: Duration,
    /// Back-off and deadline for transient errors.
    pub retry: RetryPolicy,
    /// Plan and report, never write.
    pub dry_run: bool,
    /// Most applies in flight at once.
    pub max_concurrent_writes: usize,
    /// How long pending batches may keep retrying once shutdown starts.
    pub shutdown_grace: Duration,
    /// Recent results kept for `WatchBatches.replay`.
    pub replay_capacity: usize,
    /// Results buffered per watcher before it starts missing them.
    pub watcher_buffer: usize,
    /// Source of `now`.
    pub clock: Clock,
    /// How long event ids are remembered for dedupe.
    pub dedupe_ttl: Duration,
    /// Most event ids remembered.
    pub dedupe_capacity: usize,
    /// How long finished jobs are remembered.
    pub tombstone_ttl: Duration,
    /// Namespaces that may be used.
    pub allowed: Allowlist,
    /// TLS, tokens, CORS and limits of the gRPC port.
    pub grpc: GrpcOptions,
}

/// The sockets the service answers on.
pub struct Listeners {
    /// gRPC (and gRPC-Web).
    pub grpc: TcpListener,
    /// Metrics and probes, if wanted.
    pub http: Option<TcpListener>,
}

impl Listeners {
    /// Only a gRPC listener.
    pub fn grpc(grpc: TcpListener) -> Self {
        Self { grpc, http: None }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3),
            default_duration: Duration::from_secs(600),
            retry: RetryPolicy::with_deadline(Duration::from_secs(600)),
            dry_run: false,
            max_concurrent_writes: 32,
            shutdown_grace: Duration::from_secs(25),
            replay_capacity: 1024,
            watcher_buffer: 1024,
            clock: system_clock(),
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            dedupe_capacity: DEFAULT_DEDUPE_CAPACITY,
            tombstone_ttl: DEFAULT_TOMBSTONE_TTL,
            allowed: Allowlist::default(),
            grpc: GrpcOptions {
                max_message_bytes: 64 * 1024,
                max_concurrent_streams: 128,
                ..GrpcOptions::default()
            },
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Builds the store the flags ask for.
pub async fn store_from_args(args: &Args) -> anyhow::Result<Arc<dyn HraStore>> {
    match args.backend {
        Backend::Memory => {
            let objects = match &args.seed {
                Some(path) => seed::read_file(path)?,
                None => seed::parse(EMBEDDED_SEED).map_err(anyhow::Error::msg)?,
            };
            let count = objects.len();
            let store = MemoryStore::with_objects(objects).context("loading seed")?;
            tracing::info!(hras = count, "memory backend ready");
            Ok(Arc::new(store))
        }
        Backend::Kubernetes => {
            let watch = if args.watch_namespaces.is_empty() {
                &args.allowed_namespaces
            } else {
                &args.watch_namespaces
            };
            let store = KubeStore::from_environment(args.request_timeout)
                .await
                .context("connecting to the cluster (kubeconfig or in-cluster config)")?
                .with_watch_cache(watch);
            tracing::info!("kubernetes backend ready");
            Ok(Arc::new(store))
        }
    }
}

/// Runs the service the flags describe until `shutdown` resolves.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let store = store_from_args(&args).await?;
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))
    };
    let listeners = Listeners {
        grpc: bind(args.listen).await?,
        http: Some(bind(args.metrics_listen).await?),
    };
    serve(settings, store, listeners, shutdown).await
}

/// Serves until `shutdown` resolves; then reports NOT_SERVING, stops taking RPCs, applies
/// what is pending at once, ends watch streams and returns.
pub async fn serve(
    settings: Settings,
    store: Arc<dyn HraStore>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listeners.grpc.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let results = Arc::new(
        ResultHub::new(settings.replay_capacity, settings.watcher_buffer)
            .with_metrics(metrics.clone()),
    );
    let applier = Applier::new(
        store.clone(),
        results.clone(),
        settings.retry,
        settings.dry_run,
        settings.clock.clone(),
    )
    .with_metrics(metrics.clone())
    .with_tombstone_ttl(settings.tombstone_ttl);
    let batcher = Arc::new(
        Batcher::new(
            Arc::new(applier),
            settings.window,
            settings.max_concurrent_writes,
        )
        .with_dedupe(settings.dedupe_ttl, settings.dedupe_capacity)
        .with_metrics(metrics.clone()),
    );
    let stop = CancellationToken::new();
    let service = BatchScalerService {
        batcher: batcher.clone(),
        results: results.clone(),
        store,
        default_duration: TimeDelta::from_std(settings.default_duration)
            .context("default duration")?,
        shutdown: stop.clone(),
        clock: settings.clock.clone(),
        allowed: settings.allowed.clone(),
        metrics: metrics.clone(),
    };
    let (health_reporter, health) = tonic_health::server::health_reporter();
    transport::mark_serving(&health_reporter, true).await;

    let batching = tokio::spawn(batcher.clone().run(stop.clone(), settings.shutdown_grace));
    let mut grpc = tokio::spawn(transport::serve(
        listeners.grpc,
        service,
        settings.grpc.clone(),
        health,
        stop.clone().cancelled_owned(),
    ));
    let finished = CancellationToken::new();
    let http = match listeners.http {
        Some(listener) => {
            let http_addr = listener.local_addr()?;
            let state = HttpState {
                metrics,
                batcher,
                results: results.clone(),
                stopping: stop.clone(),
            };
            tracing::info!("metrics on http://{http_addr}/metrics");
            Some(tokio::spawn(http::serve(
                listener,
                state,
                finished.clone().cancelled_owned(),
            )))
        }
        None => None,
    };
    tracing::info!("listening on {addr}");

    tokio::select! {
        () = shutdown => tracing::info!("shutting down: applying pending batches"),
        result = &mut grpc => {
            stop.cancel();
            result.context("gRPC server task")??;
            anyhow::bail!("gRPC server stopped unexpectedly");
        }
    }
    transport::mark_serving(&health_reporter, false).await;
    stop.cancel();
    batching.await.context("batcher task")?;
    results.close();
    // Clients may hold streams we do not end (health Watch): give them a moment, then close.
    match tokio::time::timeout(CONNECTION_DRAIN, &mut grpc).await {
        Ok(result) => result.context("gRPC server task")??,
        Err(_) => {
            tracing::warn!(?CONNECTION_DRAIN, "closing gRPC connections still open");
            grpc.abort();
        }
    }
    finished.cancel();
    if let Some(http) = http {
        http.await.context("HTTP server task")??;
    }
    tracing::info!("stopped");
    Ok(())
}
