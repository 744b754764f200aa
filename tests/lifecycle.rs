//! How the service starts and stops: a failed listener stops the rest in order and the
//! process exits non-zero; `/readyz` waits for the store (the watch cache's first list).

mod common;

use batch_scaler::{
    app::{self, Listeners},
    store::{HraStore, MemoryStore, kubernetes::KubeStore},
};
use batch_scaler_testkit::{apiserver::Fault, cluster::TestCluster, fake_or_skip};
use common::*;
use std::{process::Stdio, sync::Arc, time::Duration};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_failed_grpc_listener_stops_the_probes_listener_and_serve_returns_the_error() {
    let settings = test_settings(Duration::from_millis(100));
    // A listener that can no longer accept anything (shut down under the server).
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    socket2::SockRef::from(&grpc)
        .shutdown(std::net::Shutdown::Read)
        .unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let store: Arc<dyn HraStore> = Arc::new(MemoryStore::new());
    let listeners = Listeners {
        grpc,
        http: Some(http),
    };
    let served = tokio::time::timeout(
        Duration::from_secs(10),
        app::serve(settings, store, listeners, std::future::pending()),
    )
    .await
    .expect("serve returned by itself, without a shutdown signal");
    let err = served.expect_err("a failed listener is an error");
    assert!(format!("{err:#}").contains("gRPC"), "{err:#}");
    assert!(
        tokio::net::TcpStream::connect(http_addr).await.is_err(),
        "the probes listener was stopped too"
    );
}

#[tokio::test]
async fn the_binary_refuses_tls_files_that_do_not_load_naming_the_flag() {
    let dir = std::env::temp_dir().join(format!("bs-bad-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not PEM").unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_batch-scaler"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&garbage)
        .arg("--tls-key")
        .arg(&garbage)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("exited by itself")
        .unwrap();
    assert!(!out.status.success(), "{:?}", out.status);
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("--tls-cert") && log.contains("garbage.pem"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn kube_readyz_waits_for_the_watch_cache_to_sync() {
    let c = TestCluster::start().await;
    let api = fake_or_skip!(c, "the watch cache's first list refused on purpose");
    c.create(hra_object(&c.namespace, "a", None)).await;
    // The first lists fail: the cache cannot sync until the watcher's back-off retries.
    for _ in 0..2 {
        api.fault_next("list", Fault::Status(500));
    }
    let store = KubeStore::new(c.client(), Duration::from_secs(2))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    let server =
        TestServer::start(Arc::new(store), test_settings(Duration::from_millis(100))).await;
    let (code, text) = http_get(server.http_addr, "/readyz").await;
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("watch cache"), "{text}");
    eventually(Duration::from_secs(20), "/readyz to turn ready", || async {
        http_get(server.http_addr, "/readyz").await.0 == 200
    })
    .await;
    assert!(
        api.count("list") >= 3,
        "the cache listed again after the failures"
    );
}
