//! A fake of the parts of GitHub's REST API drift repair uses, on 127.0.0.1:0: webhook
//! deliveries (list with `per_page` and a `cursor` in the `Link` header, newest first; one
//! delivery with its `request.payload`), a job's status, the App's installation-token exchange
//! (the JWT's RS256 signature, issuer and expiry checked), bearer tokens, rate-limit headers,
//! and answers forced for the next requests. Every request is logged.

mod routes;

use batch_scaler::github::{GithubConfig, auth::Credentials};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};
use tokio::net::TcpListener;

/// The GitHub App key tests sign with (its public half verifies the fake's JWTs).
pub const APP_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/github/app-key.pem");

/// A real `workflow_job` webhook payload (action `queued`, repository `MYORG/MYREPO`).
pub const QUEUED_PAYLOAD: &str = include_str!("../../fixtures/github/workflow_job_queued.json");

/// `QUEUED_PAYLOAD` as `action` for job `job_id` of `repository` with `labels`.
pub fn workflow_job_payload(action: &str, job_id: u64, repository: &str, labels: &[&str]) -> Value {
    let mut p: Value = serde_json::from_str(QUEUED_PAYLOAD).expect("the fixture is JSON");
    p["action"] = json!(action);
    p["workflow_job"]["id"] = json!(job_id);
    p["workflow_job"]["labels"] = json!(labels);
    p["workflow_job"]["status"] = json!(if action == "completed" {
        "completed"
    } else {
        action
    });
    if action == "completed" {
        p["workflow_job"]["conclusion"] = json!("success");
        p["workflow_job"]["runner_id"] = json!(7);
    }
    p["repository"]["full_name"] = json!(repository);
    if let Some((owner, name)) = repository.split_once('/') {
        p["repository"]["name"] = json!(name);
        p["repository"]["owner"]["login"] = json!(owner);
    }
    p
}

