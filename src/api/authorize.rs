//! The `BatchScaler` service behind its tokens: each call's bearer token must carry the role
//! its method needs ([`TokenAuth::authorize`]); a refusal is answered at once, before the
//! request is decoded.

use super::{auth::TokenAuth, error};
use futures::future::{Either, Ready, ready};
use http::{Request, Response};
use std::task::{Context, Poll};
use tonic::{body::Body, server::NamedService};
use tower::Service;

/// `inner` with every call authorized by `auth`.
#[derive(Clone)]
pub struct Authorized<S> {
    inner: S,
    auth: TokenAuth,
}

impl<S> Authorized<S> {
    /// Guards `inner` with `auth`.
    pub fn new(inner: S, auth: TokenAuth) -> Self {
        Self { inner, auth }
    }
}

impl<S: NamedService> NamedService for Authorized<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for Authorized<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match self.auth.authorize(request.uri().path(), header) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(denied) => Either::Right(ready(Ok(error::refusal(denied.into())))),
        }
    }
}
