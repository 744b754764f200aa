//! A raw HTTP/2 client for tests that need what a gRPC client will not do: every message
//! (or every byte) in its own DATA frame, answers left unread, frames paced only by flow
//! control.

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::poll_fn;
use h2::client::SendRequest;
use prost::Message;
use std::{net::SocketAddr, time::Duration};
use tokio::{net::TcpStream, task::JoinHandle};

/// A connection to `addr`: its request sender and the task driving it, which ends with the
/// connection's error (the GOAWAY it was sent, say). Its own small-frame budget is raised: it
/// may leave answers unread, and tests are about the server's budget, not this client's.
pub async fn connect(addr: SocketAddr) -> (SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (send, conn) = h2::client::Builder::new()
        .data_frame_budget(usize::MAX / 2)
        .handshake(tcp)
        .await
        .unwrap();
    (send, tokio::spawn(conn))
}

/// The request head of a `BatchScaler` call.
pub fn grpc_call(addr: SocketAddr, method: &str) -> http::Request<()> {
    http::Request::post(format!("http://{addr}/batchscaler.v1.BatchScaler/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// One gRPC message on the wire: the 5-byte prefix and the encoded message.
pub fn framed(message: &impl Message) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(0);
    b.put_u32(message.encoded_len() as u32);
    message.encode(&mut b).unwrap();
    b.freeze()
}

/// Sends `data` as one DATA frame once flow control allows: `Ok(false)` if the window was
/// not granted within `patience` or the stream's sending side closed, `Err` if the
/// connection broke.
pub async fn send_frame(
    stream: &mut h2::SendStream<Bytes>,
    data: Bytes,
    patience: Duration,
) -> Result<bool, h2::Error> {
    stream.reserve_capacity(data.len());
    let granted = tokio::time::timeout(patience, async {
        loop {
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(n)) if n >= data.len() => return Ok(true),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Ok(false),
            }
        }
    })
    .await;
    match granted {
        Err(_) | Ok(Ok(false)) => Ok(false),
        Ok(Err(e)) => Err(e),
        Ok(Ok(true)) => stream.send_data(data, false).map(|()| true),
    }
}

/// Reads a whole answer body (releasing its window as it goes) and its status: the trailers,
/// or the headers of a trailers-only answer (an error).
pub async fn read_answer(answer: http::Response<h2::RecvStream>) -> (Vec<u8>, http::HeaderMap) {
    let (head, mut body) = answer.into_parts();
    if head.headers.contains_key("grpc-status") {
        return (Vec::new(), head.headers);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    (bytes, trailers)
}
