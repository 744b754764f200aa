//! The verifier: every scan period, the job-named reservations of the HRAs this replica owns
//! that have existed longer than `--github-verify-after` are checked against GitHub, oldest
//! first; a job that has ended (or is gone) gets its `completed`, one still waiting or running
//! is checked again after another `--github-verify-after`.

use super::{
    GithubConfig, Intake,
    client::{As, CallError, Clock, GithubClient},
    scan_period,
};
use crate::ops::traces;
use crate::{
    domain::{
        github::verify::{JobCheck, Stale, reserved_jobs, stale_reservations},
        hra::HraKey,
    },
    ops::github_metrics::GithubMetrics,
    store::HraStore,
};
use chrono::{DateTime, TimeDelta, Utc};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// The verifier's state: when each job already checked is due again.
pub(super) struct Verifier {
    client: Arc<GithubClient>,
    store: Arc<dyn HraStore>,
    intake: Arc<dyn Intake>,
    metrics: GithubMetrics,
    clock: Clock,
    verify_after: TimeDelta,
    period: Duration,
    /// Per owned HRA, per job already checked.
    next_check: HashMap<HraKey, HashMap<Arc<str>, DateTime<Utc>>>,
}

/// Runs `verifier` until `stop`.
pub(super) async fn run(mut verifier: Verifier, stop: CancellationToken) {
    let mut tick = tokio::time::interval(verifier.period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = verifier.scan() => {}
        }
    }
}

#[derive(serde::Deserialize)]
struct JobStatus {
    status: Option<String>,
}

impl Verifier {
    /// A verifier over `store`'s HRAs.
    pub(super) fn new(
        config: &GithubConfig,
        client: Arc<GithubClient>,
        store: Arc<dyn HraStore>,
        intake: Arc<dyn Intake>,
        metrics: GithubMetrics,
        clock: Clock,
    ) -> Self {
        Self {
            client,
            store,
            intake,
            metrics,
            clock,
            verify_after: TimeDelta::from_std(config.verify_after)
                .unwrap_or(TimeDelta::minutes(15)),
            period: scan_period(config.verify_after),
            next_check: HashMap::new(),
        }
    }

    /// The stale reservations of owned HRAs, oldest first.
    async fn stale(&mut self, now: DateTime<Utc>) -> Option<Vec<Stale>> {
        let hras = match self.store.list(None).await {
            Ok(hras) => hras,
            Err(e) => {
                tracing::warn!(error = %e, "listing HRAs to verify failed");
                return None;
            }
        };
        let mut stale = Vec::new();
        let mut kept = HashMap::new();
        for hra in &hras {
            if !self.intake.owns(&hra.key) {
                continue;
            }
            let mut checked = self.next_check.remove(&hra.key).unwrap_or_default();
            stale.extend(stale_reservations(hra, now, self.verify_after, |_, job| {
                checked.get(job).copied()
            }));
            // Jobs no longer reserved (completed, expired) are forgotten.
            if !checked.is_empty() {
                let reserved = reserved_jobs(hra);
                checked.retain(|job, _| reserved.contains(job));
                if !checked.is_empty() {
                    kept.insert(hra.key.clone(), checked);
                }
            }
        }
        // So are the HRAs gone, or now another replica's.
        self.next_check = kept;
        stale.sort_by(|a, b| (a.since, &a.key, &a.job).cmp(&(b.since, &b.key, &b.job)));
        Some(stale)
    }

    /// One scan: checks what is due until the budget or GitHub says stop.
    async fn scan(&mut self) {
        let now = (self.clock)();
        let Some(stale) = self.stale(now).await else {
            return;
        };
        let mut refused = None;
        for s in stale {
            let path = format!("/repos/{}/actions/jobs/{}", s.repository, s.job);
            let answer = match self.client.get("job", &path, As::Installation).await {
                Ok(a) => a,
                Err(CallError::Wait(w)) => {
                    tracing::debug!(until = ?w.until(), "verification waits for GitHub's rate limit or the budget");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "checking jobs on GitHub failed: tried again next scan");
                    return;
                }
            };
            let status = serde_json::from_slice::<JobStatus>(&answer.body)
                .ok()
                .and_then(|j| j.status);
            let due_again = (self.clock)() + self.verify_after;
            let Some(check) = JobCheck::of_answer(answer.status, status.as_deref()) else {
                refused.get_or_insert(answer.status);
                // Asked again after another --github-verify-after, not every scan.
                self.next_check
                    .entry(s.key)
                    .or_default()
                    .insert(s.job, due_again);
                continue;
            };
            self.metrics.verified(check.as_str());
            self.next_check
                .entry(s.key.clone())
                .or_default()
                .insert(s.job.clone(), due_again);
            if check == JobCheck::Kept {
                continue;
            }
            tracing::info!(hra = %s.key, job = %s.job, repository = %s.repository, result = check.as_str(),
                "a reserved job has ended on GitHub: completing its reservation");
            // A verification starts a trace of its own.
            let span = if traces::on() {
                tracing::info_span!(parent: None, "verify_reservation", otel.name = "verify_reservation",
                    batch_scaler.hra = %s.key, batch_scaler.job_id = %s.job,
                    batch_scaler.repository = %s.repository, batch_scaler.result = check.as_str())
            } else {
                tracing::Span::none()
            };
            let completed = self
                .intake
                .complete(s.key, s.job, s.repository)
                .instrument(span);
            if let Err(why) = completed.await {
                tracing::warn!(why, "a verified completion was refused: tried again later");
            }
        }
        if let Some(status) = refused {
            tracing::warn!(
                status,
                "GitHub would not tell a job's status: the credentials need actions read on its repository (tried again after --github-verify-after)"
            );
        }
    }
}
