//! One hook's poller: every `--github-poll-interval`, while this replica owns the hook, pages
//! through its deliveries newer than the last seen and recovers each failed `workflow_job`
//! whose guid never succeeded, oldest first, through the intake.

use super::{
    GithubConfig, Intake, Recovery,
    client::{As, CallError, Clock, GithubClient},
    hook_key,
};
use crate::ops::traces;
use crate::{
    domain::{
        github::{
            delivery::{DeliveryLedger, DeliverySummary, Paging, forget_before},
            hook::HookSpec,
            payload::DeliveryDetail,
            rest::{next_cursor, query_escape},
        },
        hra::HraKey,
        routing::WorkflowJob,
    },
    ops::github_metrics::GithubMetrics,
};
use chrono::TimeDelta;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// The state of one hook's polling.
pub(super) struct Poller {
    hook: HookSpec,
    key: HraKey,
    who: As,
    client: Arc<GithubClient>,
    intake: Arc<dyn Intake>,
    metrics: GithubMetrics,
    clock: Clock,
    ledger: DeliveryLedger,
    /// Jobs fetched whose recovery the intake refused (not ready, full): tried again from
    /// here, not fetched again.
    fetched: HashMap<u64, WorkflowJob>,
    lookback: TimeDelta,
    interval: Duration,
}

/// Runs `poller` until `stop`.
pub(super) async fn run(mut poller: Poller, stop: CancellationToken) {
    let mut tick = tokio::time::interval(poller.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !poller.intake.owns(&poller.key) {
            // Another replica polls it; if this one owns it again later, it starts afresh.
            poller.ledger = DeliveryLedger::default();
            poller.fetched.clear();
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = poller.poll() => {}
        }
    }
}

impl Poller {
    /// The poller of `hook`.
    pub(super) fn new(
        hook: HookSpec,
        config: &GithubConfig,
        client: Arc<GithubClient>,
        intake: Arc<dyn Intake>,
        metrics: GithubMetrics,
        clock: Clock,
    ) -> Self {
        Self {
            key: hook_key(&hook),
            who: if hook.needs_app_jwt() {
                As::App
            } else {
                As::Installation
            },
            hook,
            client,
            intake,
            metrics,
            clock,
            ledger: DeliveryLedger::default(),
            fetched: HashMap::new(),
            lookback: TimeDelta::from_std(config.lookback).unwrap_or(TimeDelta::hours(1)),
            interval: config.poll_interval,
        }
    }

    /// What to check when the hook answers `status`.
    fn hint(&self, status: u16) -> String {
        match status {
            401 => "GitHub refused the credentials: check --github-token-file or the App's --github-app-* flags".into(),
            403 => "the credentials may not read this hook's deliveries: they need webhooks read (repository or organization hooks), or the App's own JWT for `app`".into(),
            404 => format!("no such hook for these credentials: check --github-hook {}", self.hook),
            _ => "GitHub answered with an error: tried again next poll".into(),
        }
    }

    fn failed(&self, what: &str, e: &CallError) {
        match e {
            CallError::Wait(w) => {
                tracing::debug!(hook = %self.hook, until = ?w.until(), "{what}: waiting for GitHub's rate limit or the budget")
            }
            e => {
                tracing::warn!(hook = %self.hook, error = %e, "{what} failed: tried again next poll")
            }
        }
    }

