//! Every default, stated once: the flags and [`super::Settings::default`] both read these.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    time::Duration,
};

/// `--listen`.
pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051));
/// `--metrics-listen`.
pub const METRICS_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090));
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
/// `--max-concurrent-streams`: as many as `--max-pending-events` by default, so a producer's
/// waiting calls are limited by the pending bounds (answered RESOURCE_EXHAUSTED), never
/// queued unseen in its client because one connection ran out of streams.
pub const MAX_CONCURRENT_STREAMS: u32 = MAX_PENDING_EVENTS as u32;
/// `--dedupe-ttl`.
pub const DEDUPE_TTL: Duration = Duration::from_secs(3600);
/// `--dedupe-capacity`.
pub const DEDUPE_CAPACITY: u32 = 100_000;
/// `--tombstone-ttl`.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);
/// `--tombstone-capacity`.
pub const TOMBSTONE_CAPACITY: u32 = 1000;
/// `--max-hra-bytes`.
pub const MAX_HRA_BYTES: u64 = 1024 * 1024;
/// `--member-lease`.
pub const MEMBER_LEASE: Duration = Duration::from_secs(15);
/// `--reload-interval`.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// `--shutdown-grace`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// `--max-pending-events`.
pub const MAX_PENDING_EVENTS: u64 = 1_000_000;
/// `--max-pending-per-hra`.
pub const MAX_PENDING_PER_HRA: u64 = 10_000;
/// Recent results kept for `WatchBatches.replay`.
pub const REPLAY_CAPACITY: usize = 1024;
/// Results buffered per watcher before it starts missing them.
pub const WATCHER_BUFFER: usize = 1024;
/// `--github-api-url`.
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// `--github-poll-interval`.
pub const GITHUB_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// `--github-lookback`.
pub const GITHUB_LOOKBACK: Duration = Duration::from_secs(3600);
/// `--github-verify-after`.
pub const GITHUB_VERIFY_AFTER: Duration = Duration::from_secs(15 * 60);
/// `--github-requests-per-hour`.
pub const GITHUB_REQUESTS_PER_HOUR: u32 = 1000;
/// Longest one GitHub request may take.
pub const GITHUB_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
