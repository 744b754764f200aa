//! The live dashboard page, embedded in the binary (`web/index.html` and the bundle built
//! from `web/src` into `web/dist`; no Node needed to build the service, nothing fetched at run time). Served on the gRPC port, so the page and
//! the gRPC-Web API share one origin: a layer answers `GET /` and `GET /app.js` before
//! gRPC-Web (which refuses other HTTP/1 requests) sees them.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::Full;
use std::task::{Context, Poll};
use tonic::body::Body;
use tower::{Layer, Service};

/// The page.
pub const INDEX_HTML: &str = include_str!("../../web/index.html");
/// The bundled script (protobuf-es + connect-web, generated from our proto).
pub const APP_JS: &str = include_str!("../../web/dist/app.js");

/// The page's Content-Security-Policy: only its own script, its one inline style block (by
/// hash) and calls to its own origin; never framed.
fn content_security_policy() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        let style = INDEX_HTML
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map_or("", |(style, _)| style);
        let hash = ring::digest::digest(&ring::digest::SHA256, style.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(hash.as_ref());
        format!(
            "default-src 'self'; style-src 'self' 'sha256-{hash}'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
    });
    &CSP
}

/// The headers every dashboard asset is sent with: no framing, no type sniffing, no
/// referrer, and the CSP.
pub fn security_headers(headers: &mut http::HeaderMap) {
    if let Ok(csp) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The asset at `path`, with its content type.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some((INDEX_HTML, "text/html; charset=utf-8")),
        "/app.js" => Some((APP_JS, "text/javascript; charset=utf-8")),
        _ => None,
    }
}

/// Serves the dashboard's assets in front of the gRPC services.
#[derive(Clone, Copy, Debug, Default)]
pub struct DashboardLayer;

impl<S> Layer<S> for DashboardLayer {
    type Service = Dashboard<S>;
    fn layer(&self, inner: S) -> Dashboard<S> {
        Dashboard { inner }
    }
}

/// The service [`DashboardLayer`] makes.
#[derive(Clone, Debug)]
pub struct Dashboard<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Dashboard<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.method() == Method::GET
            && let Some((body, content_type)) = asset(req.uri().path())
        {
            let mut response =
                Response::new(Body::new(Full::new(Bytes::from_static(body.as_bytes()))));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            security_headers(headers);
            return Box::pin(std::future::ready(Ok(response)));
        }
        Box::pin(self.inner.call(req))
    }
}
