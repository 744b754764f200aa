//! Limits a careless or hostile client meets on the gRPC port, with raw TCP and h2 clients
//! where a gRPC client cannot misbehave enough: streams per connection (and the small budget
//! of the open health and reflection services), connections that stay silent, stop after the
//! HTTP/2 preface or the TLS handshake, or go idle, and the process-wide connection cap under a
//! small file limit.

mod common;

use batch_scaler::{api::pb, config::Settings, store::MemoryStore};
use batch_scaler_testkit::{
    h2_raw::{self, framed},
    process::ServiceProcess,
};
use common::*;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn server(settings: Settings) -> TestServer {
    let store = MemoryStore::with_objects([hra_object("ci", "a", None)]).unwrap();
    TestServer::with_store(store, settings).await.0
}

fn short_deadlines() -> Settings {
    let mut settings = test_settings(Duration::from_millis(100));
    settings.grpc.limits.preface_timeout = Duration::from_millis(800);
    settings.grpc.limits.idle_timeout = Duration::from_millis(1500);
    settings
}

/// Waits until the peer closes `tcp` (reads its end); how long that took.
async fn closed_within(mut tcp: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("still open after {limit:?}"));
    started.elapsed()
}

fn closed(metrics: &str, reason: &str) -> f64 {
    sample(
        metrics,
        &format!("batch_scaler_connections_closed_total{{reason=\"{reason}\"}}"),
    )
}

#[tokio::test]
async fn silent_preface_only_and_idle_connections_are_closed_within_their_deadlines() {
    let server = server(short_deadlines()).await;
    // Silent from the start.
    let silent = TcpStream::connect(server.addr).await.unwrap();
    // The HTTP/2 preface and SETTINGS, then nothing.
    let mut preface = TcpStream::connect(server.addr).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let (silent, preface) = tokio::join!(
        closed_within(silent, Duration::from_secs(5)),
        closed_within(preface, Duration::from_secs(5))
    );
    assert!(silent >= Duration::from_millis(700), "{silent:?}");
    assert!(preface >= Duration::from_millis(700), "{preface:?}");
    // One call, then idle: closed once the idle timeout passes with no call open, not before.
    let (send, conn) = h2_raw::connect(server.addr).await;
    let mut ready = send.ready().await.unwrap();
    let (answer, mut body) = ready
        .send_request(h2_raw::grpc_call(server.addr, "GetStats"), false)
        .unwrap();
    body.send_data(framed(&pb::GetStatsRequest {}), true)
        .unwrap();
    let (_, status) = h2_raw::read_answer(answer.await.unwrap()).await;
    assert_eq!(status["grpc-status"], "0");
    let started = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle connection was closed");
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(1300), "{idle:?}");
    eventually(Duration::from_secs(5), "the closes counted", || async {
        let metrics = scrape(server.http_addr).await;
        closed(&metrics, "preface_timeout") == 2.0 && closed(&metrics, "idle_timeout") == 1.0
    })
    .await;
}

#[tokio::test]
async fn a_long_call_keeps_its_connection_past_the_idle_timeout() {
    let server = server(short_deadlines()).await;
    let mut client = server.client().await;
    let mut watch = client
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    client.scale(ev("ci", "a", 1)).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_some(), "the watch is still open");
}

