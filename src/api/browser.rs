//! What browsers may ask of the gRPC port: the dashboard's pages and gRPC-Web are answered
//! only when the `Host` (HTTP/2 `:authority`) is an IP address, `localhost` or a name given
//! with `--allowed-hosts`, so a page on another site cannot reach a no-token install by DNS
//! rebinding. A gRPC-Web request's body is read whole before it is answered (it is one small
//! message), so that an early answer (no token, say) is never cut by a stream reset while the
//! browser is still sending. Native gRPC clients are not browser requests and pass untouched.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use std::{
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
};
use tonic::body::Body;
use tower::{Layer, Service};

/// True for the requests a browser makes of us: the dashboard's pages, gRPC-Web calls and
/// their CORS preflights.
fn from_browser<B>(req: &Request<B>) -> bool {
    let grpc_web = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-web"));
    grpc_web
        || req.method() == Method::GET
        || (req.method() == Method::OPTIONS && req.headers().contains_key(header::ORIGIN))
}

/// The host a request names (`:authority`, else `Host`), without its port.
fn host_of<B>(req: &Request<B>) -> Option<String> {
    let authority = match req.uri().authority() {
        Some(a) => a.as_str().to_owned(),
        None => req.headers().get(header::HOST)?.to_str().ok()?.to_owned(),
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?.to_owned(),
        None => authority
            .rsplit_once(':')
            .map_or(authority.as_str(), |(h, _)| h)
            .to_owned(),
    };
    Some(host.to_ascii_lowercase())
}

/// Whether browsers may reach us under `host`.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    host.parse::<IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
        || allowed.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            match a.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => a == host,
            }
        })
}

/// Guards browser requests (see the module).
#[derive(Clone, Debug)]
pub struct BrowserLayer {
    allowed_hosts: Arc<[String]>,
    max_body: usize,
}

impl BrowserLayer {
    /// Browsers may use `allowed_hosts` besides IP addresses and `localhost`; a gRPC-Web body
    /// may have `max_body` bytes.
    pub fn new(allowed_hosts: &[String], max_body: usize) -> Self {
        Self {
            allowed_hosts: allowed_hosts.into(),
            max_body,
        }
    }
}

impl<S> Layer<S> for BrowserLayer {
    type Service = Browser<S>;
    fn layer(&self, inner: S) -> Browser<S> {
        Browser {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`BrowserLayer`] makes.
#[derive(Clone, Debug)]
pub struct Browser<S> {
    inner: S,
    layer: BrowserLayer,
}

/// A refusal a browser can read: HTTP 403, with a gRPC status for gRPC-Web clients.
fn refused(
    grpc_web: bool,
    status: StatusCode,
    grpc_status: &'static str,
    why: &str,
) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from(format!("{why}\n")))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if grpc_web {
        headers.insert("grpc-status", HeaderValue::from_static(grpc_status));
        if let Ok(message) = HeaderValue::from_str(&why.replace(' ', "%20")) {
            headers.insert("grpc-message", message);
        }
    }
    response
}

impl<S, B> Service<Request<B>> for Browser<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !from_browser(&req) {
            return Box::pin(self.inner.call(req.map(Body::new)));
        }
        let grpc_web = req.method() == Method::POST;
        let host = host_of(&req).unwrap_or_default();
        if !host_allowed(&host, &self.layer.allowed_hosts) {
            let why = format!(
                "host {:?} is not allowed for browsers: use an IP address, localhost, or start the service with --allowed-hosts {}",
                host.chars().take(64).collect::<String>(),
                host.chars().take(64).collect::<String>()
            );
            return Box::pin(std::future::ready(Ok(refused(
                grpc_web,
                StatusCode::FORBIDDEN,
                "7",
                &why,
            ))));
        }
        if !grpc_web {
            return Box::pin(self.inner.call(req.map(Body::new)));
        }
        // Swap in a clone that is ready for the next request; this one was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.layer.max_body;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            match Limited::new(body, limit).collect().await {
                Ok(collected) => {
                    let body = Body::new(Full::new(collected.to_bytes()));
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(_) => Ok(refused(
                    true,
                    StatusCode::OK,
                    "8",
                    &format!("a gRPC-Web request body is at most {limit} bytes"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, host: Option<&str>) -> Request<()> {
        let mut r = Request::get(uri);
        if let Some(h) = host {
            r = r.header(header::HOST, h);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn hosts_are_read_from_authority_or_host_without_the_port() {
        assert_eq!(
            host_of(&request("http://Example.COM:8080/", None)).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            host_of(&request("/", Some("[::1]:50051"))).as_deref(),
            Some("::1")
        );
        assert_eq!(
            host_of(&request("/", Some("10.0.0.7"))).as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(host_of(&request("/", None)), None);
    }

    #[test]
    fn ip_addresses_localhost_and_named_hosts_are_allowed() {
        let allowed = ["scaler.example.com".to_owned(), "*.corp.example".to_owned()];
        for host in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "localhost",
            "app.localhost",
            "scaler.example.com",
            "a.corp.example",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "evil.example",
            "corp.example",
            "scaler.example.com.evil",
            "",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }
}
