//! The command line: every flag also reads `BATCH_SCALER_<FLAG>`; each default is stated
//! once, in [`defaults`], and [`Settings`] are derived from the flags (reading the files they
//! name) before anything starts.

use crate::ops::telemetry::LogFormat;
use clap::{Parser, ValueEnum};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub mod defaults;
mod github;
mod settings;
mod tools;

pub use github::{GithubArgs, GithubConfigError};

pub use settings::{ConfigError, Settings};
pub use tools::{RecordArgs, ReplayArgs, Tool, WarmFlag};

/// Whether replicas share the HRAs out (one writer each) and forward events to the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeersMode {
    /// On with the Kubernetes backend when this replica knows its name and address
    /// (`--member-name`/`POD_NAME`, `--advertise-address`/`POD_IP`); when it does not, it
    /// writes alone and says so (a warning at every start, `GetStats`, a metric).
    Auto,
    /// On: refuses to start, naming what is missing, unless it can share the HRAs out.
    On,
    /// Every replica writes what it receives.
    Off,
}

/// When a job's reservation starts to age (`--reservation-clock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockFlag {
    /// From the job's `queued` (ARC's semantics).
    Queued,
    /// From the job's `in_progress`; until then the reservation holds, up to
    /// `--max-queue-time`.
    Started,
}

/// Where HRAs live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// In-process, seeded from `--seed` (or the embedded examples).
    Memory,
    /// The cluster from kubeconfig or in-cluster config.
    Kubernetes,
}

fn duration(s: &str) -> Result<humantime::Duration, String> {
    s.parse::<humantime::Duration>()
        .map_err(|e| format!("{e} (examples: 250ms, 3s, 1m)"))
}