async fn tls_pair() -> (Settings, String, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path("cert.pem"), dir.path("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut settings = short_deadlines();
    settings.grpc.tls = Some(
        batch_scaler::api::tls::TlsCredentials::load(batch_scaler::api::tls::TlsFiles {
            cert: cert_path,
            key: key_path,
            client_ca: None,
        })
        .unwrap(),
    );
    (settings, cert.pem(), dir)
}

/// A scratch directory removed when dropped.
mod tempdir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("bs-limits-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        pub fn path(&self, name: &str) -> std::path::PathBuf {
            self.0.join(name)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn a_connection_silent_after_its_tls_handshake_is_closed() {
    let (settings, ca, _dir) = tls_pair().await;
    let server = server(settings).await;
    // A real client works.
    pb::batch_scaler_client::BatchScalerClient::new(tls_channel(server.addr, &ca).await)
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap();
    // A handshake that is never finished: the deadline covers it.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    closed_within(half, Duration::from_secs(5)).await;
    await_sample(
        server.http_addr,
        "batch_scaler_connections_closed_total{reason=\"tls_handshake_timeout\"}",
        1.0,
    )
    .await;
}

#[tokio::test]
async fn streams_per_connection_and_the_open_services_budget_are_capped() {
    let server = server(test_settings(Duration::from_millis(100))).await;
    let (send, _conn) = h2_raw::connect(server.addr).await;
    // The open services (no token needed): 32 at once per connection, then RESOURCE_EXHAUSTED.
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let mut ready = send.clone().ready().await.unwrap();
        let request = http::Request::post(format!(
            "http://{}/grpc.health.v1.Health/Watch",
            server.addr
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        let (answer, mut body) = ready.send_request(request, false).unwrap();
        body.send_data(
            framed(&tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            }),
            true,
        )
        .unwrap();
        let answer = answer.await.unwrap();
        match answer.headers().get("grpc-status").map(|v| v.as_bytes()) {
            Some(b"8") => refused += 1,
            None => open.push(answer),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((open.len(), refused), (32, 8));
    // The connection's stream cap: 512 calls at once; the 513th waits in the client.
    drop(open);
    let (send, _conn) = h2_raw::connect(server.addr).await;
    let before = batch_scaler_testkit::process::rss_kib("self");
    let mut watches = Vec::new();
    for _ in 0..512 {
        let mut ready = send.clone().ready().await.unwrap();
        let (answer, mut body) = ready
            .send_request(h2_raw::grpc_call(server.addr, "WatchBatches"), false)
            .unwrap();
        body.send_data(framed(&pb::WatchBatchesRequest::default()), true)
            .unwrap();
        watches.push(answer);
    }
    let mut answers = Vec::new();
    for w in watches {
        answers.push(w.await.unwrap());
    }
    let after = batch_scaler_testkit::process::rss_kib("self");
    eprintln!(
        "512 WatchBatches streams on one connection: RSS {before} KiB -> {after} KiB ({:.1} KiB a stream, client included)",
        after.saturating_sub(before) as f64 / 512.0
    );
    // The server announced the cap (h2 refuses streams past it from a client that ignores it).
    assert_eq!(send.current_max_send_streams(), 512);
    let mut ready = send.clone().ready().await.unwrap();
    let (queued, mut body) = ready
        .send_request(h2_raw::grpc_call(server.addr, "WatchBatches"), false)
        .unwrap();
    body.send_data(framed(&pb::WatchBatchesRequest::default()), true)
        .unwrap();
    let mut queued = Box::pin(queued);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut queued)
            .await
            .is_err(),
        "a 513th stream was answered"
    );
    // One ends: the waiting one goes through.
    drop(answers.pop());
    tokio::time::timeout(Duration::from_secs(5), queued)
        .await
        .expect("answered once a stream was free")
        .unwrap();
}

#[tokio::test]
async fn at_the_connection_cap_under_a_small_file_limit_a_new_client_is_served() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_batch-scaler"));
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--preface-timeout",
        "60s",
    ]);
    // SAFETY: setrlimit only changes the child's own limit, before it runs the binary.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let service = ServiceProcess::spawn(command).await;
    let addr: SocketAddr = service.addr;
    // Hundreds of silent connections, more than the cap of 256 - 64 = 192.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // A new client is served at once: a silent connection gives way to it.
    let started = Instant::now();
    let mut client = pb::batch_scaler_client::BatchScalerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client.get_stats(pb::GetStatsRequest {}).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let metrics = scrape(service.metrics).await;
    let (evicted, open) = (
        closed(&metrics, "evicted_at_cap"),
        sample(&metrics, "batch_scaler_connections_open"),
    );
    eprintln!(
        "cap 192 under a file limit of 256: {evicted} silent connections gave way, {open} open"
    );
    assert!(evicted >= 1.0, "{evicted}");
    assert!(open <= 192.0, "{open}");
    service.kill().await;
}
