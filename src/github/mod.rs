//! Keeping HRAs true to GitHub when webhooks are lost, the IO part: one replica polls each
//! configured hook for failed `workflow_job` deliveries and hands them to the intake as
//! `ScaleJob` would be (`poller`); the owner of each HRA checks its old job-named
//! reservations against GitHub and completes those whose job has ended (`verifier`). Every
//! request goes through one [`client::GithubClient`]: its budget, rate-limit pause and
//! timeout. Its own tasks: GitHub slow or down never delays a batch. The decisions are pure
//! and live in `crate::domain::github`.

pub mod auth;
pub mod budget;
pub mod client;
mod poller;
pub mod record;
mod verifier;

use crate::{
    domain::{github::hook::HookSpec, hra::HraKey, routing::WorkflowJob},
    ops::github_metrics::GithubMetrics,
    store::HraStore,
};
use auth::Credentials;
use client::{Clock, GithubClient};
use std::{sync::Arc, time::Duration};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The `--github-*` flags, checked.
#[derive(Clone, Debug)]
pub struct GithubConfig {
    /// `--github-api-url`.
    pub api_url: String,
    /// Token file and/or App.
    pub credentials: Credentials,
    /// `--github-hook`.
    pub hooks: Vec<HookSpec>,
    /// `--github-poll-interval`.
    pub poll_interval: Duration,
    /// `--github-lookback`.
    pub lookback: Duration,
    /// `--github-verify-after`.
    pub verify_after: Duration,
    /// `--github-requests-per-hour`.
    pub requests_per_hour: u32,
    /// Longest one request may take.
    pub request_timeout: Duration,
}

/// What came of a recovered delivery handed to the intake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Queued as an event.
    Queued,
    /// Its event id (the delivery's guid) was already seen: nothing queued.
    Duplicate,
    /// It scales nothing (no HRA, or an action that does not scale).
    Ignored,
    /// The intake cannot take it now (not ready, full): tried again next poll.
    Refused(String),
}

/// Where recovered jobs and verified completions go: the service's own intake, so that they
/// are routed, deduplicated and forwarded exactly as a producer's would be.
#[async_trait::async_trait]
pub trait Intake: Send + Sync {
    /// Routes and queues `job` (its event id is the delivery's guid).
    async fn recover(&self, job: WorkflowJob) -> Recovery;
    /// Queues the `completed` of `job` (of `repository`) for HRA `key`; an error says why not.
    async fn complete(
        &self,
        key: HraKey,
        job: Arc<str>,
        repository: Arc<str>,
    ) -> Result<(), String>;
    /// True if this replica owns `key`: it alone verifies that HRA, and (for the
    /// pseudo-key of a hook, see [`hook_key`]) polls that hook.
    fn owns(&self, key: &HraKey) -> bool;
}

/// The ownership key of a hook: hooks are shared out among replicas as HRAs are.
pub fn hook_key(hook: &HookSpec) -> HraKey {
    HraKey::new("github-hook", hook.to_string())
}

/// How often the verifier looks for stale reservations: a tenth of `--github-verify-after`,
/// between 50 ms and 30 s.
pub fn scan_period(verify_after: Duration) -> Duration {
    (verify_after / 10).clamp(Duration::from_millis(50), Duration::from_secs(30))
}

/// Starts a poller per hook and the verifier; they stop when `stop` is cancelled.
pub fn start(
    config: GithubConfig,
    store: Arc<dyn HraStore>,
    intake: Arc<dyn Intake>,
    metrics: GithubMetrics,
    clock: Clock,
    stop: CancellationToken,
) -> JoinSet<()> {
    let client = Arc::new(GithubClient::new(
        &config.api_url,
        config.credentials.clone(),
        config.requests_per_hour,
        config.request_timeout,
        metrics.clone(),
        clock.clone(),
    ));
    let mut tasks = JoinSet::new();
    for hook in &config.hooks {
        tasks.spawn(poller::run(
            poller::Poller::new(
                hook.clone(),
                &config,
                client.clone(),
                intake.clone(),
                metrics.clone(),
                clock.clone(),
            ),
            stop.clone(),
        ));
    }
    tasks.spawn(verifier::run(
        verifier::Verifier::new(&config, client, store, intake, metrics, clock),
        stop,
    ));
    tasks
}
