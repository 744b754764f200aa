//! Accepting connections for the gRPC server: TCP (no Nagle delay), and TLS handshakes done
//! off the accept loop (a slow or silent client cannot hold up the next one) with the
//! credentials current at each handshake. A listener that can no longer accept at all ends
//! the stream, which stops the server with an error instead of spinning on it. Once shutdown
//! starts the listener is closed (new connections are refused and go to another replica, and
//! a new process can bind the port) while the connections open go on until their answers
//! are sent.

use super::{
    connection::Connection,
    limits::{ConnectionLimits, Registry},
};
use crate::ops::connection_metrics::ConnectionMetrics;
use std::{io, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// How accepted connections are held to their limits and counted.
#[derive(Clone)]
pub struct Admission {
    /// Counts connections open and closed.
    pub metrics: ConnectionMetrics,
    /// The process's connections against the cap.
    pub registry: Arc<Registry>,
    /// The limits each connection is held to.
    pub limits: ConnectionLimits,
}

/// True for an accept error after which the listener is of no further use.
fn fatal(e: &io::Error) -> bool {
    // Linux's EBADF, EINVAL (a listener shut down) and ENOTSOCK.
    const EBADF: i32 = 9;
    const EINVAL: i32 = 22;
    const ENOTSOCK: i32 = 88;
    matches!(e.raw_os_error(), Some(EBADF | EINVAL | ENOTSOCK))
}

/// The next accepted connection, or `None` once the listener is unusable. Passing errors
/// (a peer gone before accept, out of file descriptors) wait a moment and go on.
async fn accept(listener: &TcpListener) -> Option<TcpStream> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Err(e) if fatal(&e) => {
                tracing::error!(error = %e, "the gRPC listener cannot accept any more");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts until `stop` (or the server stops taking connections); returns whether the
/// stream must stay open (stopped by shutdown: connections already open go on).
async fn accept_until<F, Fut>(listener: TcpListener, stop: &CancellationToken, mut take: F) -> bool
where
    F: FnMut(TcpStream) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let stream = tokio::select! {
            stream = accept(&listener) => stream,
            () = stop.cancelled() => return true,
        };
        let Some(stream) = stream else { return false };
        if !take(stream).await {
            return false;
        }
    }
}

impl Admission {
    /// A place for a connection just accepted, or `None` (counted) when it is refused at the
    /// connection cap.
    fn admit(&self) -> Option<Arc<super::limits::ConnState>> {
        let admitted = self.registry.admit();
        if admitted.is_none() {
            self.metrics.closed("connection_cap");
        }
        admitted
    }
}

/// Plain TCP connections, until `stop`.
pub fn tcp(
    listener: TcpListener,
    stop: CancellationToken,
    admission: Admission,
) -> ReceiverStream<io::Result<Connection<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let take = |stream: TcpStream| {
            let tx = tx.clone();
            let admission = admission.clone();
            async move {
                // At the cap, with every connection in use, this one is refused.
                let Some(state) = admission.admit() else {
                    return true;
                };
                let peer = stream.peer_addr().ok();
                let Admission {
                    metrics, limits, ..
                } = admission;
                let stream = Connection::new(stream, metrics, peer, state, limits);
                tx.send(Ok(stream)).await.is_ok()
            }
        };
        if accept_until(listener, &stop, take).await {
            // The listener is closed; the stream stays open until the server lets it go.
            tx.closed().await;
        }
    });
    ReceiverStream::new(rx)
}

/// TLS connections, each handshake in its own task with `acceptor`'s credentials of the
/// moment.
pub fn tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    stop: CancellationToken,
    admission: Admission,
) -> ReceiverStream<io::Result<Connection<TlsStream<TcpStream>>>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = Arc::new(acceptor);
    tokio::spawn(async move {
        let take = |stream: TcpStream| {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            let admission = admission.clone();
            async move {
                if tx.is_closed() {
                    return false;
                }
                let Some(state) = admission.admit() else {
                    return true;
                };
                let Admission {
                    metrics, limits, ..
                } = admission;
                tokio::spawn(async move {
                    let peer = stream.peer_addr().ok();
                    // The handshake counts against the preface deadline, and gives way at
                    // the connection cap like a connection that has not started a call.
                    let handshake =
                        tokio::time::timeout(limits.preface_timeout, acceptor.accept(stream));
                    let evicted = state.stop.notified();
                    let done = tokio::select! {
                        done = handshake => done,
                        () = evicted => {
                            metrics.closed("evicted_at_cap");
                            return;
                        }
                    };
                    match done {
                        Ok(Ok(tls)) => {
                            let connection = Connection::new(tls, metrics, peer, state, limits);
                            let _ = tx.send(Ok(connection)).await;
                        }
                        Ok(Err(e)) => {
                            metrics.closed("tls_handshake_failed");
                            tracing::debug!(error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics.closed("tls_handshake_timeout");
                            tracing::debug!("TLS handshake timed out");
                        }
                    }
                });
                true
            }
        };
        if accept_until(listener, &stop, take).await {
            tx.closed().await;
        }
    });
    ReceiverStream::new(rx)
}
