//! The chaos test's deep backlog: one HRA holding far more waiting jobs than `maxReplicas`
//! (most of them grouped), whose completions are drawn from the whole backlog, repeated, or
//! of jobs never queued, all while replicas are killed and the API server fails.

use super::Harness;
use batch_scaler::{
    domain::{github::verify::reserved_jobs, groups::is_group_name},
    store::resource::parse_hra,
};
use fastrand::Rng;
use serde_json::Value;
use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::Ordering::Relaxed},
};

/// The deep backlog's HRA.
pub const DEEP: &str = "deep";
/// Its `maxReplicas`.
pub const DEEP_MAX_REPLICAS: i32 = 4;
/// The backlog it is filled to: `maxReplicas` × 100, beyond the named jobs.
const DEEP_TARGET: usize = DEEP_MAX_REPLICAS as usize * 100;
/// Deliveries in flight at once.
const WAVE: usize = 25;

impl Harness {
    /// Fills [`DEEP`] to [`DEEP_TARGET`] waiting jobs, then completes random ones (and
    /// queues as many new) in waves, with a repeated and a never-seen completion each time.
    pub async fn produce_deep(self: Arc<Self>, mut rng: Rng) {
        let mut next = 1_000_000_000u64;
        let mut done: Vec<String> = Vec::new();
        while !self.stop.load(Relaxed) {
            let held: Vec<String> = self.deep.lock().iter().cloned().collect();
            let mut events = Vec::new();
            let mut queued = Vec::new();
            let mut completed = Vec::new();
            if held.len() < DEEP_TARGET {
                for _ in 0..WAVE {
                    next += rng.u64(1..400);
                    queued.push(next.to_string());
                }
            } else {
                for _ in 0..WAVE / 2 {
                    let job = held[rng.usize(..held.len())].clone();
                    if !completed.contains(&job) {
                        completed.push(job);
                    }
                    next += rng.u64(1..400);
                    queued.push(next.to_string());
                }
                if let Some(again) = done.get(rng.usize(..done.len().max(1))) {
                    let redelivery = format!("dc-again-{again}-{}", rng.u32(..));
                    events.push(self.event(DEEP, -1, again, &redelivery));
                }
                events.push(self.event(DEEP, -1, "17", &format!("dc-never-{}", rng.u32(..))));
            }
            events.extend(
                queued
                    .iter()
                    .map(|j| self.event(DEEP, 1, j, &format!("dq-{j}"))),
            );
            events.extend(
                completed
                    .iter()
                    .map(|j| self.event(DEEP, -1, j, &format!("dc-{j}"))),
            );
            let deliveries = events.into_iter().map(|event| {
                let mut rng = rng.fork();
                let harness = self.clone();
                async move { harness.deliver(&mut rng, event).await }
            });
            for answer in futures::future::join_all(deliveries).await {
                answer.expect("the deep HRA exists");
            }
            let mut deep = self.deep.lock();
            deep.extend(queued);
            for job in &completed {
                deep.remove(job);
            }
            let peak = self.figures.deep_peak.load(Relaxed).max(deep.len() as u64);
            self.figures.deep_peak.store(peak, Relaxed);
            let n = completed.len() as u64;
            self.figures.deep_completed.fetch_add(n, Relaxed);
            done.extend(completed);
        }
    }

    /// What is wrong with [`DEEP`] at the end: every waiting job held exactly once (named
    /// or grouped), nothing else.
    pub fn deep_violations(&self, object: &Value) -> Vec<String> {
        let mut violations = Vec::new();
        let hra = match parse_hra(object) {
            Ok(hra) => hra,
            Err(e) => return vec![format!("{DEEP}: unreadable: {e}")],
        };
        let held: BTreeSet<String> = reserved_jobs(&hra).iter().map(|j| j.to_string()).collect();
        let want = self.deep.lock().clone();
        if hra.units() != held.len() as u64 {
            violations.push(format!(
                "{DEEP}: {} units for {} distinct jobs (a job held twice, or a job-less unit)",
                hra.units(),
                held.len()
            ));
        }
        for extra in held.difference(&want) {
            violations.push(format!("{DEEP}: reservation {extra:?} not expected"));
        }
        for missing in want.difference(&held) {
            violations.push(format!("{DEEP}: reservation {missing:?} missing"));
        }
        let grouped = hra
            .capacity_reservations
            .iter()
            .filter(|r| is_group_name(&r.name))
            .count();
        if want.len() > 100 && grouped == 0 {
            violations.push(format!("{DEEP}: {} waiting jobs, none grouped", want.len()));
        }
        violations
    }
}
