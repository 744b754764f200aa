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
/// How long a runner takes to be ready (`--runner-start`).
pub const RUNNER_START: Duration = Duration::from_secs(60);
/// ARC's `scaleDownDelaySecondsAfterScaleOut` default (replay's `--scale-down-delay`).
pub const SCALE_DOWN_DELAY: Duration = Duration::from_secs(600);
/// `--max-queue-time`: the longest GitHub lets a job queue.
pub const MAX_QUEUE_TIME: Duration = Duration::from_secs(24 * 3600);
/// `--ledger-window`.
pub const LEDGER_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// `--retry-deadline`.
pub const RETRY_DEADLINE: Duration = Duration::from_secs(600);
/// `--max-concurrent-writes`.
pub const MAX_CONCURRENT_WRITES: u32 = 32;
/// `--request-timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `--max-message-bytes`.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// `--stream-window-bytes`: the HTTP/2 flow-control window of each call's request stream.
/// Small enough that a producer writing faster than its handler reads is slowed by flow
/// control long before h2's budget of unread small DATA frames (half the connection window)
/// can be spent: one stream of 60-byte messages holds at most ~1,100 unread frames, which
/// cost ~210 KiB of that budget (13-byte messages, the smallest valid event: ~1.2 MiB). And
/// large enough for one `--max-message-bytes` message and, at 1 ms of round trip, 64 MB/s.
pub const STREAM_WINDOW_BYTES: u32 = 64 * 1024;
/// `--connection-window-bytes`: the HTTP/2 flow-control window of a whole connection. h2
/// (0.4.19+) sizes its small-DATA-frame budget to half of it, 4 MiB here: ~19 streams of
/// 60-byte messages (3 of the smallest) may all be stalled at once before the connection is
/// closed with ENHANCE_YOUR_CALM, while a flood of 1-byte frames is still refused after
/// ~16,000 of them. It also bounds the request bytes a connection can have buffered.
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// `--max-concurrent-streams`: calls at once on one connection. Hundreds, so that one
/// connection cannot hold a million streams (~6.5 KiB each); a producer with more waiting
/// calls uses `ScaleJobs` (any number of jobs on one stream) or more connections.
pub const MAX_CONCURRENT_STREAMS: u32 = 512;
/// `--max-open-service-streams`: health and reflection calls (open to anyone) at once on one
/// connection.
pub const MAX_OPEN_SERVICE_STREAMS: u32 = 32;
/// `--max-connections`: 0, derived from the file limit (less an eighth, at least 64, for the
/// service's own files and its API-server and peer connections).
pub const MAX_CONNECTIONS: u32 = 0;
/// `--preface-timeout`: from accept to the first call, TLS handshake included.
pub const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);
/// `--idle-timeout`: a connection with no call open this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// `--keepalive-interval`: an HTTP/2 PING after this long without frames.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// `--keepalive-timeout`: a PING unanswered this long closes the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// `--dedupe-ttl`.
pub const DEDUPE_TTL: Duration = Duration::from_secs(3600);
/// `--dedupe-capacity`.
pub const DEDUPE_CAPACITY: u32 = 100_000;
/// `--tombstone-ttl`.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);
/// `--tombstone-capacity`.
pub const TOMBSTONE_CAPACITY: u32 = crate::domain::tombstones::DEFAULT_CAPACITY as u32;
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
