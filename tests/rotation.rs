//! Credentials rotate without a restart: a certificate renewed the way the kubelet updates a
//! Secret volume is served to new connections while open streams go on; a broken new key is
//! refused (the old certificate stays) and counted; removed tokens are refused from the next
//! call on; the expiry gauge follows the certificate served.

mod common;

use batch_scaler::{
    api::pb::{self, batch_scaler_client::BatchScalerClient},
    config::Args,
};
use clap::Parser;
use common::*;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, IsCa, Issuer, KeyPair, SerialNumber,
    date_time_ymd,
};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};
use tonic::{Code, Request, transport::Channel};

struct Ca {
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert,
        issuer: Issuer::new(params, key),
    }
}

/// A certificate for `localhost` with this serial, valid until the first of January of
/// `until_year`; its PEM and its key's PEM.
fn leaf(ca: &Ca, serial: u64, until_year: i32) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_after = date_time_ymd(until_year, 1, 1);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes `files` into `dir` as the kubelet updates a Secret volume: a new timestamped
/// directory, a `..data` symlink repointed at it atomically (a rename over it), and the
/// visible names linking through `..data`.
fn kubelet_write(dir: &Path, generation: u32, files: &[(&str, &str)]) {
    let version = format!("..2026_11_29_00_00_{generation:02}.{generation}");
    std::fs::create_dir_all(dir.join(&version)).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(&version).join(name), content).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bs-{what}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The serial of the certificate a new TLS connection is served.
async fn served_serial(addr: std::net::SocketAddr, ca: &Ca) -> u64 {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.tbs_certificate
        .raw_serial()
        .iter()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

async fn tls_client(addr: std::net::SocketAddr, ca: &Ca) -> BatchScalerClient<Channel> {
    BatchScalerClient::new(tls_channel(addr, &ca.cert.pem()).await)
}

fn settings_from(flags: &[&str]) -> batch_scaler::config::Settings {
    let args =
        Args::try_parse_from(std::iter::once("batch-scaler").chain(flags.iter().copied())).unwrap();
    let mut settings = args.settings().unwrap();
    let test = test_settings(Duration::from_millis(100));
    settings.engine = test.engine;
    settings
}

fn store() -> FaultyStore {
    FaultyStore::with_objects([hra_object("ci", "a", None)]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_to_new_connections_while_open_streams_go_on() {
    let ca = ca();
    let dir = temp_dir("tls");
    let (cert1, key1) = leaf(&ca, 1, 2030);
    kubelet_write(&dir, 1, &[("tls.crt", &cert1), ("tls.key", &key1)]);
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    // An hour between periodic re-reads: only the watch can make the swap seen quickly.
    let settings = settings_from(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--reload-interval",
        "1h",
    ]);
    let (server, _store) = TestServer::with_store(store(), settings).await;
    assert_eq!(served_serial(server.addr, &ca).await, 1);
    let mut open = tls_client(server.addr, &ca).await;
    let mut results = open
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();

    // cert-manager renews it; the kubelet swaps the Secret's files.
    let (cert2, key2) = leaf(&ca, 2, 2031);
    let swapped = Instant::now();
    kubelet_write(&dir, 2, &[("tls.crt", &cert2), ("tls.key", &key2)]);
    eventually(
        Duration::from_secs(10),
        "the new certificate served",
        || async { served_serial(server.addr, &ca).await == 2 },
    )
    .await;
    let latency = swapped.elapsed();
    eprintln!("rotation: a new connection got the renewed certificate {latency:?} after the swap");
    // The stream opened before goes on, on its old connection.
    tls_client(server.addr, &ca)
        .await
        .scale(ev("ci", "a", 1))
        .await
        .unwrap();
    assert_eq!(recv(&mut results).await.added, 1);
    open.scale(ev("ci", "a", 1)).await.unwrap();

    // The gauge follows the certificate served (valid until 2031-01-01).
    let until = chrono::DateTime::parse_from_rfc3339("2031-01-01T00:00:00Z")
        .unwrap()
        .timestamp();
    let metrics = scrape(server.http_addr).await;
    let left = sample(&metrics, "batch_scaler_tls_certificate_expiry_seconds");
    let want = (until - chrono::Utc::now().timestamp()) as f64;
    assert!((left - want).abs() < 120.0, "{left} against {want}");
    let ok = format!(
        "batch_scaler_credentials_reloads_total{{file=\"{}\",result=\"ok\"}}",
        cert.display()
    );
    assert_eq!(sample(&metrics, &ok), 1.0, "{metrics}");

    // A broken key (half written): refused, counted, and the renewed certificate stays.
    let (cert3, _) = leaf(&ca, 3, 2032);
    kubelet_write(
        &dir,
        3,
        &[
            ("tls.crt", &cert3),
            ("tls.key", "-----BEGIN PRIVATE KEY-----\nMIIE"),
        ],
    );
    let error = format!(
        "batch_scaler_credentials_reloads_total{{file=\"{}\",result=\"error\"}}",
        key.display()
    );
    eventually(
        Duration::from_secs(10),
        "the broken key counted",
        || async { sample(&scrape(server.http_addr).await, &error) == 1.0 },
    )
    .await;
    assert_eq!(served_serial(server.addr, &ca).await, 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_removed_token_is_refused_from_the_next_call_and_an_added_one_taken() {
    let dir = temp_dir("tokens");
    kubelet_write(&dir, 1, &[("tokens", "alpha\nbeta\n")]);
    let path = dir.join("tokens");
    let settings = settings_from(&[
        "--auth-token-file",
        path.to_str().unwrap(),
        "--reload-interval",
        "1h",
    ]);
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let mut client = server.client().await;
    let call = |token: &'static str| {
        let mut request = Request::new(ev("ci", "a", 1));
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    client.scale(call("alpha")).await.unwrap();
    kubelet_write(&dir, 2, &[("tokens", "beta\ngamma\n")]);
    eventually(Duration::from_secs(10), "alpha refused", || {
        let mut client = client.clone();
        async move {
            client
                .scale(call("alpha"))
                .await
                .is_err_and(|e| e.code() == Code::Unauthenticated)
        }
    })
    .await;
    client.scale(call("gamma")).await.unwrap();
    // An empty file (a bad update) leaves the tokens in use.
    kubelet_write(&dir, 3, &[("tokens", "# nothing\n")]);
    let error = format!(
        "batch_scaler_credentials_reloads_total{{file=\"{}\",result=\"error\"}}",
        path.display()
    );
    eventually(
        Duration::from_secs(10),
        "the empty file counted",
        || async { sample(&scrape(server.http_addr).await, &error) == 1.0 },
    )
    .await;
    client.scale(call("gamma")).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