    /// One poll: reads the new deliveries, then recovers what is due.
    async fn poll(&mut self) {
        let now = (self.clock)();
        let horizon = now - self.lookback;
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("{}?per_page=100", self.hook.deliveries_path());
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(&query_escape(c));
            }
            let answer = match self.client.get("deliveries", &path, self.who).await {
                Ok(a) => a,
                Err(e) => {
                    self.failed("listing deliveries", &e);
                    self.ledger.abort_poll();
                    return;
                }
            };
            if answer.status != 200 {
                tracing::warn!(hook = %self.hook, status = answer.status, "{}", self.hint(answer.status));
                self.ledger.abort_poll();
                return;
            }
            let page: Vec<DeliverySummary> = match serde_json::from_slice(&answer.body) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(hook = %self.hook, error = %e, "unreadable deliveries page");
                    self.ledger.abort_poll();
                    return;
                }
            };
            let next = answer.link.as_deref().and_then(next_cursor);
            match (self.ledger.page(page, horizon), next) {
                (Paging::More, Some(c)) => cursor = Some(c),
                _ => break,
            }
        }
        let (due, dropped) = self.ledger.finish_poll(forget_before(now, self.lookback));
        let due_ids: std::collections::HashSet<u64> = due.iter().map(|d| d.id).collect();
        self.fetched.retain(|id, _| due_ids.contains(id));
        if dropped > 0 {
            tracing::warn!(hook = %self.hook, dropped, "too many failed deliveries waiting: the oldest were dropped");
            self.metrics.recovered("dropped", dropped);
        }
        for delivery in due {
            if !self.recover(&delivery).await {
                break;
            }
        }
    }

    /// Recovers one failed delivery; false if GitHub cannot be asked now (tried next poll).
    async fn recover(&mut self, d: &DeliverySummary) -> bool {
        if d.action
            .as_deref()
            .is_some_and(|a| a != "queued" && a != "completed")
        {
            // in_progress and waiting scale nothing: not worth a request.
            self.ledger.done(d);
            self.metrics.recovered("ignored", 1);
            return true;
        }
        let job = match self.fetched.remove(&d.id) {
            Some(job) => job,
            None => match self.fetch(d).await {
                Some(Some(job)) => job,
                Some(None) => return true,
                None => return false,
            },
        };
        // A recovered delivery starts a trace of its own.
        let span = if traces::on() {
            tracing::info_span!(parent: None, "recover_delivery", otel.name = "recover_delivery",
                batch_scaler.hook = %self.hook, batch_scaler.delivery_id = d.id,
                batch_scaler.delivery_guid = %d.guid, batch_scaler.job_id = %job.job_id)
        } else {
            tracing::Span::none()
        };
        let result = match self.intake.recover(job.clone()).instrument(span).await {
            Recovery::Queued => "queued",
            Recovery::Duplicate => "duplicate",
            Recovery::Ignored => "ignored",
            Recovery::Refused(why) => {
                tracing::warn!(hook = %self.hook, delivery = d.id, why, "a recovered delivery was refused: tried again next poll");
                self.metrics.recovered("refused", 1);
                self.fetched.insert(d.id, job);
                return true;
            }
        };
        if result == "queued" {
            tracing::info!(hook = %self.hook, delivery = d.id, guid = %d.guid, action = ?d.action, "recovered a failed webhook delivery");
        }
        self.ledger.done(d);
        self.metrics.recovered(result, 1);
        true
    }

    /// Fetches a failed delivery's job: `None` if GitHub cannot be asked now, `Some(None)` if
    /// there is nothing to recover (gone, unreadable: settled).
    async fn fetch(&mut self, d: &DeliverySummary) -> Option<Option<WorkflowJob>> {
        let path = format!("{}/{}", self.hook.deliveries_path(), d.id);
        let answer = match self.client.get("delivery", &path, self.who).await {
            Ok(a) => a,
            Err(e) => {
                self.failed("fetching a delivery", &e);
                return None;
            }
        };
        match answer.status {
            200 => {}
            404 => {
                self.ledger.done(d);
                self.metrics.recovered("gone", 1);
                return Some(None);
            }
            status => {
                tracing::warn!(hook = %self.hook, status, delivery = d.id, "{}", self.hint(status));
                return None;
            }
        }
        let job = serde_json::from_slice::<DeliveryDetail>(&answer.body)
            .map_err(|e| e.to_string())
            .and_then(|detail| {
                detail
                    .workflow_job((self.clock)())
                    .map_err(|e| e.to_string())
            });
        match job {
            Ok(job) => Some(Some(job)),
            Err(why) => {
                tracing::warn!(hook = %self.hook, delivery = d.id, guid = %d.guid, why, "a failed delivery cannot be read: skipped");
                self.ledger.done(d);
                self.metrics.recovered("invalid", 1);
                Some(None)
            }
        }
    }
}
