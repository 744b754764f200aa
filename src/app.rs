//! Wiring: store, engine, gRPC server and probes listener, run until a shutdown future
//! resolves or a listener fails, then stopped in order.

mod readiness;
mod scale_out;
pub mod tools;

use crate::{
    api::{
        auth::TokenFile,
        github_intake::ServiceIntake,
        service::BatchScalerService,
        transport::{self, TransportError},
    },
    config::PeersMode,
    config::{Args, Backend, Settings},
    engine::Engine,
    github,
    ops::{
        metrics::Metrics,
        probes,
        reload::{self, Reload},
    },
    store::{HraStore, MemoryStore, kubernetes::KubeStore, membership::Membership, seed},
};
use anyhow::Context;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tower_http::metrics::in_flight_requests::InFlightRequestsCounter;

/// How long, after the last batch is done, `BatchScaler` answers may take to be sent (a burst
/// of thousands of waiting callers all answered at once).
const ANSWERS_DRAIN: Duration = Duration::from_secs(10);

/// How long connections stay open after the last answer was handed to them.
const ANSWERS_LINGER: Duration = Duration::from_millis(200);

/// How long, after every answer is sent, other open gRPC streams (health `Watch`) may keep
/// the server up.
const CONNECTION_DRAIN: Duration = Duration::from_secs(3);

/// HRAs the memory backend starts with when no `--seed` is given.
pub const EMBEDDED_SEED: &str = include_str!("../examples/hras.yaml");

/// The sockets the service answers on.
pub struct Listeners {
    /// gRPC (and gRPC-Web, and the dashboard).
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

/// Builds the store the flags ask for, and (on Kubernetes) the client it uses.
pub async fn store_from_args(
    args: &Args,
) -> anyhow::Result<(Arc<dyn HraStore>, Option<kube::Client>)> {
    match args.backend {
        Backend::Memory => {
            let objects = match &args.seed {
                Some(path) => seed::read_file(path)?,
                None => seed::parse(EMBEDDED_SEED).context("the embedded seed")?,
            };
            let kind = |o: &serde_json::Value, k: &str| o["kind"].as_str() == Some(k);
            let runners = objects
                .iter()
                .filter(|o| kind(o, "RunnerDeployment") || kind(o, "RunnerSet"))
                .count();
            let hras = objects.len() - runners;
            let store = MemoryStore::with_objects(objects).context("loading seed")?;
            tracing::info!(hras, runner_targets = runners, "memory backend ready");
            Ok((Arc::new(store), None))
        }
        Backend::Kubernetes => {
            let store = KubeStore::from_environment(*args.request_timeout)
                .await
                .context("connecting to the cluster (kubeconfig or in-cluster config)")?
                .with_watch_cache(args.watched_namespaces());
            tracing::info!("kubernetes backend ready");
            let client = store.client();
            Ok((Arc::new(store), Some(client)))
        }
    }
}

/// Runs the service the flags describe until `shutdown` resolves.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut settings = args.settings()?;
    let (store, client) = store_from_args(&args).await?;
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))
    };
    let listeners = Listeners {
        grpc: bind(args.listen).await?,
        http: Some(bind(args.metrics_listen).await?),
    };
    match (args.membership_config(), client) {
        (Ok(mut config), Some(client)) => {
            // `host:0` advertises the port actually bound.
            if let Some(host) = config.address.strip_suffix(":0") {
                config.address = format!("{host}:{}", listeners.grpc.local_addr()?.port());
            }
            tracing::info!(member = %config.identity, address = %config.address, namespace = %config.namespace,
                "sharing HRAs out among the replicas (member Leases)");
            settings.membership = Some(Arc::new(Membership::start(client, config)));
        }
        (Err(why), _) if args.peers == PeersMode::On => {
            anyhow::bail!(
                "--peers on: this replica cannot share the HRAs out: {why} (set them, or run with --peers auto or off)"
            );
        }
        (Err(why), Some(_)) if args.peers == PeersMode::Auto => {
            tracing::warn!(
                why,
                "scale-out off: with several replicas, each writes every HRA it receives events \
                 for (more writes, and conflicts); give each replica --member-name/POD_NAME and \
                 --advertise-address/POD_IP, or run one replica"
            );
            settings.scale_out_off = Some(why);
        }
        (Err(why), _) => tracing::info!(why, "one writer for every HRA this replica receives"),
        (Ok(_), None) => {}
    }
    serve(settings, store, listeners, shutdown).await
}

