//! Access control: bearer tokens (constant-time compare) and the namespace allowlist.

use crate::error::ApiError;
use std::{collections::BTreeSet, path::Path, sync::Arc};
use subtle::ConstantTimeEq;
use tonic::{Request, Status, service::Interceptor};

/// Bearer tokens accepted on the `BatchScaler` service, one per line of a file. The default
/// has none and lets every call through.
#[derive(Clone, Default)]
pub struct TokenAuth {
    tokens: Option<Arc<Vec<Vec<u8>>>>,
}

impl TokenAuth {
    /// Reads tokens from a file: one per line; blank lines and `#` comments are skipped.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading --auth-token-file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("--auth-token-file {}: {e}", path.display()))
    }

    /// Parses the token file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        if tokens.is_empty() {
            return Err("holds no token".into());
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
            Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>`",
            ))
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

/// Namespaces the service may act on; `None` means all.
#[derive(Clone, Debug, Default)]
pub struct Allowlist(pub Option<Arc<BTreeSet<String>>>);

impl Allowlist {
    /// From the `--allowed-namespaces` values (empty: all namespaces).
    pub fn new(namespaces: impl IntoIterator<Item = String>) -> Self {
        let set: BTreeSet<String> = namespaces.into_iter().filter(|n| !n.is_empty()).collect();
        Self((!set.is_empty()).then(|| Arc::new(set)))
    }

    /// True if `namespace` may be used.
    pub fn allows(&self, namespace: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(namespace))
    }

    /// `PERMISSION_DENIED` for a namespace outside the list.
    pub fn check(&self, namespace: &str) -> Result<(), ApiError> {
        if self.allows(namespace) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "namespace {namespace:?} is not among the allowed namespaces"
            )))
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

    #[test]
    fn allowlist_empty_means_everything() {
        assert!(Allowlist::new(Vec::<String>::new()).allows("any"));
        let list = Allowlist::new(["ci".to_owned(), "runners".to_owned()]);
        assert!(list.allows("ci") && !list.allows("prod"));
        assert!(matches!(
            list.check("prod"),
            Err(ApiError::PermissionDenied(_))
        ));
    }
}
