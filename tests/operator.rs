//! The operator and producer surface over real connections: health, reflection, metrics,
//! tokens, namespace allowlist, message limits, gRPC-Web with CORS, TLS and mTLS.

mod common;

use batch_scaler::{
    api::{
        auth::TokenAuth,
        pb::{self, batch_scaler_client::BatchScalerClient},
        transport::GrpcOptions,
    },
    config::Settings,
    domain::namespaces::Allowlist,
    store::StoreError,
};
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const WINDOW: Duration = Duration::from_millis(100);

fn store() -> FaultyStore {
    FaultyStore::with_objects([hra_object("ci", "a", None), hra_object("prod", "p", None)]).unwrap()
}

async fn channel(server: &TestServer) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn health(ch: Channel, service: &str) -> ServingStatus {
    let req = HealthCheckRequest {
        service: service.into(),
    };
    let status = HealthClient::new(ch)
        .check(req)
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

#[tokio::test]
async fn health_reflection_and_metrics() {
    let settings = Settings {
        shutdown_grace: Duration::from_millis(500),
        ..test_settings(WINDOW)
    };
    let (mut server, store) = TestServer::with_store(store(), settings).await;
    let ch = channel(&server).await;
    assert_eq!(health(ch.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        health(ch.clone(), "batchscaler.v1.BatchScaler").await,
        ServingStatus::Serving
    );

    // Reflection, both versions, lists our service and health.
    use tonic_reflection::pb::{v1, v1alpha};
    let req = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(ch.clone());
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("not a list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"batchscaler.v1.BatchScaler") && names.contains(&"grpc.health.v1.Health"),
        "{names:?}"
    );
    let req = v1alpha::ServerReflectionRequest {
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "batchscaler.v1.ScaleEvent".into(),
            ),
        ),
        ..Default::default()
    };
    let mut old = v1alpha::server_reflection_client::ServerReflectionClient::new(ch.clone());
    let mut answers = old
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files) =
        answer
    else {
        panic!("not a file descriptor response: {answer:?}");
    };
    // The descriptor keeps the proto's comments, so `grpcurl describe` shows them.
    let comments: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            <prost_types::FileDescriptorProto as prost::Message>::decode(&bytes[..]).unwrap()
        })
        .filter_map(|file| file.source_code_info)
        .flat_map(|info| info.location)
        .filter_map(|l| l.leading_comments.or(l.trailing_comments))
        .collect();
    assert!(
        comments.iter().any(|c| c.contains("batches them per HRA")),
        "{comments:?}"
    );

    // Metrics after one event and one batch.
    let mut watch = BatchScalerClient::new(ch.clone())
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut scaler = BatchScalerClient::new(ch.clone());
    scaler.scale(ev("ci", "a", 1)).await.unwrap();
    assert!(scaler.scale(ev("ci", "A", 1)).await.is_err());
    watch.next().await.unwrap().unwrap();
    let (code, text) = http_get(server.http_addr, "/metrics").await;
    assert_eq!(code, 200);
    for line in [
        "batch_scaler_events_received_total{result=\"accepted\"} 1",
        "batch_scaler_events_received_total{result=\"invalid\"} 1",
        "batch_scaler_batches_total{outcome=\"applied\"} 1",
        "batch_scaler_write_duration_seconds_count 1",
        "batch_scaler_event_age_at_apply_seconds_count 1",
        "batch_scaler_watchers 1",
        "batch_scaler_pending_hras 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(http_get(server.http_addr, "/healthz").await.0, 200);
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 200);

    // Shutdown with a batch still retrying: NOT_SERVING and not ready while it drains.
    store.fail_next_writes(&key("ci", "a"), 100, StoreError::transient("down"));
    scaler.scale(ev("ci", "a", 1)).await.unwrap();
    let mut health_watch = HealthClient::new(ch.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health_watch.next().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let http_addr = server.http_addr;
    let stopping = tokio::spawn(async move { server.shutdown().await });
    assert_eq!(
        health_watch.next().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    assert_eq!(http_get(http_addr, "/readyz").await.0, 503);
    drop(health_watch);
    let started = std::time::Instant::now();
    stopping.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tokens_guard_the_api_but_not_health_or_reflection() {
    let settings = Settings {
        grpc: GrpcOptions {
            auth: TokenAuth::parse("first\nsecond\n").unwrap(),
            ..test_settings(WINDOW).grpc
        },
        ..test_settings(WINDOW)
    };
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let ch = channel(&server).await;
    let mut client = BatchScalerClient::new(ch.clone());
    let err = client.scale(ev("ci", "a", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let with = |token: &str| {
        let mut r = Request::new(ev("ci", "a", 1));
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    assert_eq!(
        client.scale(with("wrong")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    client.scale(with("second")).await.unwrap();
    let mut watch = Request::new(pb::WatchBatchesRequest::default());
    watch
        .metadata_mut()
        .insert("authorization", "Bearer first".parse().unwrap());
    client.watch_batches(watch).await.unwrap();
    assert_eq!(health(ch, "").await, ServingStatus::Serving);
}

#[tokio::test]
async fn namespaces_outside_the_allowlist_are_denied_and_nothing_is_queued() {
    let settings = Settings {
        allowed: Allowlist::new(["ci".to_owned()]),
        ..test_settings(WINDOW)
    };
    let (server, store) = TestServer::with_store(store(), settings).await;
    let mut client = BatchScalerClient::new(channel(&server).await);
    let mut watch = client
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        client.scale(ev("prod", "p", 1)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let err = client
        .publish(tokio_stream::iter([
            ev("ci", "a", 1),
            ev("prod", "p", 1),
            ev("ci", "a", 1),
        ]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().starts_with("events[1]: namespace \"prod\""),
        "{}",
        err.message()
    );
    let r = watch.next().await.unwrap().unwrap();
    assert_eq!((r.namespace.as_str(), r.events), ("ci", 1));
    // Nothing queued or running any more: the refused event never reached a batch.
    eventually(Duration::from_secs(5), "the batcher to be idle", || async {
        let text = scrape(server.http_addr).await;
        sample(&text, "batch_scaler_pending_hras") == 0.0
            && sample(&text, "batch_scaler_applies_in_flight") == 0.0
    })
    .await;
    assert!(
        store.object(&key("prod", "p")).unwrap()["spec"]
            .get("capacityReservations")
            .is_none()
    );
    let denied = pb::TargetRef {
        namespace: "prod".into(),
        name: "p".into(),
    };
    assert_eq!(
        client.get_target(denied).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let all = client
        .list_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.targets
            .iter()
            .map(|t| t.namespace.as_str())
            .collect::<Vec<_>>(),
        ["ci"]
    );
    let other = pb::WatchBatchesRequest {
        namespace: "prod".into(),
        ..Default::default()
    };
    assert_eq!(
        client.watch_batches(other).await.unwrap_err().code(),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let (server, _store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    let mut client = BatchScalerClient::new(channel(&server).await);
    let big = pb::ScaleEvent {
        event_id: "x".repeat(70 * 1024),
        ..ev("ci", "a", 1)
    };
    // The gRPC spec's status for a message over the limit, naming the limit: on a unary call
    // (refused before the handler), and on each kind of stream.
    let err = client.scale(big.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("--max-message-bytes (65536)"),
        "{err:?}"
    );
    let err = client
        .publish(tokio_stream::iter(vec![ev("ci", "a", 1), big]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("--max-message-bytes (65536)"),
        "{err:?}"
    );
    let job = pb::WorkflowJob {
        event_id: "x".repeat(70 * 1024),
        ..queued_job("octo-org/web", &["self-hosted"], "1")
    };
    let mut answers = client
        .scale_jobs(tokio_stream::iter(vec![job]))
        .await
        .unwrap()
        .into_inner();
    let err = answers.message().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    client.scale(ev("ci", "a", 1)).await.unwrap();
}

#[tokio::test]
async fn a_huge_bad_value_is_quoted_short_and_the_error_names_the_field() {
    let (server, _store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    let mut client = BatchScalerClient::new(channel(&server).await);
    for field in ["namespace", "name", "repository"] {
        let huge = "A".repeat(20_000);
        let mut event = ev("ci", "a", 1);
        match field {
            "namespace" => event.namespace = huge,
            "name" => event.name = huge,
            _ => event.repository = huge,
        }
        let err = client.scale(event).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("(20000 characters)"),
            "{}",
            err.message()
        );
        assert!(
            err.message().len() < 400,
            "{field}: {} bytes",
            err.message().len()
        );
    }
    let job = pb::WorkflowJob {
        repository: format!("octo-org/{}", "r".repeat(60_000)),
        ..queued_job("octo-org/web", &["self-hosted"], "1")
    };
    let err = client.route_job(job).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("repository: "),
        "{}",
        err.message()
    );
    assert!(err.message().len() < 400, "{} bytes", err.message().len());
}

#[tokio::test]
async fn concurrent_streams_per_connection_are_capped() {
    let settings = Settings {
        grpc: GrpcOptions {
            max_concurrent_streams: 1,
            ..test_settings(WINDOW).grpc
        },
        ..test_settings(WINDOW)
    };
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let ch = channel(&server).await;
    let mut client = BatchScalerClient::new(ch.clone());
    let held = client
        .watch_batches(pb::WatchBatchesRequest::default())
        .await
        .unwrap();
    // The connection's only stream is taken: a second call on it has to wait.
    let mut second = BatchScalerClient::new(ch.clone());
    let waiting =
        tokio::time::timeout(Duration::from_millis(300), second.scale(ev("ci", "a", 1))).await;
    assert!(waiting.is_err(), "a second stream was opened: {waiting:?}");
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), second.scale(ev("ci", "a", 1)))
        .await
        .expect("runs once the stream is free")
        .unwrap();
    // Another connection has its own allowance.
    BatchScalerClient::new(channel(&server).await)
        .scale(ev("ci", "a", 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_dashboard_is_served_on_the_grpc_port() {
    let (server, _store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    let (code, page) = http_get(server.addr, "/").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("text/html") && page.contains("<title>batch-scaler</title>"),
        "{page}"
    );
    let (code, js) = http_get(server.addr, "/app.js").await;
    assert_eq!(code, 200);
    assert!(js.contains("text/javascript") && js.contains("watchBatches"));
    // gRPC on the same port is unaffected.
    BatchScalerClient::new(channel(&server).await)
        .scale(ev("ci", "a", 1))
        .await
        .unwrap();
}

/// A raw HTTP/1.1 request to `addr` with `Host: host`: the whole response.
async fn http1(addr: std::net::SocketAddr, head: &str, host: &str, body: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).to_lowercase()
}

#[tokio::test]
async fn the_dashboard_is_sent_with_security_headers() {
    let (server, _store) = TestServer::with_store(store(), test_settings(WINDOW)).await;
    for path in ["/", "/app.js"] {
        let page = http1(
            server.addr,
            &format!("GET {path} HTTP/1.1"),
            "127.0.0.1",
            b"",
        )
        .await;
        assert!(page.starts_with("http/1.1 200"), "{page}");
        for header in [
            "content-security-policy: default-src 'self'; style-src 'self' 'sha256-",
            "frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
        ] {
            assert!(page.contains(header), "{path}: {header}");
        }
    }
}

#[tokio::test]
async fn browsers_are_answered_only_under_an_ip_localhost_or_an_allowed_host() {
    let settings = Settings {
        grpc: GrpcOptions {
            allowed_hosts: vec!["scaler.example.com".into()],
            ..test_settings(WINDOW).grpc
        },
        ..test_settings(WINDOW)
    };
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let web = grpc_web_frame(&pb::TargetRef {
        namespace: "ci".into(),
        name: "a".into(),
    });
    let post = "POST /batchscaler.v1.BatchScaler/GetTarget HTTP/1.1\r\nContent-Type: application/grpc-web+proto";
    for host in [
        "127.0.0.1:1",
        "[::1]:50051",
        "localhost:8080",
        "scaler.example.com",
    ] {
        let page = http1(server.addr, "GET / HTTP/1.1", host, b"").await;
        assert!(page.starts_with("http/1.1 200"), "{host}: {page}");
        let answer = http1(server.addr, post, host, &web).await;
        assert!(answer.contains("grpc-status:0"), "{host}: {answer}");
    }
    // A rebound name: refused, saying how to allow it.
    let page = http1(server.addr, "GET / HTTP/1.1", "attacker.example", b"").await;
    assert!(page.starts_with("http/1.1 403"), "{page}");
    assert!(page.contains("--allowed-hosts attacker.example"), "{page}");
    let answer = http1(server.addr, post, "attacker.example:50051", &web).await;
    assert!(
        answer.starts_with("http/1.1 403") && answer.contains("grpc-status: 7"),
        "{answer}"
    );
    // Native gRPC does not care what the authority says.
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .origin("http://attacker.example".parse().unwrap())
        .connect()
        .await
        .unwrap();
    BatchScalerClient::new(channel)
        .scale(ev("ci", "a", 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn grpc_web_without_a_token_reads_status_16_over_http2_too() {
    use batch_scaler_testkit::h2_raw;
    let settings = Settings {
        grpc: GrpcOptions {
            auth: TokenAuth::parse("secret\n").unwrap(),
            ..test_settings(WINDOW).grpc
        },
        ..test_settings(WINDOW)
    };
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let frame = bytes::Bytes::from(grpc_web_frame(&pb::TargetRef {
        namespace: "ci".into(),
        name: "a".into(),
    }));
    let (send, _conn) = h2_raw::connect(server.addr).await;
    for i in 0..5 {
        let mut send = send.clone().ready().await.unwrap();
        let request = http::Request::post("http://127.0.0.1/batchscaler.v1.BatchScaler/GetTarget")
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(())
            .unwrap();
        let (answer, mut body) = send.send_request(request, false).unwrap();
        // The body comes in two pieces, the second after the server could have answered.
        body.send_data(frame.slice(..3), false).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        body.send_data(frame.slice(3..), true).unwrap();
        let answer = answer.await.unwrap_or_else(|e| panic!("call {i}: {e:?}"));
        let (_, status) = h2_raw::read_answer(answer).await;
        assert_eq!(
            status.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"16"[..]),
            "call {i}: {status:?}"
        );
    }
}

fn grpc_web_frame(msg: &impl prost::Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test]
async fn grpc_web_and_cors_work_over_http1() {
    let settings = Settings {
        grpc: GrpcOptions {
            cors_origins: vec!["http://dashboard.example".parse().unwrap()],
            ..test_settings(WINDOW).grpc
        },
        ..test_settings(WINDOW)
    };
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let body = grpc_web_frame(&pb::TargetRef {
        namespace: "ci".into(),
        name: "a".into(),
    });
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /batchscaler.v1.BatchScaler/GetTarget HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nOrigin: http://dashboard.example\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_lowercase()
            .contains("access-control-allow-origin: http://dashboard.example"),
        "{text}"
    );
    assert!(text.contains("grpc-status:0"), "trailer frame: {text}");

    // A preflight from an origin not on the list gets no CORS grant.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        b"OPTIONS /batchscaler.v1.BatchScaler/GetTarget HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\
          Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert!(
        !String::from_utf8_lossy(&out)
            .to_lowercase()
            .contains("access-control-allow-origin")
    );
}

#[tokio::test]
async fn tls_with_client_certificates() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["producer".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("bs-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    // Read from files by the flags, as the binary does.
    let args = <batch_scaler::config::Args as clap::Parser>::try_parse_from([
        "batch-scaler".into(),
        "--tls-cert".into(),
        write("server.pem", server_cert.pem()),
        "--tls-key".into(),
        write("server.key", server_key.serialize_pem()),
        "--tls-client-ca".into(),
        write("ca.pem", ca.pem()),
    ]
        as [std::path::PathBuf; 7])
    .unwrap();
    let tls = args.settings().unwrap().grpc.tls.expect("TLS configured");
    let settings = Settings {
        grpc: GrpcOptions {
            tls: Some(tls),
            ..test_settings(WINDOW).grpc
        },
        ..test_settings(WINDOW)
    };
    let (server, _store) = TestServer::with_store(store(), settings).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let base = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    let with_cert = base.clone().identity(Identity::from_pem(
        client_cert.pem(),
        client_key.serialize_pem(),
    ));
    let ch = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(with_cert)
        .unwrap()
        .connect()
        .await
        .unwrap();
    BatchScalerClient::new(ch)
        .scale(ev("ci", "a", 1))
        .await
        .unwrap();
    // Without a client certificate the handshake (or the first call) fails.
    let refused = async {
        let ch = Channel::from_shared(url)
            .unwrap()
            .tls_config(base)?
            .connect()
            .await?;
        BatchScalerClient::new(ch)
            .scale(ev("ci", "a", 1))
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        anyhow::Ok(())
    };
    assert!(refused.await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}
