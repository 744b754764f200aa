//! One accepted connection of the gRPC port, counted while open, whose close is counted by
//! reason: a limit of ours (`api/limits.rs`: no call started in time, idle, evicted at the
//! connection cap), the GOAWAY we wrote (seen by [`GoawaySniffer`] on the bytes going out),
//! or the peer. A GOAWAY with an error code is logged once, with the peer's address and h2's
//! debug text, so that a producer's cut stream can be explained from our side. A limit closes
//! the connection by ending what its reader sees (end of stream), checked on a timer.

use super::{
    goaway::GoawaySniffer,
    limits::{ConnState, ConnectionInfo, ConnectionLimits},
};
use crate::ops::connection_metrics::ConnectionMetrics;
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};
use tonic::transport::server::Connected;

/// An accepted connection (TCP, or TLS past its handshake).
pub struct Connection<T> {
    inner: T,
    sniffer: GoawaySniffer,
    metrics: ConnectionMetrics,
    peer: Option<SocketAddr>,
    state: Arc<ConnState>,
    limits: ConnectionLimits,
    tick: Pin<Box<Sleep>>,
}

/// How often a connection checks its limits: a quarter of the shorter one, within 50 ms–5 s.
fn tick_period(limits: &ConnectionLimits) -> Duration {
    (limits.preface_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(5))
}

impl<T> Connection<T> {
    /// Counts `inner` as open until it is dropped, and holds it to `limits`.
    pub fn new(
        inner: T,
        metrics: ConnectionMetrics,
        peer: Option<SocketAddr>,
        state: Arc<ConnState>,
        limits: ConnectionLimits,
    ) -> Self {
        metrics.open.inc();
        Self {
            inner,
            sniffer: GoawaySniffer::default(),
            metrics,
            peer,
            state,
            tick: Box::pin(tokio::time::sleep(tick_period(&limits))),
            limits,
        }
    }

    /// True once a limit says it must close (then its reader sees the end of the stream).
    fn must_close(&mut self, cx: &mut Context<'_>) -> bool {
        self.state.waker.register(cx.waker());
        while self.tick.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            self.state.check(now, &self.limits);
            self.tick.as_mut().reset(now + tick_period(&self.limits));
        }
        self.state.closing().is_some()
    }
}

impl<T> Drop for Connection<T> {
    fn drop(&mut self) {
        self.metrics.open.dec();
        if let Some(reason) = self.state.closing() {
            self.metrics.closed(reason);
            return;
        }
        let Some(goaway) = self.sniffer.sent() else {
            self.metrics.closed("peer");
            return;
        };
        self.metrics.closed(goaway.reason());
        if goaway.code != 0 {
            tracing::warn!(
                peer = ?self.peer,
                reason = goaway.reason(),
                debug = %goaway.debug,
                "closed a connection with an HTTP/2 GOAWAY error: every call on it failed"
            );
        }
    }
}

impl<T> Connected for Connection<T> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        ConnectionInfo {
            state: self.state.clone(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.must_close(cx) {
            // The end of the stream: the server lets the connection go.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Connection<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.sniffer.feed(&buf[..n]);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = written {
            for buf in bufs {
                if n == 0 {
                    break;
                }
                let take = n.min(buf.len());
                this.sniffer.feed(&buf[..take]);
                n -= take;
            }
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
