//! [`Settings`]: what the flags ask for, with the files they name read, before anything
//! starts.

use super::{Args, defaults};
use super::{Backend, ClockFlag, PeersMode, WarmFlag};
use crate::github::GithubConfig;
use crate::store::membership::{Membership, MembershipConfig};
use crate::{
    api::{
        auth::{TokenAuth, TokenFileError},
        limits::ConnectionLimits,
        tls::{TlsCredentials, TlsError, TlsFiles},
        transport::GrpcOptions,
    },
    domain::{
        duration::saturating_delta, namespaces::Allowlist, planner::ReservationClock,
        validate::check_dns1123_label,
    },
    engine::{
        EngineSettings,
        applier::{RetryPolicy, system_clock},
        idempotency::IdempotencyLimits,
        queue::Bounds,
        warm::WarmSettings,
    },
};
use http::HeaderValue;
use std::sync::Arc;
use std::{path::PathBuf, time::Duration};

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
    /// The TLS files cannot be used.
    #[error("--tls-cert/--tls-key/--tls-client-ca: {0}")]
    Tls(#[from] TlsError),
    /// The token file cannot be used.
    #[error("--auth-token-file: {0}")]
    Tokens(#[from] TokenFileError),
    /// The `--github-*` flags cannot be used.
    #[error(transparent)]
    Github(#[from] super::GithubConfigError),
}

/// Everything the running service needs besides its store and listeners.
#[derive(Clone)]
pub struct Settings {
    /// Batching, applying, results and idempotency.
    pub engine: EngineSettings,
    /// How long pending batches may keep retrying once shutdown starts.
    pub shutdown_grace: Duration,
    /// Namespaces that may be used.
    pub allowed: Allowlist,
    /// TLS, tokens, CORS and limits of the gRPC port.
    pub grpc: GrpcOptions,
    /// The token file the tokens came from (read again when it changes).
    pub token_file: Option<PathBuf>,
    /// How often credential files are read again regardless of change.
    pub reload_interval: Duration,
    /// The members this replica shares HRAs with, when scale-out is on.
    pub membership: Option<Arc<Membership>>,
    /// Why scale-out is off on the Kubernetes backend with `--peers auto` (several replicas
    /// would each write what they receive): shown in `GetStats` and a metric.
    pub scale_out_off: Option<&'static str>,
    /// Drift repair against GitHub, when configured.
    pub github: Option<GithubConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            engine: EngineSettings {
                window: defaults::WINDOW,
                retry: RetryPolicy::with_deadline(defaults::RETRY_DEADLINE),
                dry_run: false,
                default_duration: defaults::DEFAULT_DURATION,
                max_concurrent_writes: defaults::MAX_CONCURRENT_WRITES as usize,
                replay_capacity: defaults::REPLAY_CAPACITY,
                watcher_buffer: defaults::WATCHER_BUFFER,
                idempotency: IdempotencyLimits {
                    dedupe_ttl: defaults::DEDUPE_TTL,
                    dedupe_capacity: defaults::DEDUPE_CAPACITY as usize,
                    tombstone_ttl: defaults::TOMBSTONE_TTL,
                    tombstone_capacity: defaults::TOMBSTONE_CAPACITY as usize,
                },
                max_hra_bytes: defaults::MAX_HRA_BYTES as usize,
                bounds: Bounds {
                    total: defaults::MAX_PENDING_EVENTS,
                    per_hra: defaults::MAX_PENDING_PER_HRA,
                },
                clock: system_clock(),
                reservation_clock: ReservationClock::Queued,
                ledger_window: defaults::LEDGER_WINDOW,
                warm: None,
            },
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            allowed: Allowlist::default(),
            grpc: GrpcOptions {
                max_message_bytes: defaults::MAX_MESSAGE_BYTES,
                max_concurrent_streams: defaults::MAX_CONCURRENT_STREAMS,
                stream_window_bytes: defaults::STREAM_WINDOW_BYTES,
                connection_window_bytes: defaults::CONNECTION_WINDOW_BYTES,
                limits: ConnectionLimits {
                    preface_timeout: defaults::PREFACE_TIMEOUT,
                    idle_timeout: defaults::IDLE_TIMEOUT,
                    max_connections: defaults::MAX_CONNECTIONS as usize,
                    open_streams: defaults::MAX_OPEN_SERVICE_STREAMS as usize,
                },
                keepalive_interval: defaults::KEEPALIVE_INTERVAL,
                keepalive_timeout: defaults::KEEPALIVE_TIMEOUT,
                ..GrpcOptions::default()
            },
            token_file: None,
            reload_interval: defaults::RELOAD_INTERVAL,
            membership: None,
            scale_out_off: None,
            github: None,
        }
    }
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
            command: _,
            listen: _,
            backend: _,
            seed: _,
            window,
            default_duration,
            reservation_clock,
            max_queue_time,
            ledger_window,
            warm_runners,
            warm_max,
            runner_start,
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
            reload_interval,
            peers: _,
            member_name: _,
            advertise_address: _,
            peer_namespace: _,
            member_lease: _,
            allowed_namespaces,
            allowed_hosts,
            max_message_bytes,
            max_concurrent_streams,
            stream_window_bytes,
            connection_window_bytes,
            max_open_service_streams,
            max_connections,
            preface_timeout,
            idle_timeout,
            keepalive_interval,
            keepalive_timeout,
            dedupe_ttl,
            dedupe_capacity,
            tombstone_ttl,
            tombstone_capacity,
            max_hra_bytes,
            shutdown_grace,
            max_pending_events,
            max_pending_per_hra,
            github,
            otlp_endpoint: _,
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
            (Some(cert), Some(key)) => Some(TlsCredentials::load(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: tls_client_ca.clone(),
            })?),
            _ => None,
        };
        let auth = match auth_token_file {
            Some(path) => TokenAuth::from_file(path)?,
            None => TokenAuth::default(),
        };
        let defaults = Settings::default();
        Ok(Settings {
            engine: EngineSettings {
                window: **window,
                retry: RetryPolicy::with_deadline(**retry_deadline),
                dry_run: *dry_run,
                default_duration: **default_duration,
                max_concurrent_writes: *max_concurrent_writes as usize,
                idempotency: IdempotencyLimits {
                    dedupe_ttl: **dedupe_ttl,
                    dedupe_capacity: *dedupe_capacity as usize,
                    tombstone_ttl: **tombstone_ttl,
                    tombstone_capacity: *tombstone_capacity as usize,
                },
                max_hra_bytes: usize::try_from(*max_hra_bytes).unwrap_or(usize::MAX),
                bounds: Bounds {
                    total: *max_pending_events,
                    per_hra: *max_pending_per_hra,
                },
                ledger_window: **ledger_window,
                warm: (*warm_runners == WarmFlag::Forecast).then_some(WarmSettings {
                    max: *warm_max,
                    runner_start: **runner_start,
                    tick: crate::engine::warm::TICK,
                }),
                reservation_clock: match reservation_clock {
                    ClockFlag::Queued => ReservationClock::Queued,
                    ClockFlag::Started => ReservationClock::Started {
                        max_queue_time: saturating_delta(**max_queue_time),
                    },
                },
                ..defaults.engine
            },
            shutdown_grace: **shutdown_grace,
            allowed: Allowlist::new(allowed_namespaces.iter().cloned()),
            grpc: GrpcOptions {
                tls,
                auth,
                cors_origins,
                max_message_bytes: *max_message_bytes,
                max_concurrent_streams: *max_concurrent_streams,
                stream_window_bytes: *stream_window_bytes,
                connection_window_bytes: (*connection_window_bytes).max(*stream_window_bytes),
                allowed_hosts: allowed_hosts.clone(),
                limits: ConnectionLimits {
                    preface_timeout: **preface_timeout,
                    idle_timeout: **idle_timeout,
                    max_connections: *max_connections as usize,
                    open_streams: *max_open_service_streams as usize,
                },
                keepalive_interval: **keepalive_interval,
                keepalive_timeout: **keepalive_timeout,
            },
            token_file: auth_token_file.clone(),
            reload_interval: **reload_interval,
            membership: None,
            scale_out_off: None,
            github: github.config()?,
        })
    }

    /// Who this replica is among the members, if scale-out is on and it can tell its name
    /// and address; `Err` says why it is off (logged once at start).
    pub fn membership_config(&self) -> Result<MembershipConfig, &'static str> {
        if self.peers == PeersMode::Off {
            return Err("--peers off");
        }
        if self.backend != Backend::Kubernetes {
            return Err("the memory backend has one writer");
        }
        let env = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let identity = self
            .member_name
            .clone()
            .or_else(|| env("POD_NAME"))
            .ok_or("no --member-name or POD_NAME")?;
        let address = self
            .advertise_address
            .clone()
            .or_else(|| env("POD_IP").map(|ip| format!("{ip}:{}", self.listen.port())))
            .ok_or("no --advertise-address or POD_IP")?;
        let lease = *self.member_lease;
        Ok(MembershipConfig {
            namespace: self
                .peer_namespace
                .clone()
                .or_else(|| env("POD_NAMESPACE"))
                .unwrap_or_else(|| "default".into()),
            identity,
            address,
            lease_duration: lease,
            renew_every: lease / 3,
        })
    }
}
