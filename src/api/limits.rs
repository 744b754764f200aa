//! Limits of the gRPC port's connections: each is closed if it has not started a call within
//! the preface timeout of being accepted (TLS handshake included) or has had no call open for
//! the idle timeout; the process keeps at most `max_connections`, and at the cap a connection
//! that has not started a call yet gives way to the new one. What a connection's calls share
//! (its count of open calls and of open-service calls) lives in its [`ConnState`], which the
//! request path finds in the request's extensions ([`ConnectionInfo`]).

use futures::task::AtomicWaker;
use parking_lot::Mutex;
use std::{
    collections::VecDeque,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{sync::Notify, time::Instant};

/// The limits, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest from accept to the first call (TLS handshake and HTTP/2 preface included).
    pub preface_timeout: Duration,
    /// Longest a connection may stay open with no call open.
    pub idle_timeout: Duration,
    /// Most connections at once (0: derived from the file limit).
    pub max_connections: usize,
    /// Most concurrent health and reflection calls (open to anyone) per connection.
    pub open_streams: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            preface_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 0,
            open_streams: 32,
        }
    }
}

/// The connection cap for a file limit of `nofile`: the limit less headroom (an eighth, at
/// least 64) for the service's own files, its API-server and peer connections.
pub fn connections_for_file_limit(nofile: u64) -> usize {
    let headroom = (nofile / 8).max(64);
    usize::try_from(nofile.saturating_sub(headroom).max(16)).unwrap_or(usize::MAX)
}

/// This process's soft limit of open files.
pub fn file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok { limit.rlim_cur } else { 1024 }
}

/// What one connection's calls and its reader share.
#[derive(Debug)]
pub struct ConnState {
    accepted: Instant,
    started: AtomicBool,
    streams: AtomicUsize,
    open_streams: AtomicUsize,
    last_activity: Mutex<Instant>,
    closing: Mutex<Option<&'static str>>,
    /// The connection's reader, woken to see that it must close.
    pub(super) waker: AtomicWaker,
    /// A TLS handshake in progress, told to stop.
    pub(super) stop: Notify,
    live: Arc<AtomicUsize>,
}

impl Drop for ConnState {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnState {
    /// Why it must close, once it must.
    pub fn closing(&self) -> Option<&'static str> {
        *self.closing.lock()
    }

    /// Tells the connection to close (the first reason stays).
    pub fn close(&self, reason: &'static str) {
        self.closing.lock().get_or_insert(reason);
        self.waker.wake();
        self.stop.notify_waiters();
    }

    /// Closes it if a limit says so at `now`.
    pub fn check(&self, now: Instant, limits: &ConnectionLimits) {
        if !self.started.load(Ordering::Relaxed) {
            if now.duration_since(self.accepted) >= limits.preface_timeout {
                self.close("preface_timeout");
            }
        } else if self.streams.load(Ordering::Relaxed) == 0
            && now.duration_since(*self.last_activity.lock()) >= limits.idle_timeout
        {
            self.close("idle_timeout");
        }
    }

    /// A call starts on it (`open_service`: health or reflection, which `budget` bounds);
    /// `None` if that budget is spent. The guard ends the call when dropped.
    pub fn start_call(self: &Arc<Self>, open_service: bool, budget: usize) -> Option<CallGuard> {
        if open_service && self.open_streams.fetch_add(1, Ordering::Relaxed) >= budget {
            self.open_streams.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.started.store(true, Ordering::Relaxed);
        self.streams.fetch_add(1, Ordering::Relaxed);
        *self.last_activity.lock() = Instant::now();
        Some(CallGuard {
            state: self.clone(),
            open_service,
        })
    }
}

/// One open call of a connection; dropping it ends the call.
#[derive(Debug)]
pub struct CallGuard {
    state: Arc<ConnState>,
    open_service: bool,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        *self.state.last_activity.lock() = Instant::now();
        self.state.streams.fetch_sub(1, Ordering::Relaxed);
        if self.open_service {
            self.state.open_streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What tonic puts in every request's extensions for our connections.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The connection's shared state.
    pub state: Arc<ConnState>,
}

/// Every connection of the process, oldest first, against the cap.
#[derive(Debug)]
pub struct Registry {
    cap: usize,
    live: Arc<AtomicUsize>,
    all: Mutex<VecDeque<Weak<ConnState>>>,
}

impl Registry {
    /// A registry allowing `limits.max_connections` (0: derived from the file limit).
    pub fn new(limits: &ConnectionLimits) -> Self {
        let cap = match limits.max_connections {
            0 => connections_for_file_limit(file_limit()),
            n => n,
        };
        Self {
            cap,
            live: Arc::default(),
            all: Mutex::default(),
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Takes a place for a connection just accepted: at the cap, the oldest connection that has
    /// not started a call is told to close to make room; if every one has, `None` (refuse it).
    pub fn admit(&self) -> Option<Arc<ConnState>> {
        let mut all = self.all.lock();
        if self.live.load(Ordering::Relaxed) >= self.cap {
            all.retain(|w| w.strong_count() > 0);
            let idle = all
                .iter()
                .filter_map(Weak::upgrade)
                .find(|c| !c.started.load(Ordering::Relaxed) && c.closing().is_none());
            match idle {
                Some(c) => c.close("evicted_at_cap"),
                None => return None,
            }
        }
        let now = Instant::now();
        self.live.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            accepted: now,
            started: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            open_streams: AtomicUsize::new(0),
            last_activity: Mutex::new(now),
            closing: Mutex::new(None),
            waker: AtomicWaker::new(),
            stop: Notify::new(),
            live: self.live.clone(),
        });
        if all.len() > 2 * self.cap.max(64) {
            all.retain(|w| w.strong_count() > 0);
        }
        all.push_back(Arc::downgrade(&state));
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_headroom_below_the_file_limit() {
        assert_eq!(connections_for_file_limit(1024), 896);
        assert_eq!(connections_for_file_limit(512), 448);
        assert_eq!(connections_for_file_limit(65536), 57344);
        assert_eq!(connections_for_file_limit(40), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn silent_then_idle_connections_close_and_at_the_cap_a_silent_one_gives_way() {
        let limits = ConnectionLimits {
            preface_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 2,
            open_streams: 1,
        };
        let registry = Registry::new(&limits);
        let busy = registry.admit().unwrap();
        let silent = registry.admit().unwrap();
        let call = busy.start_call(false, 1).unwrap();
        // At the cap the silent one gives way, and once both have started calls nobody does.
        let third = registry.admit().unwrap();
        assert_eq!(silent.closing(), Some("evicted_at_cap"));
        drop(silent);
        let _other = third.start_call(false, 1).unwrap();
        assert!(registry.admit().is_none());
        // Open-service calls have their own small budget.
        let health = third.start_call(true, 1).unwrap();
        assert!(third.start_call(true, 1).is_none());
        drop(health);
        assert!(third.start_call(true, 1).is_some());
        // Silent past the preface timeout: closed; a call open is never idle.
        let late = Registry::new(&ConnectionLimits::default()).admit().unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        late.check(Instant::now(), &limits);
        assert_eq!(late.closing(), Some("preface_timeout"));
        tokio::time::advance(Duration::from_secs(120)).await;
        busy.check(Instant::now(), &limits);
        assert_eq!(busy.closing(), None);
        drop(call);
        tokio::time::advance(Duration::from_secs(59)).await;
        busy.check(Instant::now(), &limits);
        assert_eq!(busy.closing(), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        busy.check(Instant::now(), &limits);
        assert_eq!(busy.closing(), Some("idle_timeout"));
    }
}
