//! One client for GitHub's REST API: authenticates each request, draws it from the budget,
//! bounds it by a timeout, counts it, and pauses every call when GitHub's answer says so.

use super::{
    auth::{self, AuthError, Credentials, InstallationToken},
    budget::{Budget, Wait},
};
use crate::{
    domain::github::rest::{RateHeaders, pause_until},
    ops::github_metrics::GithubMetrics,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use parking_lot::Mutex;
use std::{sync::Arc, time::Duration};

/// Largest answer body read (a page of 100 deliveries, or one delivery with its payload).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The REST API version asked for.
const API_VERSION: &str = "2022-11-28";

/// The wall clock the client reads GitHub's epoch-second headers against.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Who a request is made as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    /// The GitHub App itself (its JWT): `/app/...` endpoints.
    App,
    /// The token file, else the App's installation token: everything else.
    Installation,
}

/// An answer from GitHub, whatever its status.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Link` header, for paging.
    pub link: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Not sent: GitHub's rate limit, or the hour's budget.
    #[error("not sent: {0:?}")]
    Wait(Wait),
    /// Not sent: the credentials cannot be used.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or the body could not be read.
    #[error("{0}")]
    Transport(String),
}

/// GitHub's REST API, as the configured credentials see it.
pub struct GithubClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    credentials: Credentials,
    installation: Mutex<Option<InstallationToken>>,
    budget: Mutex<Budget>,
    timeout: Duration,
    metrics: GithubMetrics,
    clock: Clock,
}

impl GithubClient {
    /// A client of `api_url` (`https://api.github.com`, or `https://HOST/api/v3`).
    pub fn new(
        api_url: &str,
        credentials: Credentials,
        requests_per_hour: u32,
        timeout: Duration,
        metrics: GithubMetrics,
        clock: Clock,
    ) -> Self {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
        };
        let connector = builder.https_or_http().enable_http1().build();
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            base: api_url.trim_end_matches('/').to_owned(),
            credentials,
            installation: Mutex::new(None),
            budget: Mutex::new(Budget::new(requests_per_hour)),
            timeout,
            metrics,
            clock,
        }
    }

    /// Requests left in the current hour.
    pub fn budget_left(&self) -> usize {
        self.budget.lock().left(tokio::time::Instant::now())
    }

    /// The pause GitHub asked for, if one is in force.
    pub fn paused(&self) -> Option<tokio::time::Instant> {
        self.budget.lock().paused(tokio::time::Instant::now())
    }

    /// `GET {api_url}{path}` as `who`, counted under `endpoint`.
    pub async fn get(
        &self,
        endpoint: &'static str,
        path: &str,
        who: As,
    ) -> Result<Answer, CallError> {
        let bearer = self.bearer(who).await?;
        self.send(Method::GET, endpoint, path, &bearer).await
    }

    async fn bearer(&self, who: As) -> Result<String, CallError> {
        let app = self.credentials.app.as_ref();
        match who {
            As::App => {
                let app = app.ok_or(AuthError::Missing(
                    "the App's webhook needs --github-app-id and --github-app-private-key-file",
                ))?;
                let key = auth::read_app_key(&app.private_key_file)?;
                Ok(auth::app_jwt(&key, app.app_id, (self.clock)())?)
            }
            As::Installation => {
                if let Some(path) = &self.credentials.token_file {
                    return Ok(auth::read_token(path)?);
                }
                let (app, installation_id) = app
                    .and_then(|a| Some((a, a.installation_id?)))
                    .ok_or(AuthError::Missing(
                        "needs --github-token-file or --github-app-installation-id",
                    ))?;
                let now = (self.clock)();
                if let Some(t) = self.installation.lock().as_ref().filter(|t| t.fresh(now)) {
                    return Ok(t.token.clone());
                }
                let key = auth::read_app_key(&app.private_key_file)?;
                let jwt = auth::app_jwt(&key, app.app_id, now)?;
                let path = format!("/app/installations/{installation_id}/access_tokens");
                let answer = self.send(Method::POST, "access_token", &path, &jwt).await?;
                if answer.status != 201 && answer.status != 200 {
                    return Err(CallError::Transport(format!(
                        "installation token: HTTP {} (check --github-app-id, --github-app-private-key-file, --github-app-installation-id)",
                        answer.status
                    )));
                }
                let token = auth::parse_installation_token(&answer.body)
                    .map_err(|e| CallError::Transport(format!("installation token: {e}")))?;
                let bearer = token.token.clone();
                *self.installation.lock() = Some(token);
                Ok(bearer)
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        endpoint: &'static str,
        path: &str,
        bearer: &str,
    ) -> Result<Answer, CallError> {
        self.budget
            .lock()
            .take(tokio::time::Instant::now())
            .map_err(CallError::Wait)?;
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header(
                header::USER_AGENT,
                concat!("batch-scaler/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| CallError::Transport(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| CallError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, CallError>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.metrics.request(endpoint, "error".into());
                return Err(e);
            }
            Err(_) => {
                self.metrics.request(endpoint, "error".into());
                return Err(CallError::Timeout(self.timeout));
            }
        };
        let status = parts.status.as_u16();
        self.metrics.request(endpoint, status.to_string());
        self.note_rate_limit(status, &parts.headers, &body);
        if status == 401 && endpoint != "access_token" {
            // A revoked or expired installation token: exchange a new one next time.
            *self.installation.lock() = None;
        }
        let link = parts
            .headers
            .get(header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Answer { status, link, body })
    }

    fn note_rate_limit(&self, status: u16, headers: &HeaderMap, body: &[u8]) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let rate = RateHeaders {
            remaining: number("x-ratelimit-remaining").and_then(|n| u64::try_from(n).ok()),
            reset: number("x-ratelimit-reset"),
            retry_after: number("retry-after").and_then(|n| u64::try_from(n).ok()),
        };
        if let Some(remaining) = rate.remaining {
            self.metrics
                .ratelimit_remaining
                .set(i64::try_from(remaining).unwrap_or(i64::MAX));
        }
        let says_rate_limit = status == 403
            && String::from_utf8_lossy(&body[..body.len().min(4096)])
                .to_ascii_lowercase()
                .contains("rate limit");
        let now = (self.clock)();
        if let Some(until) = pause_until(status, rate, says_rate_limit, now) {
            let wait = (until - now).to_std().unwrap_or_default();
            tracing::warn!(status, ?wait, "GitHub rate limit: every GitHub call waits");
            self.budget.lock().pause(tokio::time::Instant::now() + wait);
        }
    }
}
