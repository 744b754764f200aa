//! Command line: every flag also reads `BATCH_SCALER_<FLAG>`.

use crate::{
    app::Settings,
    applier::RetryPolicy,
    auth::{Allowlist, TokenAuth},
    event::check_dns1123_label,
    transport::{GrpcOptions, tls_config},
};
use clap::{Parser, ValueEnum};
use http::HeaderValue;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Where HRAs live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// In-process, seeded from `--seed` (or the embedded examples).
    Memory,
    /// The cluster from kubeconfig or in-cluster config.
    Kubernetes,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 250ms, 3s, 1m)"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// Batches GitHub Actions scale events per HorizontalRunnerAutoscaler and applies them as
/// capacity reservations.
#[derive(Clone, Debug, Parser)]
#[command(name = "batch-scaler", version, about)]
pub struct Args {
    /// gRPC address (port 0: pick one; the real address is logged).
    #[arg(long, env = "BATCH_SCALER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Where HRAs live.
    #[arg(long, env = "BATCH_SCALER_BACKEND", value_enum, default_value_t = Backend::Memory)]
    pub backend: Backend,

    /// Memory backend: YAML file (one document, a `List` or a `---` stream) of HRA objects to
    /// start with. Without it, the embedded examples are loaded.
    #[arg(long, env = "BATCH_SCALER_SEED")]
    pub seed: Option<PathBuf>,

    /// Batch window.
    #[arg(long, env = "BATCH_SCALER_WINDOW", default_value = "3s", value_parser = positive_duration)]
    pub window: Duration,

    /// Reservation life when an event gives none.
    #[arg(long, env = "BATCH_SCALER_DEFAULT_DURATION", default_value = "10m", value_parser = positive_duration)]
    pub default_duration: Duration,

    /// Give up on transient errors of a batch after this long.
    #[arg(long, env = "BATCH_SCALER_RETRY_DEADLINE", default_value = "10m", value_parser = duration)]
    pub retry_deadline: Duration,

    /// Plan and report, never write.
    #[arg(long, env = "BATCH_SCALER_DRY_RUN")]
    pub dry_run: bool,

    /// Log output.
    #[arg(long, env = "BATCH_SCALER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Most applies (HRA writes) in flight at once.
    #[arg(long, env = "BATCH_SCALER_MAX_CONCURRENT_WRITES", default_value_t = 32,
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
    #[arg(long, env = "BATCH_SCALER_REQUEST_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub request_timeout: Duration,

    /// Prometheus metrics, /healthz and /readyz (port 0: pick one; logged).
    #[arg(
        long,
        env = "BATCH_SCALER_METRICS_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
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
    #[arg(long, env = "BATCH_SCALER_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, env = "BATCH_SCALER_MAX_CONCURRENT_STREAMS", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// Events whose event_id was seen within this long are dropped as duplicates.
    #[arg(long, env = "BATCH_SCALER_DEDUPE_TTL", default_value = "1h", value_parser = positive_duration)]
    pub dedupe_ttl: Duration,

    /// Most event ids remembered (oldest evicted first).
    #[arg(long, env = "BATCH_SCALER_DEDUPE_CAPACITY", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dedupe_capacity: u32,

    /// How long a completed job is remembered, so that its late `+1` adds nothing.
    #[arg(long, env = "BATCH_SCALER_TOMBSTONE_TTL", default_value = "1h", value_parser = positive_duration)]
    pub tombstone_ttl: Duration,

    /// On shutdown, how long pending batches may keep retrying before they are given up.
    #[arg(long, env = "BATCH_SCALER_SHUTDOWN_GRACE", default_value = "25s", value_parser = duration)]
    pub shutdown_grace: Duration,
}

impl Args {
    /// The service settings these flags ask for, reading the files they name.
    pub fn settings(&self) -> anyhow::Result<Settings> {
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
            check_dns1123_label(ns).map_err(|why| {
                anyhow::anyhow!("--allowed-namespaces: {ns:?} is not a DNS-1123 label ({why})")
            })?;
        }
        let cors_origins = cors_allow_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| anyhow::anyhow!("--cors-allow-origin: invalid origin {o:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key, tls_client_ca.as_deref())?),
            _ => None,
        };
        let auth = match auth_token_file {
            Some(path) => TokenAuth::from_file(path)?,
            None => TokenAuth::default(),
        };
        Ok(Settings {
            window: *window,
            default_duration: *default_duration,
            retry: RetryPolicy::with_deadline(*retry_deadline),
            dry_run: *dry_run,
            max_concurrent_writes: *max_concurrent_writes as usize,
            shutdown_grace: *shutdown_grace,
            dedupe_ttl: *dedupe_ttl,
            dedupe_capacity: *dedupe_capacity as usize,
            tombstone_ttl: *tombstone_ttl,
            allowed: Allowlist::new(allowed_namespaces.iter().cloned()),
            grpc: GrpcOptions {
                tls,
                auth,
                cors_origins,
                max_message_bytes: *max_message_bytes,
                max_concurrent_streams: *max_concurrent_streams,
            },
            ..Settings::default()
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
        assert_eq!(args.window, Duration::from_secs(3));
        assert_eq!(args.default_duration, Duration::from_secs(600));
        assert_eq!(args.retry_deadline, Duration::from_secs(600));
        assert!(!args.dry_run);
        assert_eq!(args.log_format, LogFormat::Text);
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
        assert_eq!(args.window, Duration::from_millis(250));
        assert_eq!(
            args.settings().unwrap().default_duration,
            Duration::from_secs(1800)
        );
        assert!(args.settings().unwrap().dry_run);
        assert!(Args::try_parse_from(["batch-scaler", "--window", "0s"]).is_err());
        assert!(Args::try_parse_from(["batch-scaler", "--window", "soon"]).is_err());
        assert!(Args::try_parse_from(["batch-scaler", "--backend", "etcd"]).is_err());
    }
}
