//! Access control: bearer tokens with roles, compared in constant time, from a file that can
//! be read again while the service runs (a removed token is refused from the next call on).
//! A line is `TOKEN ROLE[,ROLE…]`: `read` (watch, read targets and stats, route: the
//! dashboard's), `produce` (also send events and jobs: a webhook frontend's) and `peer`
//! (`Forward`: the replicas' own); a bare `TOKEN` has all three, as before roles existed.

use super::error::ApiError;
pub use super::roles::{Role, Roles};
use arc_swap::ArcSwap;
use std::{path::PathBuf, sync::Arc};
use subtle::ConstantTimeEq;

/// Why a token file's text could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenParseError {
    /// No token in it.
    #[error("holds no token")]
    NoTokens,
    /// A line names a role that does not exist.
    #[error("line {line}: unknown role {role:?} (roles: read, produce, peer)")]
    UnknownRole {
        /// 1-based line number.
        line: usize,
        /// The role as written (at most 32 characters).
        role: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    secret: Vec<u8>,
    roles: Roles,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Tokens {
    list: Vec<Token>,
    /// Lines with a token and no roles (all three).
    bare: usize,
}

/// Bearer tokens accepted on the `BatchScaler` service. The default has none and lets every
/// call through with every role.
#[derive(Clone, Default)]
pub struct TokenAuth {
    tokens: Option<Arc<ArcSwap<Tokens>>>,
}

/// The tokens of a file's text: `TOKEN [ROLE[,ROLE…]]` per line; blank lines and `#` comments
/// are skipped.
fn parse_tokens(text: &str) -> Result<Tokens, TokenParseError> {
    let mut tokens = Tokens {
        list: Vec::new(),
        bare: 0,
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (secret, roles) = match line.split_once(char::is_whitespace) {
            None => {
                tokens.bare += 1;
                (line, Roles::ALL)
            }
            Some((secret, names)) => {
                let mut roles = Roles::default();
                for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let role = [Role::Read, Role::Produce, Role::Peer]
                        .into_iter()
                        .find(|r| r.name() == name)
                        .ok_or_else(|| TokenParseError::UnknownRole {
                            line: i + 1,
                            role: name.chars().take(32).collect(),
                        })?;
                    roles = roles.with(role);
                }
                (secret, roles)
            }
        };
        tokens.list.push(Token {
            secret: secret.as_bytes().to_vec(),
            roles,
        });
    }
    if tokens.list.is_empty() {
        return Err(TokenParseError::NoTokens);
    }
    Ok(tokens)
}

/// Why a token file could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// It holds no token, or a line is wrong.
    #[error("{0}: {1}")]
    Invalid(PathBuf, #[source] TokenParseError),
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `authorization: Bearer` header.
    Missing,
    /// A token that is not in the file.
    Unknown,
    /// A known token without the role the call needs.
    Role(Role),
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Missing => Self::Unauthenticated("missing `authorization: Bearer <token>`"),
            Denied::Unknown => Self::Unauthenticated("invalid bearer token"),
            Denied::Role(role) => Self::PermissionDenied(format!(
                "this token may not make this call: it needs the role `{}` (--auth-token-file: `TOKEN {}`)",
                role.name(),
                role.name()
            )),
        }
    }
}

impl TokenAuth {
    /// Parses a token file's text (see the module).
    pub fn parse(text: &str) -> Result<Self, TokenParseError> {
        Ok(Self {
            tokens: Some(Arc::new(ArcSwap::from_pointee(parse_tokens(text)?))),
        })
    }

