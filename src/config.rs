//! The command line: every flag also reads `BATCH_SCALER_<FLAG>`; each default is stated
//! once, in [`defaults`], and [`Settings`] are derived from the flags (reading the files they
//! name) before anything starts.

use crate::{
    api::{
        auth::{NoTokens, TokenAuth},
        transport::{GrpcOptions, TlsPem, tls_config},
    },
    domain::{namespaces::Allowlist, validate::check_dns1123_label},
    engine::{
        EngineSettings,
        applier::{RetryPolicy, system_clock},
        idempotency::IdempotencyLimits,
    },
    ops::telemetry::LogFormat,
};
use clap::{Parser, ValueEnum};
use http::HeaderValue;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Every default, stated once: the flags and [`Settings::default`] both read these.
pub mod defaults {
    use std::{
        net::{Ipv4Addr, SocketAddr, SocketAddrV4},
        time::Duration,
    };

    /// `--listen`.
    pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051));
    /// `--metrics-listen`.
    pub const METRICS_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090));
    /// `--window`.
    pub const WINDOW: Duration = Duration::from_secs(3);
    /// `--default-duration`.
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(600);
    /// `--retry-deadline`.
    pub const RETRY_DEADLINE: Duration = Duration::from_secs(600);
    /// `--max-concurrent-writes`.
    pub const MAX_CONCURRENT_WRITES: u32 = 32;
    /// `--request-timeout`.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// `--max-message-bytes`.
    pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
    /// `--max-concurrent-streams`.
    pub const MAX_CONCURRENT_STREAMS: u32 = 128;
    /// `--dedupe-ttl`.
    pub const DEDUPE_TTL: Duration = Duration::from_secs(3600);
    /// `--dedupe-capacity`.
    pub const DEDUPE_CAPACITY: u32 = 100_000;
    /// `--tombstone-ttl`.
    pub const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);
    /// Most finished jobs remembered (oldest evicted first).
    pub const TOMBSTONE_CAPACITY: usize = 100_000;
    /// `--shutdown-grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
    /// Recent results kept for `WatchBatches.replay`.
    pub const REPLAY_CAPACITY: usize = 1024;
    /// Results buffered per watcher before it starts missing them.
    pub const WATCHER_BUFFER: usize = 1024;
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

fn human(d: Duration) -> humantime::Duration {
    d.into()
}

/// Batches GitHub Actions scale events per HorizontalRunnerAutoscaler and applies them as
/// capacity reservations.
#[derive(Clone, Debug, Parser)]
#[command(name = "batch-scaler", version, about)]
pub struct Args {
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
    #[arg(long, env = "BATCH_SCALER_WINDOW", default_value_t = human(defaults::WINDOW), value_parser = positive_duration)]
    pub window: humantime::Duration,

    /// Reservation life when an event gives none.
    #[arg(long, env = "BATCH_SCALER_DEFAULT_DURATION", default_value_t = human(defaults::DEFAULT_DURATION), value_parser = positive_duration)]
    pub default_duration: humantime::Duration,

    /// Give up on transient errors of a batch after this long.
    #[arg(long, env = "BATCH_SCALER_RETRY_DEADLINE", default_value_t = human(defaults::RETRY_DEADLINE), value_parser = duration)]
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
    #[arg(long, env = "BATCH_SCALER_REQUEST_TIMEOUT", default_value_t = human(defaults::REQUEST_TIMEOUT), value_parser = positive_duration)]
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

    /// Only these namespaces may be used (comma-separated; default: all).
    #[arg(long, env = "BATCH_SCALER_ALLOWED_NAMESPACES", value_delimiter = ',')]
    pub allowed_namespaces: Vec<String>,

    /// Largest decoded request message, in bytes.
    #[arg(long, env = "BATCH_SCALER_MAX_MESSAGE_BYTES", default_value_t = defaults::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, env = "BATCH_SCALER_MAX_CONCURRENT_STREAMS", default_value_t = defaults::MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// Events whose event_id was seen within this long are dropped as duplicates.
    #[arg(long, env = "BATCH_SCALER_DEDUPE_TTL", default_value_t = human(defaults::DEDUPE_TTL), value_parser = positive_duration)]
    pub dedupe_ttl: humantime::Duration,