/// One delivery of a hook.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Delivery id (grows with each delivery).
    pub id: u64,
    /// The event's guid (shared by redeliveries).
    pub guid: String,
    /// When it was delivered.
    pub delivered_at: DateTime<Utc>,
    /// A redelivery of an earlier one.
    pub redelivery: bool,
    /// The receiver's HTTP status, 0 for no answer.
    pub status_code: u16,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`.
    pub action: Option<String>,
    /// The payload.
    pub payload: Value,
}

/// A request the fake answered.
#[derive(Clone, Debug)]
pub struct Logged {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query.
    pub query: String,
    /// The status answered.
    pub status: u16,
    /// When it was answered.
    pub at: tokio::time::Instant,
}

/// An answer forced on the next requests.
#[derive(Clone, Debug)]
pub struct Forced {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) deliveries: HashMap<String, Vec<Delivery>>,
    pub(crate) jobs: HashMap<(String, String), String>,
    pub(crate) tokens: HashSet<String>,
    pub(crate) installation_tokens: HashMap<String, DateTime<Utc>>,
    pub(crate) app: Option<(u64, u64)>,
    pub(crate) token_life: Option<chrono::TimeDelta>,
    pub(crate) exchanges: u64,
    pub(crate) rate_remaining: Option<u64>,
    pub(crate) rate_reset: Option<i64>,
    pub(crate) forced: VecDeque<Forced>,
    pub(crate) delay: Option<Duration>,
    pub(crate) log: Vec<Logged>,
    pub(crate) next_id: u64,
}

/// The fake, serving until dropped.
pub struct FakeGithub {
    addr: SocketAddr,
    pub(crate) state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    /// Starts the fake; requests need a token from [`FakeGithub::accept_token`] or the App.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            next_id: 1_000_000,
            ..State::default()
        }));
        let app = routes::router(state.clone(), addr);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, for `--github-api-url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests bearing `token` are let in.
    pub fn accept_token(&self, token: &str) {
        self.state.lock().tokens.insert(token.to_owned());
    }

    /// No longer lets `token` in (401).
    pub fn revoke_token(&self, token: &str) {
        self.state.lock().tokens.remove(token);
    }

    /// The GitHub App `app_id` (key [`APP_KEY`]) installed as `installation_id`; its
    /// installation tokens live `token_life`.
    pub fn with_app(&self, app_id: u64, installation_id: u64, token_life: Duration) {
        let mut s = self.state.lock();
        s.app = Some((app_id, installation_id));
        s.token_life = chrono::TimeDelta::from_std(token_life).ok();
    }

    /// Installation tokens handed out so far.
    pub fn token_exchanges(&self) -> u64 {
        self.state.lock().exchanges
    }

    /// Records a delivery of `payload` (a `workflow_job` unless `event` says otherwise) to the
    /// hook at `hook_path` (as `HookSpec::deliveries_path`), answered `status_code`; returns
    /// its id and guid.
    pub fn deliver(
        &self,
        hook_path: &str,
        event: &str,
        payload: Value,
        status_code: u16,
    ) -> (u64, String) {
        let guid = uuid::Uuid::new_v4().to_string();
        let id = self.push(hook_path, event, payload, status_code, guid.clone(), false);
        (id, guid)
    }

    /// [`FakeGithub::deliver`] as if delivered at `at`.
    pub fn deliver_at(
        &self,
        hook_path: &str,
        event: &str,
        payload: Value,
        status_code: u16,
        at: DateTime<Utc>,
    ) -> (u64, String) {
        let (id, guid) = self.deliver(hook_path, event, payload, status_code);
        let mut s = self.state.lock();
        if let Some(d) = s
            .deliveries
            .get_mut(hook_path)
            .and_then(|ds| ds.iter_mut().find(|d| d.id == id))
        {
            d.delivered_at = at;
        }
        (id, guid)
    }

    /// Redelivers `guid` (by hand, as in GitHub's UI), answered `status_code`.
    pub fn redeliver(&self, hook_path: &str, guid: &str, status_code: u16) -> u64 {
        let original = self.state.lock().deliveries[hook_path]
            .iter()
            .find(|d| d.guid == guid)
            .cloned()
            .expect("a known guid");
        self.push(
            hook_path,
            &original.event,
            original.payload,
            status_code,
            guid.to_owned(),
            true,
        )
    }

    fn push(
        &self,
        hook_path: &str,
        event: &str,
        payload: Value,
        status_code: u16,
        guid: String,
        redelivery: bool,
    ) -> u64 {
        let mut s = self.state.lock();
        s.next_id += 1;
        let id = s.next_id;
        let action = payload["action"].as_str().map(str::to_owned);
        s.deliveries
            .entry(hook_path.to_owned())
            .or_default()
            .push(Delivery {
                id,
                guid,
                delivered_at: Utc::now(),
                redelivery,
                status_code,
                event: event.to_owned(),
                action,
                payload,
            });
        id
    }

    /// Job `job_id` of `repository` now has `status` (`queued`, `in_progress`, `completed`…).
    pub fn set_job(&self, repository: &str, job_id: &str, status: &str) {
        self.state.lock().jobs.insert(
            (repository.to_owned(), job_id.to_owned()),
            status.to_owned(),
        );
    }

    /// The next `n` requests are answered `status` with `headers` and `body`.
    pub fn force(&self, n: usize, status: u16, headers: &[(&str, &str)], body: &str) {
        let mut s = self.state.lock();
        for _ in 0..n {
            s.forced.push_back(Forced {
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: body.to_owned(),
            });
        }
    }

    /// Answers carry `x-ratelimit-remaining` counting down from `remaining` (then 403 "API
    /// rate limit exceeded") and `x-ratelimit-reset: reset` (epoch seconds).
    pub fn rate_limit(&self, remaining: u64, reset: i64) {
        let mut s = self.state.lock();
        s.rate_remaining = Some(remaining);
        s.rate_reset = Some(reset);
    }

    /// Every answer comes `delay` late (a slow GitHub).
    pub fn delay(&self, delay: Option<Duration>) {
        self.state.lock().delay = delay;
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().log.clone()
    }

    /// Drift repair's settings against this fake: a token file it accepts, `hooks` (as
    /// `--github-hook`), polls every 100 ms, `verify_after`, a budget of 100,000 an hour.
    pub fn config(&self, hooks: &[&str], verify_after: Duration) -> GithubConfig {
        let token = format!("ghp_{}", uuid::Uuid::new_v4().simple());
        self.accept_token(&token);
        let path = std::env::temp_dir().join(format!("github-token-{token}"));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        GithubConfig {
            api_url: self.url(),
            credentials: Credentials {
                token_file: Some(path),
                app: None,
            },
            hooks: hooks.iter().map(|h| h.parse().unwrap()).collect(),
            poll_interval: Duration::from_millis(100),
            lookback: Duration::from_secs(3600),
            verify_after,
            requests_per_hour: 100_000,
            request_timeout: Duration::from_secs(2),
        }
    }

    /// How many requests' paths start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.state
            .lock()
            .log
            .iter()
            .filter(|l| l.path.starts_with(prefix))
            .count()
    }
}