fn positive_duration(s: &str) -> Result<humantime::Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A duration flag's parser: positive (if asked) and at most `max`, so no flag can make a
/// deadline or an expiry overflow.
fn at_most(
    max: Duration,
    positive: bool,
) -> impl Fn(&str) -> Result<humantime::Duration, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let d = if positive {
            positive_duration(s)?
        } else {
            duration(s)?
        };
        if *d > max {
            return Err(format!(
                "must be at most {}",
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
}

fn human(d: Duration) -> humantime::Duration {
    d.into()
}

/// Batches GitHub Actions scale events per HorizontalRunnerAutoscaler and applies them as
/// capacity reservations.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "batch-scaler",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// A tool instead of the service.
    #[command(subcommand)]
    pub command: Option<Tool>,

    /// gRPC address (port 0: pick one; the real address is logged).
    #[arg(long, env = "BATCH_SCALER_LISTEN", default_value_t = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Where HRAs live.
    #[arg(long, env = "BATCH_SCALER_BACKEND", value_enum, default_value_t = Backend::Memory)]
    pub backend: Backend,

    /// Memory backend: YAML file (one document, a `List` or a `---` stream) of HRA objects to
    /// start with. Without it, the embedded examples are loaded.
    #[arg(long, env = "BATCH_SCALER_SEED")]
    pub seed: Option<PathBuf>,

    /// Batch window.
    #[arg(long, env = "BATCH_SCALER_WINDOW", default_value_t = human(defaults::WINDOW), value_parser = at_most(HOUR, true))]
    pub window: humantime::Duration,

    /// Reservation life when an event gives none.
    #[arg(long, env = "BATCH_SCALER_DEFAULT_DURATION", default_value_t = human(defaults::DEFAULT_DURATION), value_parser = at_most(7 * DAY, true))]
    pub default_duration: humantime::Duration,

    /// When a job's reservation starts to live its duration: `queued` (ARC's semantics: a job
    /// still waiting when it ends loses its capacity) or `started` (it holds while the job
    /// waits, up to --max-queue-time, and lives the duration from the job's `in_progress`).
    #[arg(long, env = "BATCH_SCALER_RESERVATION_CLOCK", value_enum, default_value_t = ClockFlag::Queued)]
    pub reservation_clock: ClockFlag,

    /// What `GetJobStats` and the job ledger's figures cover: the events of this last
    /// stretch (or since the service started, if later).
    #[arg(long, env = "BATCH_SCALER_LEDGER_WINDOW", default_value_t = human(defaults::LEDGER_WINDOW), value_parser = at_most(30 * DAY, true))]
    pub ledger_window: humantime::Duration,

    /// With `--reservation-clock started`: the longest a queued job's reservation holds
    /// without its `in_progress` (GitHub cancels a job queued for 24 hours).
    #[arg(long, env = "BATCH_SCALER_MAX_QUEUE_TIME", default_value_t = human(defaults::MAX_QUEUE_TIME), value_parser = at_most(7 * DAY, true))]
    pub max_queue_time: humantime::Duration,

    /// Keep runners warm ahead of demand: `forecast` learns when each HRA's jobs arrive and
    /// keeps warm reservations for the jobs expected within a runner start.
    #[arg(long, env = "BATCH_SCALER_WARM_RUNNERS", value_enum, default_value_t = WarmFlag::Off)]
    pub warm_runners: WarmFlag,

    /// Most warm reservations per HRA (default: 20 % of its maxReplicas, at least 1).
    #[arg(long, env = "BATCH_SCALER_WARM_MAX")]
    pub warm_max: Option<u32>,

    /// How long a runner takes to be ready (scheduling, image pull, registration): warm
    /// runners cover the jobs expected within it.
    #[arg(long, env = "BATCH_SCALER_RUNNER_START", default_value_t = human(defaults::RUNNER_START), value_parser = at_most(HOUR, true))]
    pub runner_start: humantime::Duration,

    /// Give up on transient errors of a batch after this long.
    #[arg(long, env = "BATCH_SCALER_RETRY_DEADLINE", default_value_t = human(defaults::RETRY_DEADLINE), value_parser = at_most(7 * DAY, false))]
    pub retry_deadline: humantime::Duration,

    /// Plan and report, never write.
    #[arg(long, env = "BATCH_SCALER_DRY_RUN")]
    pub dry_run: bool,

    /// Log output.
    #[arg(long, env = "BATCH_SCALER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Most applies (HRA writes) in flight at once.
    #[arg(long, env = "BATCH_SCALER_MAX_CONCURRENT_WRITES", default_value_t = defaults::MAX_CONCURRENT_WRITES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_writes: u32,

    /// Kubernetes backend: watch HRAs only in this namespace (repeatable; default: the
    /// --allowed-namespaces, else all), so a namespaced Role is enough.
    #[arg(
        long = "watch-namespace",
        env = "BATCH_SCALER_WATCH_NAMESPACE",
        value_delimiter = ','
    )]
    pub watch_namespaces: Vec<String>,

    /// Kubernetes backend: longest any one API call may take.
    #[arg(long, env = "BATCH_SCALER_REQUEST_TIMEOUT", default_value_t = human(defaults::REQUEST_TIMEOUT), value_parser = at_most(HOUR, true))]
    pub request_timeout: humantime::Duration,

    /// Prometheus metrics, /healthz and /readyz (port 0: pick one; logged).
    #[arg(long, env = "BATCH_SCALER_METRICS_LISTEN", default_value_t = defaults::METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,

    /// Browser origin allowed to call the API with gRPC-Web (repeatable; env: comma-separated).
    #[arg(
        long = "cors-allow-origin",
        env = "BATCH_SCALER_CORS_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,

    /// Serve TLS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, env = "BATCH_SCALER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "BATCH_SCALER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this PEM CA (mTLS); needs --tls-cert.
    #[arg(long, env = "BATCH_SCALER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// File of bearer tokens, one per line: `BatchScaler` calls need `authorization: Bearer <token>`
    /// (health and reflection stay open).
    #[arg(long, env = "BATCH_SCALER_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Share HRAs out among the replicas (one writer per HRA, from member Leases) and
    /// forward events to their owner.
    #[arg(long, env = "BATCH_SCALER_PEERS", value_enum, default_value_t = PeersMode::Auto)]
    pub peers: PeersMode,

    /// This replica's name among the members (default: `POD_NAME`, from the downward API).
    #[arg(long, env = "BATCH_SCALER_MEMBER_NAME")]
    pub member_name: Option<String>,

    /// `host:port` the other replicas reach this one's gRPC port at (default: `POD_IP` and
    /// the --listen port).
    #[arg(long, env = "BATCH_SCALER_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// Namespace of the member Leases, the service's own (default: `POD_NAMESPACE`, else
    /// `default`).
    #[arg(long, env = "BATCH_SCALER_PEER_NAMESPACE")]
    pub peer_namespace: Option<String>,

    /// How long a replica stays a member without renewing its Lease (renewed every third of
    /// it); an owner that is killed hands its HRAs over within this.
    #[arg(long, env = "BATCH_SCALER_MEMBER_LEASE", default_value_t = human(defaults::MEMBER_LEASE), value_parser = at_most(HOUR, true))]
    pub member_lease: humantime::Duration,

    /// How often credential files (--tls-cert, --tls-key, --tls-client-ca,
    /// --auth-token-file) are read again even when no change was seen (changes are watched).
    #[arg(long, env = "BATCH_SCALER_RELOAD_INTERVAL", default_value_t = human(defaults::RELOAD_INTERVAL), value_parser = at_most(HOUR, true))]
    pub reload_interval: humantime::Duration,

    /// Only these namespaces may be used (comma-separated; default: all).
    #[arg(long, env = "BATCH_SCALER_ALLOWED_NAMESPACES", value_delimiter = ',')]
    pub allowed_namespaces: Vec<String>,

    /// Host names browsers may reach the dashboard and gRPC-Web under, besides IP addresses
    /// and localhost (comma-separated; `*.example.com` for its subdomains).
    #[arg(long, env = "BATCH_SCALER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Largest decoded request message, in bytes.
    #[arg(long, env = "BATCH_SCALER_MAX_MESSAGE_BYTES", default_value_t = defaults::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// HTTP/2 flow-control window of each call's request stream, in bytes.
    #[arg(long, env = "BATCH_SCALER_STREAM_WINDOW_BYTES", default_value_t = defaults::STREAM_WINDOW_BYTES,
          value_parser = clap::value_parser!(u32).range(16_384..=2_147_483_647))]
    pub stream_window_bytes: u32,

    /// HTTP/2 flow-control window of a whole connection, in bytes (at least the stream
    /// window); h2 closes a connection holding more unread small DATA frames than half of it
    /// can pay for.
    #[arg(long, env = "BATCH_SCALER_CONNECTION_WINDOW_BYTES", default_value_t = defaults::CONNECTION_WINDOW_BYTES,
          value_parser = clap::value_parser!(u32).range(65_535..=2_147_483_647))]
    pub connection_window_bytes: u32,

    /// Most concurrent HTTP/2 streams (calls) per connection.
    #[arg(long, env = "BATCH_SCALER_MAX_CONCURRENT_STREAMS", default_value_t = defaults::MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// Most concurrent health and reflection calls (open to anyone) per connection.
    #[arg(long, env = "BATCH_SCALER_MAX_OPEN_SERVICE_STREAMS", default_value_t = defaults::MAX_OPEN_SERVICE_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_open_service_streams: u32,

    /// Most connections to the gRPC port at once; 0: the open-file limit less an eighth (at
    /// least 64) of headroom.
    #[arg(long, env = "BATCH_SCALER_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: u32,

    /// A connection that has not started a call this long after it was accepted (TLS
    /// handshake included) is closed.
    #[arg(long, env = "BATCH_SCALER_PREFACE_TIMEOUT", default_value_t = human(defaults::PREFACE_TIMEOUT), value_parser = at_most(Duration::from_secs(60), true))]
    pub preface_timeout: humantime::Duration,

    /// A connection with no call open this long is closed.
    #[arg(long, env = "BATCH_SCALER_IDLE_TIMEOUT", default_value_t = human(defaults::IDLE_TIMEOUT), value_parser = at_most(DAY, true))]
    pub idle_timeout: humantime::Duration,

    /// An HTTP/2 PING after this long without frames from the peer (0s: none).
    #[arg(long, env = "BATCH_SCALER_KEEPALIVE_INTERVAL", default_value_t = human(defaults::KEEPALIVE_INTERVAL), value_parser = at_most(HOUR, false))]
    pub keepalive_interval: humantime::Duration,

    /// A PING unanswered this long closes the connection.
    #[arg(long, env = "BATCH_SCALER_KEEPALIVE_TIMEOUT", default_value_t = human(defaults::KEEPALIVE_TIMEOUT), value_parser = at_most(HOUR, true))]
    pub keepalive_timeout: humantime::Duration,

    /// Events whose event_id was seen within this long are dropped as duplicates.
    #[arg(long, env = "BATCH_SCALER_DEDUPE_TTL", default_value_t = human(defaults::DEDUPE_TTL), value_parser = at_most(30 * DAY, true))]
    pub dedupe_ttl: humantime::Duration,

    /// Most event ids remembered (oldest evicted first).
    #[arg(long, env = "BATCH_SCALER_DEDUPE_CAPACITY", default_value_t = defaults::DEDUPE_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dedupe_capacity: u32,

    /// How long a completed job is remembered, so that its late `+1` adds nothing.
    #[arg(long, env = "BATCH_SCALER_TOMBSTONE_TTL", default_value_t = human(defaults::TOMBSTONE_TTL), value_parser = at_most(30 * DAY, true))]
    pub tombstone_ttl: humantime::Duration,

    /// Most finished jobs one HRA remembers in its finished-jobs annotations (soonest-expiring
    /// dropped first; the default holds the 1h TTL at 5 completions a second).
    #[arg(long, env = "BATCH_SCALER_TOMBSTONE_CAPACITY", default_value_t = defaults::TOMBSTONE_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tombstone_capacity: u32,

    /// Largest HRA object, in bytes of JSON, a batch may grow it to; a batch that would make it
    /// larger fails (the API server refuses objects over about 1.5 MiB).
    #[arg(long, env = "BATCH_SCALER_MAX_HRA_BYTES", default_value_t = defaults::MAX_HRA_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_hra_bytes: u64,

    /// Most events held at once (queued, or in a batch not yet final); over it intake answers
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "BATCH_SCALER_MAX_PENDING_EVENTS", default_value_t = defaults::MAX_PENDING_EVENTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_events: u64,

    /// Most events held for one HRA (a retrying HRA takes events only up to this).
    #[arg(long, env = "BATCH_SCALER_MAX_PENDING_PER_HRA", default_value_t = defaults::MAX_PENDING_PER_HRA,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_per_hra: u64,

    /// On shutdown, how long pending batches may keep retrying before they are given up.
    #[arg(long, env = "BATCH_SCALER_SHUTDOWN_GRACE", default_value_t = human(defaults::SHUTDOWN_GRACE), value_parser = at_most(HOUR, false))]
    pub shutdown_grace: humantime::Duration,

    /// OTLP/gRPC endpoint traces are exported to (`http://collector:4317`); default
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; without either, no traces are made.
    #[arg(long, env = "BATCH_SCALER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Drift repair: `--github-*`.
    #[command(flatten)]
    pub github: GithubArgs,
}

#[cfg(test)]
mod tests;