/// Why the service stopped other than by its shutdown future.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC server failed.
    #[error(transparent)]
    Grpc(#[from] TransportError),
    /// The probes listener failed.
    #[error("probes listener: {0}")]
    Probes(#[source] std::io::Error),
    /// A listener stopped without an error while it should still serve.
    #[error("the {0} listener stopped unexpectedly")]
    Stopped(&'static str),
    /// A task panicked or was cancelled.
    #[error("{0} task: {1}")]
    Task(&'static str, #[source] tokio::task::JoinError),
}

fn joined<E>(
    what: &'static str,
    result: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), ServeError>
where
    ServeError: From<E>,
{
    result
        .map_err(|e| ServeError::Task(what, e))?
        .map_err(ServeError::from)
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> Self {
        Self::Probes(e)
    }
}

/// Serves until `shutdown` resolves or a listener fails; then reports NOT_SERVING, stops
/// taking RPCs, applies what is pending at once, ends watch streams, stops the other
/// listener and returns (with the listener's error, if one failed).
pub async fn serve(
    settings: Settings,
    store: Arc<dyn HraStore>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listeners.grpc.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    if let Some(why) = settings.scale_out_off {
        metrics.peers.set_scale_out_off(why);
    }
    let engine = Engine::new(store.clone(), &settings.engine, metrics.clone());
    let stop = CancellationToken::new();
    // The gRPC server closes its connections only once every waiting caller has its answer.
    let close_grpc = CancellationToken::new();
    let peers = settings
        .membership
        .clone()
        .and_then(|m| scale_out::peers_for(m, &settings, metrics.clone()));
    let service = BatchScalerService {
        engine: engine.clone(),
        store: store.clone(),
        routing: store.routing(),
        peers: peers.clone(),
        shutdown: stop.clone(),
        clock: settings.engine.clock.clone(),
        allowed: settings.allowed.clone(),
        metrics: metrics.clone(),
        default_life: chrono::TimeDelta::from_std(settings.engine.default_duration)
            .context("--default-duration")?,
        reservation_clock: settings.engine.reservation_clock,
        targets_cache: Arc::default(),
    };
    // Drift repair: its own tasks, stopped first on shutdown.
    let drift_stop = CancellationToken::new();
    let drift = settings.github.clone().map(|config| {
        tracing::info!(api = %config.api_url, hooks = config.hooks.len(), verify_after = ?config.verify_after,
            "keeping HRAs true to GitHub: recovering failed deliveries, verifying stale reservations");
        github::start(
            config,
            store.clone(),
            Arc::new(ServiceIntake::new(service.clone())),
            metrics.github.clone(),
            settings.engine.clock.clone(),
            drift_stop.clone(),
        )
    });
    let owns_peers = peers.clone();
    let owns: crate::engine::warm_tick::Owns = Arc::new(move |key| {
        owns_peers
            .as_ref()
            .is_none_or(|p| matches!(p.destination(key), crate::api::peers::Destination::Local))
    });
    let clock = settings.engine.clock.clone();
    engine.start_warm(store.clone(), clock, owns, drift_stop.clone());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    // NOT_SERVING until every watch cache has listed everything (HRAs, and each runner kind
    // routing reads), and again once shutdown starts: a probe can route on it.
    transport::mark_serving(&health_reporter, store.is_ready()).await;
    let serving = {
        let (reporter, store, stop) = (health_reporter.clone(), store.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = store.ready() => {
                    transport::mark_serving(&reporter, true).await;
                    tracing::info!("ready: serving");
                }
                () = stop.cancelled() => {}
            }
        })
    };

    // Credentials read again when their files change (and every --reload-interval).
    let mut reloadable: Vec<Arc<dyn Reload>> = Vec::new();
    if let Some(tls) = &settings.grpc.tls {
        reloadable.push(tls.clone());
    }
    if let Some(path) = &settings.token_file {
        let bare = settings.grpc.auth.bare_tokens();
        if bare > 0 {
            tracing::warn!(
                file = %path.display(),
                tokens = bare,
                "token lines without roles may do everything (read, produce, peer): give each \
                 its roles, e.g. `TOKEN read` for the dashboard, `TOKEN produce` for a \
                 frontend, `TOKEN peer` for the replicas"
            );
        }
        reloadable.push(Arc::new(TokenFile {
            path: path.clone(),
            auth: settings.grpc.auth.clone(),
        }));
    }
    let reloading = tokio::spawn(reload::run(
        reloadable,
        settings.reload_interval,
        metrics.clone(),
        stop.clone(),
    ));
    let batching = tokio::spawn(
        engine
            .batcher
            .clone()
            .run(stop.clone(), settings.shutdown_grace),
    );
    let calls = InFlightRequestsCounter::new();
    let mut grpc = tokio::spawn(transport::serve(
        listeners.grpc,
        service,
        settings.grpc.clone(),
        calls.clone(),
        stop.clone(),
        health,
        close_grpc.clone().cancelled_owned(),
    ));
    let finished = CancellationToken::new();
    let owned = tokio::spawn(scale_out::count_owned(
        store.clone(),
        peers.clone(),
        metrics.clone(),
    ));
    let mut http: Option<JoinHandle<std::io::Result<()>>> = match listeners.http {
        Some(listener) => {
            let http_addr = listener.local_addr()?;
            tracing::info!("metrics on http://{http_addr}/metrics");
            let tls = settings.grpc.tls.clone();
            let probes = readiness::probes_for(&engine, store, metrics, tls, stop.clone());
            Some(tokio::spawn(probes::serve(
                listener,
                probes,
                finished.clone().cancelled_owned(),
            )))
        }
        None => None,
    };
    tracing::info!("listening on {addr}");

    let http_stopped = async {
        match &mut http {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let mut failure = None;
    tokio::select! {
        () = shutdown => tracing::info!("shutting down: applying pending batches"),
        result = &mut grpc => {
            let e = joined("gRPC server", result).err().unwrap_or(ServeError::Stopped("gRPC"));
            tracing::error!(error = %e, "gRPC listener failed: shutting down");
            failure = Some(e);
        }
        result = http_stopped => {
            let e = joined("probes", result).err().unwrap_or(ServeError::Stopped("probes"));
            tracing::error!(error = %e, "probes listener failed: shutting down");
            failure = Some(e);
            http = None;
        }
    }
    drift_stop.cancel();
    if let Some(mut drift) = drift {
        while drift.join_next().await.is_some() {}
    }
    serving.abort();
    reloading.abort();
    owned.abort();
    // The others take this replica's HRAs over now, not once its Lease expires, and what
    // still arrives here goes to them instead of being refused.
    if let Some(peers) = &peers {
        peers.start_leaving();
    }
    if let Some(membership) = &settings.membership {
        membership.leave().await;
    }
    transport::mark_serving(&health_reporter, false).await;
    stop.cancel();
    batching.await.context("batcher task")?;
    engine.hub.close();
    if failure.is_none() {
        answers_sent(&calls).await;
    }
    close_grpc.cancel();
    if !grpc.is_finished() || failure.is_none() {
        // Clients may hold streams we do not end (health Watch): give them a moment, then close.
        match tokio::time::timeout(CONNECTION_DRAIN, &mut grpc).await {
            Ok(result) if failure.is_none() => joined("gRPC server", result)?,
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(?CONNECTION_DRAIN, "closing gRPC connections still open");
                grpc.abort();
            }
        }
    }
    finished.cancel();
    if let Some(http) = http {
        let result = joined("probes", http.await);
        if failure.is_none() {
            result?;
        }
    }
    match failure {
        Some(e) => Err(e.into()),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Waits until every `BatchScaler` call has its answer handed to its connection, or
/// [`ANSWERS_DRAIN`] passes, then [`ANSWERS_LINGER`] more for callers to read them before
/// connections are closed (closing a socket whose peer is still talking resets it, and the
/// peer may lose answers it had not read yet).
async fn answers_sent(calls: &InFlightRequestsCounter) {
    let deadline = tokio::time::Instant::now() + ANSWERS_DRAIN;
    while calls.get() > 0 {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(calls = calls.get(), ?ANSWERS_DRAIN, "answers still unsent");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(ANSWERS_LINGER).await;
}
