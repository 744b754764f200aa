//! Warm reservations (`--warm-runners forecast`): capacity asked for ahead of the demand an
//! HRA's arrival profile expects. Each is a job-named reservation whose name starts with
//! `warm-`; a queued job's `+1` claims the oldest one (the planner swaps it for the job's own),
//! and an unclaimed one simply expires.

use super::{
    forecast::{Expected, Profile},
    hra::Hra,
    planner::{PlanEvent, Rules, RunPlan, plan_grouped},
};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;

/// The prefix of every warm reservation's name.
pub const WARM_PREFIX: &str = "warm-";

/// True for a warm reservation's name.
pub fn is_warm(name: &str) -> bool {
    name.starts_with(WARM_PREFIX)
}

/// The name of warm reservation `n` asked for at `at` (unix milliseconds).
pub fn warm_name(at: i64, n: u32) -> String {
    format!("{WARM_PREFIX}{at}-{n}")
}

/// How sure the warm pool is to cover the demand it expects: the share of moments in which
/// the jobs arriving within one runner start find a runner ready.
pub const COVER: f64 = 0.9;

/// The most warm reservations an HRA holds by default: 20 % of `maxReplicas` (rounded up),
/// at least one; `None` when the HRA has no maximum.
pub fn default_cap(max_replicas: Option<i32>) -> Option<u32> {
    let max = u32::try_from(max_replicas?.max(0)).unwrap_or(0);
    Some(max.div_ceil(5).max(1))
}

/// How many warm reservations to hold for `expected` demand: the demand that comes at fixed
/// minutes, plus the [`COVER`] quantile of the rest (a Poisson count of its mean), at most
/// `cap`.
pub fn target(expected: Expected, cap: u32) -> u32 {
    let fixed = expected.periodic.round().max(0.0);
    let total = fixed + f64::from(poisson_quantile(expected.random, COVER));
    (total.min(f64::from(cap))) as u32
}

/// The warm reservations `hra` should hold at `now`, as `profile` expects: the demand that
/// comes before a runner asked for now (ready `runner_start` later) is, at most `max` (default
/// [`default_cap`]).
pub fn wanted(
    profile: &mut Profile,
    hra: &Hra,
    now: DateTime<Utc>,
    runner_start: TimeDelta,
    max: Option<u32>,
) -> u32 {
    let start_minutes = (runner_start.num_seconds().max(0) + 59) / 60;
    let minutes = u32::try_from(start_minutes)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let cap = max
        .or_else(|| default_cap(hra.max_replicas))
        .unwrap_or(u32::MAX);
    target(profile.expected(now, minutes), cap)
}

/// Warm reservations `hra` holds unexpired at `now`.
pub fn held(hra: &Hra, now: DateTime<Utc>) -> u64 {
    hra.capacity_reservations
        .iter()
        .filter(|r| is_warm(&r.name) && r.expiration_time > now)
        .count() as u64
}

/// How long a warm reservation lives when a runner start takes `runner_start`: the start and
/// two forecast minutes, renewed while demand is expected and gone soon after.
pub fn life(runner_start: TimeDelta) -> TimeDelta {
    runner_start + TimeDelta::minutes(2)
}

/// Warm reservations to add to reach `target` when `held` are held among `units` units in
/// all: none past `maxReplicas`, where ARC would start no runner for them (and a top-up that
/// can never be met would come back every minute).
pub fn missing(target: u32, held: u64, units: u64, max_replicas: Option<i32>) -> u64 {
    let short = u64::from(target).saturating_sub(held);
    match max_replicas {
        Some(max) => short.min(u64::try_from(max.max(0)).unwrap_or(0).saturating_sub(units)),
        None => short,
    }
}

/// Plans `events` as the planner does; when that leaves fewer than `target` warm reservations,
/// plans again with warm `+1`s appended to make up the difference, each living `life`. The
/// counts tell them apart: `warm_added`, not `added`.
pub fn plan_topped_up(
    hra: &Hra,
    events: &[PlanEvent],
    now: DateTime<Utc>,
    repositories: &[(Arc<str>, Arc<str>)],
    rules: Rules,
    target: u32,
    life: TimeDelta,
) -> RunPlan {
    let plan = plan_grouped(hra, events, now, repositories, rules);
    let missing = missing(
        target,
        plan.warm_held(),
        plan.counts.after,
        hra.max_replicas,
    );
    if missing == 0 {
        return plan;
    }
    // New names: none the HRA held as read (a claimed one included), so each warm
    // reservation is told apart, even with two batches in one millisecond.
    let held: std::collections::HashSet<&str> = hra
        .capacity_reservations
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| is_warm(n))
        .collect();
    let mut topped = events.to_vec();
    let names = (0u32..)
        .map(|n| warm_name(now.timestamp_millis(), n))
        .filter(|name| !held.contains(name.as_str()));
    for name in names.take(usize::try_from(missing).unwrap_or(usize::MAX)) {
        topped.push(PlanEvent {
            amount: 1,
            duration: Some(life),
            job: Some(name.into()),
            started: None,
        });
    }
    let mut plan = plan_grouped(hra, &topped, now, repositories, rules);
    plan.counts.added -= missing.min(plan.counts.added);
    plan.counts.warm_added = missing;
    plan
}

/// The smallest `k` with P(N ≤ k) ≥ `p` for N ~ Poisson(`mean`).
pub fn poisson_quantile(mean: f64, p: f64) -> u32 {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    let mut term = (-mean).exp();
    let mut sum = term;
    let mut k = 0u32;
    while sum < p && k < 10_000 {
        k += 1;
        term *= mean / f64::from(k);
        sum += term;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_caps() {
        assert!(is_warm(&warm_name(1_700_000_000, 3)));
        assert_eq!(warm_name(60, 2), "warm-60-2");
        assert!(!is_warm("12345"));
        assert_eq!(default_cap(Some(10)), Some(2));
        assert_eq!(default_cap(Some(11)), Some(3));
        assert_eq!(default_cap(Some(0)), Some(1));
        assert_eq!(default_cap(None), None);
    }

    #[test]
    fn nothing_is_missing_past_max_replicas() {
        assert_eq!(missing(4, 1, 5, Some(10)), 3);
        assert_eq!(missing(4, 1, 8, Some(10)), 2);
        assert_eq!(missing(4, 0, 12, Some(10)), 0);
        assert_eq!(missing(4, 4, 4, Some(10)), 0);
        assert_eq!(missing(4, 0, 500, None), 4);
    }

    #[test]
    fn poisson_quantiles_match_the_table() {
        // P(N <= 0) for mean 0.04 is 0.961: nothing is kept warm for rare jobs.
        assert_eq!(poisson_quantile(0.04, 0.95), 0);
        assert_eq!(poisson_quantile(0.2, 0.95), 1);
        // Mean 3: P(N <= 5) = 0.916, P(N <= 6) = 0.966.
        assert_eq!(poisson_quantile(3.0, 0.95), 6);
        assert_eq!(poisson_quantile(0.0, 0.95), 0);
        assert_eq!(poisson_quantile(f64::NAN, 0.95), 0);
    }

    #[test]
    fn the_target_adds_fixed_demand_and_respects_the_cap() {
        let e = |periodic, random| Expected { periodic, random };
        assert_eq!(target(e(0.0, 0.0), 10), 0);
        assert_eq!(target(e(12.0, 0.04), 20), 12);
        assert_eq!(target(e(12.0, 3.0), 20), 17);
        assert_eq!(target(e(12.0, 3.0), 8), 8);
    }
}