    /// Reads the token file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TokenFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| TokenFileError::Read(path.to_owned(), e))?;
        Self::parse(&text).map_err(|e| TokenFileError::Invalid(path.to_owned(), e))
    }

    /// Reads the token file at `path` again: true if the tokens changed (they apply from the
    /// next call on); an unreadable, empty or wrong file leaves the tokens in use as they are.
    pub fn reload(&self, path: &std::path::Path) -> Result<bool, TokenFileError> {
        let Some(current) = &self.tokens else {
            return Ok(false);
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| TokenFileError::Read(path.to_owned(), e))?;
        let tokens =
            parse_tokens(&text).map_err(|e| TokenFileError::Invalid(path.to_owned(), e))?;
        if **current.load() == tokens {
            return Ok(false);
        }
        current.store(Arc::new(tokens));
        Ok(true)
    }

    /// How many lines give a token no roles (so all three): worth a warning at start.
    pub fn bare_tokens(&self) -> usize {
        self.tokens.as_ref().map_or(0, |t| t.load().bare)
    }

    /// A token with `role` (this replica presents a `peer` one when it forwards to a peer,
    /// which reads the same file); `None` when no token file is configured or none has it.
    pub fn token_with(&self, role: Role) -> Option<String> {
        let tokens = self.tokens.as_ref()?.load();
        tokens
            .list
            .iter()
            .find(|t| t.roles.has(role))
            .map(|t| String::from_utf8_lossy(&t.secret).into_owned())
    }

    /// The roles `authorization` carries: all of them when no tokens are configured. Every
    /// token is compared, each in constant time, so the answer's timing does not tell which
    /// one nearly matched.
    pub fn roles(&self, authorization: Option<&[u8]>) -> Result<Roles, Denied> {
        let Some(tokens) = &self.tokens else {
            return Ok(Roles::ALL);
        };
        let given = authorization
            .and_then(strip_bearer)
            .ok_or(Denied::Missing)?;
        let tokens = tokens.load();
        let (mut matched, mut roles) = (subtle::Choice::from(0), 0u8);
        for t in &tokens.list {
            let hit = t.secret.as_slice().ct_eq(given);
            matched |= hit;
            roles |= t.roles.bits() & 0u8.wrapping_sub(hit.unwrap_u8());
        }
        if bool::from(matched) {
            Ok(Roles::from_bits(roles))
        } else {
            Err(Denied::Unknown)
        }
    }

    /// Whether `authorization` may call the method at `path` (other services: always).
    pub fn authorize(&self, path: &str, authorization: Option<&[u8]>) -> Result<(), Denied> {
        let Some(needed) = Role::for_path(path) else {
            return Ok(());
        };
        let roles = self.roles(authorization)?;
        if roles.may(needed) || Role::also_for_path(path).is_some_and(|r| roles.may(r)) {
            Ok(())
        } else {
            Err(Denied::Role(needed))
        }
    }

    /// True if no tokens are configured or `authorization` is `Bearer <one of the tokens>`.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        self.roles(authorization).is_ok()
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
        assert!(matches!(
            auth.reload(&path),
            Err(TokenFileError::Invalid(..))
        ));
        assert!(auth.allows(Some(b"Bearer beta")), "the tokens in use stay");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn roles_are_parsed_and_each_call_needs_its_own() {
        let auth =
            TokenAuth::parse("dash read\nhook produce\npeer peer\nold\nboth read, peer\n").unwrap();
        assert_eq!(auth.bare_tokens(), 1);
        let bearer = |t: &str| format!("Bearer {t}").into_bytes();
        let call = |token: &str, method: &str| {
            auth.authorize(
                &format!("/batchscaler.v1.BatchScaler/{method}"),
                Some(&bearer(token)),
            )
        };
        for method in [
            "WatchBatches",
            "GetTarget",
            "ListTargets",
            "RouteJob",
            "GetStats",
        ] {
            assert_eq!(call("dash", method), Ok(()), "{method}");
            assert_eq!(call("hook", method), Ok(()), "{method}");
            assert_eq!(
                call("peer", method),
                Err(Denied::Role(Role::Read)),
                "{method}"
            );
        }
        for method in ["Publish", "Scale", "ScaleAndWait", "ScaleJob", "ScaleJobs"] {
            assert_eq!(
                call("dash", method),
                Err(Denied::Role(Role::Produce)),
                "{method}"
            );
            assert_eq!(call("hook", method), Ok(()), "{method}");
            assert_eq!(call("old", method), Ok(()), "{method}");
        }
        // A replica asks an HRA's owner for its job figures with its peer token.
        for token in ["dash", "hook", "peer", "both"] {
            assert_eq!(call(token, "GetJobStats"), Ok(()), "{token}");
        }
        assert_eq!(call("hook", "Forward"), Err(Denied::Role(Role::Peer)));
        assert_eq!(call("peer", "Forward"), Ok(()));
        assert_eq!(call("both", "Forward"), Ok(()));
        assert_eq!(call("both", "Scale"), Err(Denied::Role(Role::Produce)));
        assert_eq!(call("nope", "GetStats"), Err(Denied::Unknown));
        assert_eq!(auth.authorize("/grpc.health.v1.Health/Check", None), Ok(()));
        assert_eq!(
            auth.authorize("/batchscaler.v1.BatchScaler/GetStats", None),
            Err(Denied::Missing)
        );
        assert_eq!(auth.token_with(Role::Peer).as_deref(), Some("peer"));
        assert_eq!(
            TokenAuth::parse("x reader").err(),
            Some(TokenParseError::UnknownRole {
                line: 1,
                role: "reader".into()
            })
        );
    }
}
