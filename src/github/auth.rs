//! Credentials for GitHub's REST API: a token read from a file (read again on every use, so a
//! rotated token is used at once), or a GitHub App: its JWT (RS256, signed with the App's
//! private key) for the App's own endpoints, and an installation token, exchanged with that
//! JWT, for the rest.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use ring::{rand::SystemRandom, signature};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use std::path::{Path, PathBuf};

/// How long before its expiry an installation token is exchanged again.
pub const REFRESH_BEFORE: TimeDelta = TimeDelta::minutes(5);

/// A GitHub App's credentials.
#[derive(Clone, Debug)]
pub struct AppCredentials {
    /// `--github-app-id`.
    pub app_id: u64,
    /// `--github-app-private-key-file` (PEM, PKCS#1 as GitHub hands it out, or PKCS#8).
    pub private_key_file: PathBuf,
    /// `--github-app-installation-id`.
    pub installation_id: Option<u64>,
}

/// How requests authenticate.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// `--github-token-file`: used for every request but the App's own.
    pub token_file: Option<PathBuf>,
    /// The GitHub App, if configured.
    pub app: Option<AppCredentials>,
}

/// Credentials that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file cannot be read.
    #[error("{flag} {path}: {source}")]
    Read {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty.
    #[error("--github-token-file {0}: empty")]
    EmptyToken(String),
    /// The App's private key is not an RSA key in PEM.
    #[error("--github-app-private-key-file {path}: {why}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// No credential serves this request.
    #[error("{0}")]
    Missing(&'static str),
}

/// Reads the bearer token in `path` (first non-empty line, trimmed).
pub fn read_token(path: &Path) -> Result<String, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        flag: "--github-token-file",
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| AuthError::EmptyToken(path.display().to_string()))
}

/// The App's RSA signing key, read from its PEM file.
pub fn read_app_key(path: &Path) -> Result<signature::RsaKeyPair, AuthError> {
    let bad = |why: String| AuthError::Key {
        path: path.display().to_string(),
        why,
    };
    let pem = std::fs::read(path).map_err(|source| AuthError::Read {
        flag: "--github-app-private-key-file",
        path: path.display().to_string(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| bad(format!("no private key in PEM ({e})")))?;
    match key {
        PrivateKeyDer::Pkcs1(der) => signature::RsaKeyPair::from_der(der.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(der) => signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
        _ => return Err(bad("not an RSA key (GitHub App keys are RSA)".into())),
    }
    .map_err(|e| bad(format!("unusable RSA key ({e})")))
}

/// A JWT for App `app_id` at `now`, as GitHub asks: issued a minute in the past (clock
/// drift), expiring within ten minutes.
pub fn app_jwt(
    key: &signature::RsaKeyPair,
    app_id: u64,
    now: DateTime<Utc>,
) -> Result<String, AuthError> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let iat = now.timestamp() - 60;
    let claims = serde_json::json!({ "iat": iat, "exp": iat + 540, "iss": app_id.to_string() });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{header}.{claims}");
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        message.as_bytes(),
        &mut sig,
    )
    .map_err(|_| AuthError::Missing("signing the App's JWT failed"))?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// An installation token and when it expires.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The token.
    pub token: String,
    /// `expires_at`.
    pub expires_at: DateTime<Utc>,
}

impl InstallationToken {
    /// True while the token has more than [`REFRESH_BEFORE`] left at `now`.
    pub fn fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires_at - REFRESH_BEFORE > now
    }
}

/// The answer of `POST /app/installations/{id}/access_tokens`.
pub fn parse_installation_token(body: &[u8]) -> Result<InstallationToken, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: String,
        expires_at: DateTime<Utc>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(InstallationToken {
        token: a.token,
        expires_at: a.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testkit/fixtures/github/app-key.pem"
    );

    #[test]
    fn signs_a_jwt_github_accepts_in_shape() {
        let key = read_app_key(Path::new(KEY)).unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let jwt = app_jwt(&key, 42, now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["iat"], 1_800_000_000 - 60);
        assert_eq!(claims["exp"], 1_800_000_000 + 480);
        // The signature verifies with the key's public half.
        let public = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            key.public().as_ref(),
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn unusable_credentials_name_their_flag() {
        let dir = std::env::temp_dir().join(format!("gh-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n  \n").unwrap();
        assert!(
            read_token(&empty)
                .unwrap_err()
                .to_string()
                .contains("--github-token-file")
        );
        std::fs::write(&empty, "\n ghs_abc \n").unwrap();
        assert_eq!(read_token(&empty).unwrap(), "ghs_abc");
        let err = read_app_key(&dir.join("missing")).unwrap_err().to_string();
        assert!(err.contains("--github-app-private-key-file"), "{err}");
        std::fs::write(&empty, "not pem").unwrap();
        let err = read_app_key(&empty).unwrap_err().to_string();
        assert!(err.contains("no private key"), "{err}");
    }

    #[test]
    fn installation_tokens_are_refreshed_before_they_expire() {
        let t = parse_installation_token(
            br#"{"token":"ghs_x","expires_at":"2027-01-01T01:00:00Z","permissions":{}}"#,
        )
        .unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(t.fresh(at("2027-01-01T00:54:00Z")));
        assert!(!t.fresh(at("2027-01-01T00:56:00Z")));
        assert!(parse_installation_token(b"{}").is_err());
    }
}
