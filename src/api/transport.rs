//! The gRPC server around the service: health, reflection (v1 and v1alpha), gRPC-Web with
//! CORS, TLS / mTLS, bearer tokens, message-size and stream limits.

use super::{
    auth::TokenAuth,
    dashboard::DashboardLayer,
    incoming,
    pb::{self, batch_scaler_server::BatchScalerServer},
    service::BatchScalerService,
    tls::TlsCredentials,
};
use crate::ops::traces;
use http::{HeaderName, HeaderValue, Method};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tonic::{service::Routes, transport::Server};
use tonic_health::server::HealthReporter;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    metrics::in_flight_requests::{InFlightRequests, InFlightRequestsCounter},
};

/// Why the gRPC server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The reflection service could not be built from our descriptors.
    #[error("building gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed (accept loop).
    #[error("gRPC server: {0}")]
    Server(#[from] tonic::transport::Error),
    /// The TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// How the gRPC port is exposed.
#[derive(Clone, Default)]
pub struct GrpcOptions {
    /// TLS (with client CA for mTLS), if configured; reloadable.
    pub tls: Option<Arc<TlsCredentials>>,
    /// Bearer tokens required on `BatchScaler` (health and reflection stay open).
    pub auth: TokenAuth,
    /// Origins allowed to call us from a browser (gRPC-Web).
    pub cors_origins: Vec<HeaderValue>,
    /// Largest decoded request message.
    pub max_message_bytes: usize,
    /// Most concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Host names browsers may use besides IP addresses and `localhost` (`*.` prefix: any
    /// subdomain).
    pub allowed_hosts: Vec<String>,
    /// Per-connection deadlines, the connection cap and the open-service budget.
    pub limits: super::limits::ConnectionLimits,
    /// HTTP/2 keepalive: a PING after this long without frames (zero: none).
    pub keepalive_interval: Duration,
    /// A connection whose PING is not answered within this is closed.
    pub keepalive_timeout: Duration,
    /// HTTP/2 flow-control window of each request stream (0: hyper's 1 MiB, on which h2's
    /// flood protection cuts fast producers' streams; `Settings` sets it).
    pub stream_window_bytes: u32,
    /// HTTP/2 flow-control window of a connection (h2's small-frame budget is half of it;
    /// 0: hyper's 1 MiB).
    pub connection_window_bytes: u32,
}

fn cors(origins: &[HeaderValue]) -> CorsLayer {
    let names = |list: &[&'static str]| {
        list.iter()
            .map(|h| HeaderName::from_static(h))
            .collect::<Vec<_>>()
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(names(&[
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "authorization",
            "connect-protocol-version",
            "traceparent",
            "tracestate",
            "connect-timeout-ms",
        ]))
        .expose_headers(names(&[
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
        ]))
        .max_age(Duration::from_secs(3600))
}

/// `BatchScaler` calls counted from their request until their answer is sent (or its stream
/// ends), so shutdown can wait for every waiting caller's answer to leave.
#[derive(Clone)]
struct Counted<S>(InFlightRequests<S>);

impl<S: tonic::server::NamedService> tonic::server::NamedService for Counted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, R> tower::Service<R> for Counted<S>
where
    InFlightRequests<S>: tower::Service<R>,
{
    type Response = <InFlightRequests<S> as tower::Service<R>>::Response;
    type Error = <InFlightRequests<S> as tower::Service<R>>::Error;
    type Future = <InFlightRequests<S> as tower::Service<R>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.0.call(request)
    }
}

/// The health reporter and the value it serves for our service.
pub async fn mark_serving(reporter: &HealthReporter, serving: bool) {
    if serving {
        reporter
            .set_serving::<BatchScalerServer<BatchScalerService>>()
            .await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
    } else {
        reporter
            .set_not_serving::<BatchScalerServer<BatchScalerService>>()
            .await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    }
}

/// Serves every gRPC service on `listener` until `shutdown`, then finishes open calls;
/// `calls` counts the `BatchScaler` calls whose answers are not sent yet. From
/// The span of one `BatchScaler` call, child of the caller's `traceparent` (gRPC metadata,
/// or a gRPC-Web header); none at all unless traces are exported.
fn rpc_span<B>(request: &http::Request<B>) -> tracing::Span {
    const SERVICE: &str = "batchscaler.v1.BatchScaler";
    let method = request
        .uri()
        .path()
        .strip_prefix("/batchscaler.v1.BatchScaler/");
    let Some(method) = method.filter(|_| traces::on()) else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "rpc",
        otel.name = %format_args!("{SERVICE}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = SERVICE,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    traces::set_remote_parent(&span, traces::extract(request.headers()));
    span
}

/// Notes the call's `grpc-status` on its span.
fn record_grpc_status(headers: &http::HeaderMap, span: &tracing::Span) {
    if let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    {
        span.record("rpc.grpc.status_code", code);
    }
}

/// `stop_accepting` on, new connections are refused (open ones go on).
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    service: BatchScalerService,
    options: GrpcOptions,
    calls: InFlightRequestsCounter,
    stop_accepting: tokio_util::sync::CancellationToken,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), TransportError> {
    let GrpcOptions {
        tls,
        auth,
        cors_origins,
        max_message_bytes,
        max_concurrent_streams,
        stream_window_bytes,
        connection_window_bytes,
        allowed_hosts,
        limits,
        keepalive_interval,
        keepalive_timeout,
    } = options;
    let registry = Arc::new(super::limits::Registry::new(&limits));
    tracing::info!(
        max_connections = registry.cap(),
        file_limit = super::limits::file_limit(),
        max_streams_per_connection = max_concurrent_streams,
        "connection limits"
    );
    let admission = incoming::Admission {
        metrics: service.metrics.connections.clone(),
        registry,
        limits,
    };
    let keepalive = (!keepalive_interval.is_zero()).then_some(keepalive_interval);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let scaler = Counted(InFlightRequests::new(
        super::authorize::Authorized::new(
            service
                .into_server()
                .max_decoding_message_size(max_message_bytes),
            auth,
        ),
        calls,
    ));
    let routes = Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(scaler);
    // Windows set, never adaptive: h2 closes a whole connection (GOAWAY ENHANCE_YOUR_CALM
    // "too_many_data_frames") once its unread small DATA frames cost more than half the
    // connection window, and gRPC clients send each streamed message as its own small frame.
    // A small stream window slows a fast producer by flow control long before that; a large
    // connection window gives many such streams room (config/defaults.rs has the figures).
    let router = Server::builder()
        .accept_http1(true)
        .max_concurrent_streams(max_concurrent_streams)
        .initial_stream_window_size(Some(stream_window_bytes).filter(|&w| w > 0))
        .initial_connection_window_size(Some(connection_window_bytes).filter(|&w| w > 0))
        .http2_adaptive_window(Some(false))
        // Dead peers are found by PINGs and dropped.
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(keepalive.map(|_| keepalive_timeout))
        .layer(super::calls::CallLayer::new(limits.open_streams))
        .layer(super::browser::BrowserLayer::new(
            &allowed_hosts,
            max_message_bytes + 5,
        ))
        .layer(cors(&cors_origins))
        // A unary request over --max-message-bytes is refused by tonic before any handler
        // runs, with OUT_OF_RANGE: RESOURCE_EXHAUSTED, as the gRPC spec has it.
        .layer(tower::util::MapResponseLayer::new(
            super::error::transport_answer::<tonic::body::Body>,
        ))
        .layer(DashboardLayer)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(
            // Spans only: the call's outcome is logged and counted elsewhere, and a client's
            // error is no error of ours to log.
            tower_http::trace::TraceLayer::new_for_grpc()
                .make_span_with(rpc_span)
                .on_request(())
                .on_response(
                    |response: &http::Response<_>, _: Duration, span: &tracing::Span| {
                        // A trailers-only answer (an error) carries its status here.
                        record_grpc_status(response.headers(), span);
                    },
                )
                .on_body_chunk(())
                .on_eos(
                    |trailers: Option<&http::HeaderMap>, _: Duration, span: &tracing::Span| {
                        if let Some(trailers) = trailers {
                            record_grpc_status(trailers, span);
                        }
                    },
                )
                .on_failure(()),
        )
        .add_routes(routes);
    // Our own accept loops: TLS handshakes take the credentials current at that moment, and
    // a listener that cannot accept any more ends the server instead of spinning.
    match tls {
        Some(credentials) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(credentials.server_config()?);
            router
                .serve_with_incoming_shutdown(
                    incoming::tls(listener, acceptor, stop_accepting, admission),
                    shutdown,
                )
                .await?
        }
        None => {
            router
                .serve_with_incoming_shutdown(
                    incoming::tcp(listener, stop_accepting, admission),
                    shutdown,
                )
                .await?
        }
    }
    Ok(())
}
