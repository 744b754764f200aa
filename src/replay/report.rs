//! A replay's figures, per HRA and in total: jobs, simulated waits (exact nearest-rank
//! percentiles), runner time and busy runner time, the recorded waits beside them, and what
//! warm reservations did. Printed as a table or as JSON (the same input gives the same bytes).

use super::{jobs::Ms, state::WarmCounts};
use crate::domain::hra::HraKey;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// What one HRA (or the total) measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Simulated waits of the measured jobs (ms), in the order they started.
    pub waits: Vec<Ms>,
    /// Recorded waits of the measured jobs that the trace times.
    pub recorded_waits: Vec<Ms>,
    /// Runner-milliseconds (starting, idle or busy) within the measured span.
    pub runner_ms: u128,
    /// Busy runner-milliseconds within the measured span.
    pub busy_ms: u128,
    /// Warm reservations added and claimed.
    pub warm: WarmCounts,
    /// Batches written.
    pub batches: u64,
    /// Measured jobs still waiting when the trace ends (their wait runs to the end).
    pub unstarted: u64,
}

/// Percentiles of a set of waits, in ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    /// Median.
    pub p50: Ms,
    /// 90th percentile.
    pub p90: Ms,
    /// 99th percentile.
    pub p99: Ms,
    /// Longest.
    pub max: Ms,
}

/// Nearest-rank percentiles of `waits` (all zero when there are none).
pub fn waits(waits: &[Ms]) -> Waits {
    let mut sorted = waits.to_vec();
    sorted.sort_unstable();
    let rank = |p: f64| -> Ms {
        if sorted.is_empty() {
            return 0;
        }
        let r = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[r - 1]
    };
    Waits {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: sorted.last().copied().unwrap_or(0),
    }
}

impl Figures {
    /// Jobs measured.
    pub fn jobs(&self) -> u64 {
        self.waits.len() as u64
    }

    /// The simulated waits' percentiles.
    pub fn wait(&self) -> Waits {
        waits(&self.waits)
    }

    /// Busy runner time over runner time.
    pub fn utilization(&self) -> f64 {
        if self.runner_ms == 0 {
            return 0.0;
        }
        self.busy_ms as f64 / self.runner_ms as f64
    }

    fn add(&mut self, other: &Figures) {
        self.waits.extend_from_slice(&other.waits);
        self.recorded_waits.extend_from_slice(&other.recorded_waits);
        self.runner_ms += other.runner_ms;
        self.busy_ms += other.busy_ms;
        self.warm.added += other.warm.added;
        self.warm.claimed += other.warm.claimed;
        self.batches += other.batches;
        self.unstarted += other.unstarted;
    }
}

/// Waiting jobs and runners (all HRAs) at one minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// When.
    pub at: Ms,
    /// Jobs waiting for a runner.
    pub waiting: u64,
    /// Runners (starting, idle or busy).
    pub runners: u64,
}

/// The outcome of one replay.
#[derive(Clone, Debug)]
pub struct Report {
    /// Per HRA, in key order.
    pub hras: Vec<(HraKey, Figures)>,
    /// All HRAs together.
    pub total: Figures,
    /// Once a minute over the measured span.
    pub samples: Vec<Sample>,
    /// Deliveries routed to no HRA.
    pub unrouted: u64,
    /// When each job started on its runner, in the simulation (the jobs' ids in start order).
    pub starts: Vec<(std::sync::Arc<str>, Ms)>,
}

fn secs(ms: Ms) -> f64 {
    ms as f64 / 1000.0
}

fn secs_u(ms: u128) -> f64 {
    (ms / 1000) as f64 + (ms % 1000) as f64 / 1000.0
}

fn wait_json(w: Waits) -> Value {
    json!({"p50": secs(w.p50), "p90": secs(w.p90), "p99": secs(w.p99), "max": secs(w.max)})
}

fn figures_json(f: &Figures) -> Value {
    let recorded = (!f.recorded_waits.is_empty()).then(|| wait_json(waits(&f.recorded_waits)));
    json!({
        "jobs": f.jobs(),
        "wait": wait_json(f.wait()),
        "runner_seconds": secs_u(f.runner_ms),
        "busy_seconds": secs_u(f.busy_ms),
        "utilization": (f.utilization() * 10_000.0).round() / 10_000.0,
        "recorded_wait": recorded,
        "unstarted": f.unstarted,
        "batches": f.batches,
        "warm": {"added": f.warm.added, "claimed": f.warm.claimed,
            "unclaimed": f.warm.added - f.warm.claimed},
    })
}

