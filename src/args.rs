//! Command line: every flag also reads `BATCH_SCALER_<FLAG>`.

use crate::{app::Settings, applier::RetryPolicy};
use clap::{Parser, ValueEnum};
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

    /// Kubernetes backend: longest any one API call may take.
    #[arg(long, env = "BATCH_SCALER_REQUEST_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub request_timeout: Duration,

    /// On shutdown, how long pending batches may keep retrying before they are given up.
    #[arg(long, env = "BATCH_SCALER_SHUTDOWN_GRACE", default_value = "25s", value_parser = duration)]
    pub shutdown_grace: Duration,
}

impl Args {
    /// The service settings these flags ask for.
    pub fn settings(&self) -> Settings {
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
            shutdown_grace,
        } = self;
        Settings {
            window: *window,
            default_duration: *default_duration,
            retry: RetryPolicy::with_deadline(*retry_deadline),
            dry_run: *dry_run,
            max_concurrent_writes: *max_concurrent_writes as usize,
            shutdown_grace: *shutdown_grace,
            ..Settings::default()
        }
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
        assert_eq!(args.settings().default_duration, Duration::from_secs(1800));
        assert!(args.settings().dry_run);
        assert!(Args::try_parse_from(["batch-scaler", "--window", "0s"]).is_err());
        assert!(Args::try_parse_from(["batch-scaler", "--window", "soon"]).is_err());
        assert!(Args::try_parse_from(["batch-scaler", "--backend", "etcd"]).is_err());
    }
}
