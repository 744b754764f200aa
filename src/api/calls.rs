//! Every call counted on its connection ([`ConnState::start_call`]) from its request until its
//! answer ends, so that a connection with no call open can be closed as idle; health and
//! reflection calls, open to anyone, are held to a small budget of their own per connection.

use super::{
    error::{self, ApiError},
    limits::{CallGuard, ConnectionInfo},
};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::{
    pin::Pin,
    task::{Context, Poll},
};
use tonic::body::Body;
use tower::{Layer, Service};

/// True for the services that answer without a token.
fn open_service(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// Counts calls on their connections.
#[derive(Clone, Copy, Debug)]
pub struct CallLayer {
    open_budget: usize,
}

impl CallLayer {
    /// At most `open_budget` health and reflection calls at once per connection.
    pub fn new(open_budget: usize) -> Self {
        Self { open_budget }
    }
}

impl<S> Layer<S> for CallLayer {
    type Service = Calls<S>;
    fn layer(&self, inner: S) -> Calls<S> {
        Calls {
            inner,
            open_budget: self.open_budget,
        }
    }
}

/// The service [`CallLayer`] makes.
#[derive(Clone, Debug)]
pub struct Calls<S> {
    inner: S,
    open_budget: usize,
}

/// An answer's body that ends its call when it is done with.
struct Guarded {
    inner: Body,
    _call: CallGuard,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B> Service<Request<B>> for Calls<S>
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(info) = request.extensions().get::<ConnectionInfo>().cloned() else {
            return Box::pin(self.inner.call(request));
        };
        let open = open_service(request.uri().path());
        let Some(call) = info.state.start_call(open, self.open_budget) else {
            let refused = ApiError::Exhausted(format!(
                "at most {} health and reflection calls at once on one connection",
                self.open_budget
            ));
            return Box::pin(std::future::ready(Ok(error::refusal(refused))));
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await?;
            Ok(answer.map(|inner| Body::new(Guarded { inner, _call: call })))
        })
    }
}