impl Report {
    /// The report of per-HRA figures.
    pub fn new(
        keys: Vec<HraKey>,
        figures: Vec<Figures>,
        samples: Vec<Sample>,
        unrouted: u64,
    ) -> Self {
        let mut total = Figures::default();
        for f in &figures {
            total.add(f);
        }
        Self {
            hras: keys.into_iter().zip(figures).collect(),
            total,
            samples,
            unrouted,
            starts: Vec::new(),
        }
    }

    /// `{"hras": [{"namespace", "name", "jobs", "wait": {…}, …}], "total": {…}}`, seconds as
    /// numbers.
    pub fn to_json(&self) -> Value {
        let hras: Vec<Value> = self
            .hras
            .iter()
            .map(|(key, f)| {
                let mut v = figures_json(f);
                v["namespace"] = key.namespace.clone().into();
                v["name"] = key.name.clone().into();
                v
            })
            .collect();
        json!({"hras": hras, "total": figures_json(&self.total), "unrouted_deliveries": self.unrouted})
    }

    /// The table printed for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<32} {:>7} {:>8} {:>8} {:>8} {:>8}   {:>8} {:>8} {:>10} {:>10} {:>5} {:>6} {:>7}",
            "HRA",
            "jobs",
            "wait p50",
            "p90",
            "p99",
            "max",
            "rec. p50",
            "rec. p90",
            "runner-h",
            "busy-h",
            "util",
            "warm",
            "claimed"
        );
        let rows = self.hras.iter().map(|(k, f)| (k.to_string(), f));
        for (name, f) in rows.chain(std::iter::once(("total".to_owned(), &self.total))) {
            let w = f.wait();
            let r = (!f.recorded_waits.is_empty()).then(|| waits(&f.recorded_waits));
            let rec = |v: Option<Ms>| v.map_or("-".to_owned(), |v| format!("{:.1}s", secs(v)));
            let _ = writeln!(
                out,
                "{:<32} {:>7} {:>7.1}s {:>7.1}s {:>7.1}s {:>7.1}s   {:>8} {:>8} {:>10.1} {:>10.1} {:>4.0}% {:>6} {:>7}",
                name,
                f.jobs(),
                secs(w.p50),
                secs(w.p90),
                secs(w.p99),
                secs(w.max),
                rec(r.map(|r| r.p50)),
                rec(r.map(|r| r.p90)),
                secs_u(f.runner_ms) / 3600.0,
                secs_u(f.busy_ms) / 3600.0,
                f.utilization() * 100.0,
                f.warm.added,
                f.warm.claimed,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let w: Vec<Ms> = (1..=100).rev().collect();
        assert_eq!(
            waits(&w),
            Waits {
                p50: 50,
                p90: 90,
                p99: 99,
                max: 100
            }
        );
        assert_eq!(waits(&[]), Waits::default());
        assert_eq!(waits(&[7]).p99, 7);
    }

    #[test]
    fn seconds_are_numbers_and_totals_add_up() {
        let f = |w: Vec<Ms>, runner| Figures {
            waits: w,
            runner_ms: runner,
            busy_ms: runner / 2,
            ..Figures::default()
        };
        let r = Report::new(
            vec![HraKey::new("ci", "a"), HraKey::new("ci", "b")],
            vec![f(vec![1500, 0], 4000), f(vec![60_000], 2000)],
            vec![],
            3,
        );
        let j = r.to_json();
        assert_eq!(j["hras"][0]["name"], "a");
        assert_eq!(j["hras"][0]["wait"]["max"], 1.5);
        assert_eq!(j["total"]["jobs"], 3);
        assert_eq!(j["total"]["runner_seconds"], 6.0);
        assert_eq!(j["total"]["busy_seconds"], 3.0);
        assert_eq!(j["total"]["wait"]["max"], 60.0);
        assert!(r.table().lines().last().unwrap().starts_with("total"));
    }
}