    /// Most event ids remembered (oldest evicted first).
    #[arg(long, env = "BATCH_SCALER_DEDUPE_CAPACITY", default_value_t = defaults::DEDUPE_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dedupe_capacity: u32,

    /// How long a completed job is remembered, so that its late `+1` adds nothing.
    #[arg(long, env = "BATCH_SCALER_TOMBSTONE_TTL", default_value_t = human(defaults::TOMBSTONE_TTL), value_parser = positive_duration)]
    pub tombstone_ttl: humantime::Duration,

    /// On shutdown, how long pending batches may keep retrying before they are given up.
    #[arg(long, env = "BATCH_SCALER_SHUTDOWN_GRACE", default_value_t = human(defaults::SHUTDOWN_GRACE), value_parser = duration)]
    pub shutdown_grace: humantime::Duration,
}

/// A flag whose value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A namespace that is not a DNS-1123 label.
    #[error("--allowed-namespaces: {namespace:?} is not a DNS-1123 label ({why})")]
    Namespace {
        /// The value.
        namespace: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An origin that is not a valid header value.
    #[error("--cors-allow-origin: invalid origin {0:?}")]
    Origin(String),
    /// A file a flag names could not be read.
    #[error("reading {flag} {path}: {source}")]
    Read {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("--auth-token-file {path}: {source}")]
    Tokens {
        /// The file.
        path: String,
        /// Why.
        source: NoTokens,
    },
}

/// Everything the running service needs besides its store and listeners.
#[derive(Clone)]
pub struct Settings {
    /// Batching, applying, results and idempotency.
    pub engine: EngineSettings,
    /// Reservation life for events that give none.
    pub default_duration: Duration,
    /// How long pending batches may keep retrying once shutdown starts.
    pub shutdown_grace: Duration,
    /// Namespaces that may be used.
    pub allowed: Allowlist,
    /// TLS, tokens, CORS and limits of the gRPC port.
    pub grpc: GrpcOptions,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            engine: EngineSettings {
                window: defaults::WINDOW,
                retry: RetryPolicy::with_deadline(defaults::RETRY_DEADLINE),
                dry_run: false,
                max_concurrent_writes: defaults::MAX_CONCURRENT_WRITES as usize,
                replay_capacity: defaults::REPLAY_CAPACITY,
                watcher_buffer: defaults::WATCHER_BUFFER,
                idempotency: IdempotencyLimits {
                    dedupe_ttl: defaults::DEDUPE_TTL,
                    dedupe_capacity: defaults::DEDUPE_CAPACITY as usize,
                    tombstone_ttl: defaults::TOMBSTONE_TTL,
                    tombstone_capacity: defaults::TOMBSTONE_CAPACITY,
                },
                clock: system_clock(),
            },
            default_duration: defaults::DEFAULT_DURATION,
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            allowed: Allowlist::default(),
            grpc: GrpcOptions {
                max_message_bytes: defaults::MAX_MESSAGE_BYTES,
                max_concurrent_streams: defaults::MAX_CONCURRENT_STREAMS,
                ..GrpcOptions::default()
            },
        }
    }
}

fn read(flag: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        flag,
        path: path.display().to_string(),
        source,
    })
}

impl Args {
    /// The namespaces the Kubernetes watch caches cover: `--watch-namespace`, else
    /// `--allowed-namespaces`, else all (empty).
    pub fn watched_namespaces(&self) -> &[String] {
        if self.watch_namespaces.is_empty() {
            &self.allowed_namespaces
        } else {
            &self.watch_namespaces
        }
    }

