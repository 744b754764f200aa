//! Access control: bearer tokens, compared in constant time, from a file that can be read
//! again while the service runs (a removed token is refused from the next call on).

use super::error::ApiError;
use arc_swap::ArcSwap;
use std::{path::PathBuf, sync::Arc};
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
    tokens: Option<Arc<ArcSwap<Vec<Vec<u8>>>>>,
}

/// The tokens of a file's text: one per line; blank lines and `#` comments are skipped.
fn parse_tokens(text: &str) -> Result<Vec<Vec<u8>>, NoTokens> {
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if tokens.is_empty() {
        return Err(NoTokens);
    }
    Ok(tokens)
}

/// Why a token file could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// It holds no token.
    #[error("{0}: {1}")]
    Empty(PathBuf, #[source] NoTokens),
}

impl TokenAuth {
    /// Parses a token file's text: one token per line; blank lines and `#` comments are
    /// skipped.
    pub fn parse(text: &str) -> Result<Self, NoTokens> {
        Ok(Self {
            tokens: Some(Arc::new(ArcSwap::from_pointee(parse_tokens(text)?))),
        })
    }

    /// Reads the token file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TokenFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| TokenFileError::Read(path.to_owned(), e))?;
        Self::parse(&text).map_err(|e| TokenFileError::Empty(path.to_owned(), e))
    }

    /// Reads the token file at `path` again: true if the tokens changed (they apply from the
    /// next call on); an unreadable or empty file leaves the tokens in use as they are.
    pub fn reload(&self, path: &std::path::Path) -> Result<bool, TokenFileError> {
        let Some(current) = &self.tokens else {
            return Ok(false);
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| TokenFileError::Read(path.to_owned(), e))?;
        let tokens = parse_tokens(&text).map_err(|e| TokenFileError::Empty(path.to_owned(), e))?;
        if **current.load() == tokens {
            return Ok(false);
        }
        current.store(Arc::new(tokens));
        Ok(true)
    }

    /// One of the tokens in use (this replica presents it when it forwards to a peer, which
    /// reads the same file); `None` when no token file is configured.
    pub fn any_token(&self) -> Option<String> {
        let tokens = self.tokens.as_ref()?.load();
        tokens
            .first()
            .map(|t| String::from_utf8_lossy(t).into_owned())
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
        let tokens = tokens.load();
        let matched = tokens.iter().fold(subtle::Choice::from(0), |acc, t| {
            acc | t.as_slice().ct_eq(given)
        });
        matched.into()
    }
}

/// A token file and the tokens read from it, reloadable.
pub struct TokenFile {
    /// The file (`--auth-token-file`).
    pub path: PathBuf,
    /// The tokens it gave, shared with the interceptor.
    pub auth: TokenAuth,
}

impl crate::ops::reload::Reload for TokenFile {
    fn files(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn reload(&self) -> Result<bool, (PathBuf, String)> {
        self.auth
            .reload(&self.path)
            .map_err(|e| (self.path.clone(), e.to_string()))
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
    fn a_reload_takes_the_new_tokens_and_refuses_an_empty_file() {
        let path = std::env::temp_dir().join(format!("bs-tokens-{}", std::process::id()));
        std::fs::write(&path, "alpha\nbeta\n").unwrap();
        let auth = TokenAuth::from_file(&path).unwrap();
        std::fs::write(&path, "beta\ngamma\n").unwrap();
        assert!(auth.reload(&path).unwrap());
        assert!(!auth.allows(Some(b"Bearer alpha")), "removed");
        assert!(auth.allows(Some(b"Bearer gamma")), "added");
        assert!(!auth.reload(&path).unwrap(), "unchanged");
        std::fs::write(&path, "# all gone\n").unwrap();
        assert!(matches!(auth.reload(&path), Err(TokenFileError::Empty(..))));
        assert!(auth.allows(Some(b"Bearer beta")), "the tokens in use stay");
        let _ = std::fs::remove_file(path);
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
