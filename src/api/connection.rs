//! One accepted connection of the gRPC port, counted while open, whose close is counted by
//! reason: the GOAWAY we wrote (seen by [`GoawaySniffer`] on the bytes going out), or the
//! peer. A GOAWAY with an error code is logged once, with the peer's address and h2's debug
//! text, so that a producer's cut stream can be explained from our side.

use super::goaway::GoawaySniffer;
use crate::ops::connection_metrics::ConnectionMetrics;
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// An accepted connection (TCP, or TLS past its handshake).
pub struct Connection<T> {
    inner: T,
    sniffer: GoawaySniffer,
    metrics: ConnectionMetrics,
    peer: Option<SocketAddr>,
}

impl<T> Connection<T> {
    /// Counts `inner` as open until it is dropped.
    pub fn new(inner: T, metrics: ConnectionMetrics, peer: Option<SocketAddr>) -> Self {
        metrics.open.inc();
        Self {
            inner,
            sniffer: GoawaySniffer::default(),
            metrics,
            peer,
        }
    }
}

impl<T> Drop for Connection<T> {
    fn drop(&mut self) {
        self.metrics.open.dec();
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

impl<T: Connected> Connected for Connection<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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