    /// The service settings these flags ask for, reading the files they name.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let Self {
            listen: _,
            backend: _,
            seed: _,
            window,
            default_duration,
            retry_deadline,
            dry_run,
            log_format: _,
            max_concurrent_writes,
            request_timeout: _,
            watch_namespaces: _,
            metrics_listen: _,
            cors_allow_origins,
            tls_cert,
            tls_key,
            tls_client_ca,
            auth_token_file,
            allowed_namespaces,
            max_message_bytes,
            max_concurrent_streams,
            dedupe_ttl,
            dedupe_capacity,
            tombstone_ttl,
            shutdown_grace,
        } = self;
        for ns in allowed_namespaces {
            check_dns1123_label(ns).map_err(|why| ConfigError::Namespace {
                namespace: ns.clone(),
                why,
            })?;
        }
        let cors_origins = cors_allow_origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| ConfigError::Origin(o.clone())))
            .collect::<Result<_, _>>()?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(TlsPem {
                cert: read("--tls-cert", cert)?,
                key: read("--tls-key", key)?,
                client_ca: tls_client_ca
                    .as_deref()
                    .map(|ca| read("--tls-client-ca", ca))
                    .transpose()?,
            })),
            _ => None,
        };
        let auth = match auth_token_file {
            Some(path) => {
                let text = read("--auth-token-file", path)?;
                TokenAuth::parse(&String::from_utf8_lossy(&text)).map_err(|source| {
                    ConfigError::Tokens {
                        path: path.display().to_string(),
                        source,
                    }
                })?
            }
            None => TokenAuth::default(),
        };
        let defaults = Settings::default();
        Ok(Settings {
            engine: EngineSettings {
                window: **window,
                retry: RetryPolicy::with_deadline(**retry_deadline),
                dry_run: *dry_run,
                max_concurrent_writes: *max_concurrent_writes as usize,
                idempotency: IdempotencyLimits {
                    dedupe_ttl: **dedupe_ttl,
                    dedupe_capacity: *dedupe_capacity as usize,
                    tombstone_ttl: **tombstone_ttl,
                    ..defaults.engine.idempotency
                },
                ..defaults.engine
            },
            default_duration: **default_duration,
            shutdown_grace: **shutdown_grace,
            allowed: Allowlist::new(allowed_namespaces.iter().cloned()),
            grpc: GrpcOptions {
                tls,
                auth,
                cors_origins,
                max_message_bytes: *max_message_bytes,
                max_concurrent_streams: *max_concurrent_streams,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let args = Args::try_parse_from(["batch-scaler"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(args.backend, Backend::Memory);
        assert_eq!(*args.window, Duration::from_secs(3));
        assert_eq!(*args.default_duration, Duration::from_secs(600));
        assert_eq!(*args.retry_deadline, Duration::from_secs(600));
        assert!(!args.dry_run);
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn settings_without_flags_are_the_defaults() {
        let from_flags = Args::try_parse_from(["batch-scaler"])
            .unwrap()
            .settings()
            .unwrap();
        let defaults = Settings::default();
        let (a, b) = (&from_flags.engine, &defaults.engine);
        assert_eq!(
            (a.window, a.retry, a.dry_run, a.max_concurrent_writes),
            (b.window, b.retry, b.dry_run, b.max_concurrent_writes)
        );
        assert_eq!(a.idempotency, b.idempotency);
        assert_eq!(
            (from_flags.default_duration, from_flags.shutdown_grace),
            (defaults.default_duration, defaults.shutdown_grace)
        );
        assert_eq!(
            (
                from_flags.grpc.max_message_bytes,
                from_flags.grpc.max_concurrent_streams
            ),
            (
                defaults.grpc.max_message_bytes,
                defaults.grpc.max_concurrent_streams
            )
        );
    }

    #[test]
    fn flags_parse_humantime_and_reject_nonsense() {
        let args = Args::try_parse_from([
            "batch-scaler",
            "--listen",
            "0.0.0.0:0",
            "--backend",
            "kubernetes",
            "--window",
            "250ms",
            "--default-duration",
            "30m",
            "--dry-run",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(*args.window, Duration::from_millis(250));
        assert_eq!(
            args.settings().unwrap().default_duration,
            Duration::from_secs(1800)
        );
        assert!(args.settings().unwrap().engine.dry_run);
        assert!(Args::try_parse_from(["batch-scaler", "--window", "0s"]).is_err());
        assert!(Args::try_parse_from(["batch-scaler", "--window", "soon"]).is_err());
        assert!(Args::try_parse_from(["batch-scaler", "--backend", "etcd"]).is_err());
        let bad = Args::try_parse_from(["batch-scaler", "--allowed-namespaces", "Prod"]).unwrap();
        assert!(bad.settings().err().unwrap().to_string().contains("Prod"));
    }
}
