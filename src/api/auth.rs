//! Access control: bearer tokens, compared in constant time.

use super::error::ApiError;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::{Request, Status, service::Interceptor};

/// A token file with no token in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("holds no token")]
pub struct NoTokens;

/// Bearer tokens accepted on the `BatchScaler` service, one per line of a file. The default
/// has none and lets every call through.
#[derive(Clone, Default)]
pub struct TokenAuth {
    tokens: Option<Arc<Vec<Vec<u8>>>>,
}

impl TokenAuth {
    /// Parses a token file's text: one token per line; blank lines and `#` comments are
    /// skipped.
    pub fn parse(text: &str) -> Result<Self, NoTokens> {
        let tokens: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        if tokens.is_empty() {
            return Err(NoTokens);
        }
        Ok(Self {
            tokens: Some(Arc::new(tokens)),
        })
    }

    /// True if no tokens are configured or `authorization` is `Bearer <one of the tokens>`.
    /// Every token is compared, each in constant time, so the answer's timing does not tell
    /// which one nearly matched.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(tokens) = &self.tokens else {
            return true;
        };
        let Some(given) = authorization.and_then(|h| strip_bearer(h)) else {
            return false;
        };
        let matched = tokens.iter().fold(subtle::Choice::from(0), |acc, t| {
            acc | t.as_slice().ct_eq(given)
        });
        matched.into()
    }
}

fn strip_bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

impl Interceptor for TokenAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        if self.allows(header) {
            Ok(request)
        } else if header.is_none() {
            Err(ApiError::Unauthenticated("missing `authorization: Bearer <token>`").into())
        } else {
            Err(ApiError::Unauthenticated("invalid bearer token").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_need_the_bearer_scheme_and_an_exact_match() {
        let auth = TokenAuth::parse("# operators\nalpha\n\n  beta  \n").unwrap();
        assert!(auth.allows(Some(b"Bearer alpha")));
        assert!(auth.allows(Some(b"bearer beta")));
        assert!(!auth.allows(Some(b"Bearer alph")));
        assert!(!auth.allows(Some(b"Bearer alphaa")));
        assert!(!auth.allows(Some(b"alpha")));
        assert!(!auth.allows(Some(b"Basic alpha")));
        assert!(!auth.allows(Some(b"Bearer # operators")));
        assert!(!auth.allows(None));
        assert!(TokenAuth::parse("\n# nothing\n").is_err());
        assert!(TokenAuth::default().allows(None), "no token file: open");
    }

    #[test]
    fn interceptor_answers_unauthenticated() {
        let mut auth = TokenAuth::parse("t0k3n").unwrap();
        let err = auth.call(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut req = Request::new(());
        req.metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            auth.call(req).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut req = Request::new(());
        req.metadata_mut()
            .insert("authorization", "Bearer t0k3n".parse().unwrap());
        assert!(auth.call(req).is_ok());
    }
}
