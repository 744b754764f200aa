//! The synthetic two-week trace replay is tested on (`fixtures/traces/two-weeks.jsonl.gz`,
//! world `fixtures/traces/world.yaml`), and the generator that makes it.
//!
//! Organization `acme`, from Monday 2026-11-02 00:00 UTC for 14 days:
//! - x64 (`linux`): 12 cron jobs at minute :05 of every hour; 30 nightly jobs at 02:00 on
//!   weekdays; office hours on weekdays (09–17 UTC at 1.2 jobs a minute, 08–09 and 17–18 at
//!   0.6); three release matrices of 16 jobs at random moments of each weekday's office
//!   hours; and a trickle of 0.01 a minute at all times.
//! - arm64 (`arm`): 2 cron jobs at :20 and :50 of every hour; 0.2 a minute in office hours.
//!
//! The waits in it come from the model itself: the jobs are replayed once (the service's
//! defaults, `--warm-runners off`), and each job's `started_at` is when it started there. A
//! replay of the trace with the same settings therefore finds the recorded waits again.

use batch_scaler::{
    config::{Args, Tool},
    replay::{self, World, trace},
};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use clap::Parser;
use serde_json::json;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// The world of the trace.
pub fn world_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces/world.yaml")
}

/// The checked-in trace.
pub fn trace_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces/two-weeks.jsonl.gz")
}

/// The trace's first instant: Monday 2026-11-02 00:00 UTC.
pub fn trace_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

/// SplitMix64: a fixed sequence for a seed, whatever crate versions are in use, so the
/// generator makes the same bytes for ever.
pub struct Rng(u64);

impl Rng {
    /// A sequence for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// A Poisson count of mean `mean` (Knuth's method; small means only).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
}

/// One job of a synthetic trace.
#[derive(Clone, Debug)]
pub struct SynthJob {
    /// `workflow_job.id`.
    pub id: u64,
    /// `OWNER/REPO`.
    pub repository: String,
    /// `runs-on` labels.
    pub labels: Vec<&'static str>,
    /// Unix seconds of `created_at`.
    pub created: i64,
    /// Seconds it runs.
    pub run: i64,
}

const X64: &[&str] = &["self-hosted", "linux"];
const ARM: &[&str] = &["self-hosted", "arm64"];
const REPOS: &[&str] = &[
    "api", "web", "infra", "mobile", "docs", "billing", "search", "auth",
];

/// The jobs of the two weeks, in creation order.
pub fn two_weeks_jobs() -> Vec<SynthJob> {
    let mut rng = Rng::new(20_261_102);
    let start = trace_start().timestamp();
    let mut jobs = Vec::new();
    let mut add =
        |rng: &mut Rng, labels: &'static [&'static str], created: i64, run: (i64, i64)| {
            let repo = REPOS[rng.range(0, REPOS.len() as i64 - 1) as usize];
            jobs.push(SynthJob {
                id: 0,
                repository: format!("acme/{repo}"),
                labels: labels.to_vec(),
                created,
                run: rng.range(run.0 * 60, run.1 * 60),
            });
        };
    for day in 0..14i64 {
        let weekday = day % 7 < 5;
        let midnight = start + day * 86_400;
        let mut bursts: Vec<i64> = if weekday {
            (0..3).map(|_| rng.range(9 * 60, 17 * 60 - 1)).collect()
        } else {
            vec![]
        };
        bursts.sort_unstable();
        for minute in 0..1440i64 {
            let t = midnight + minute * 60;
            let (hour, of_hour) = (minute / 60, minute % 60);
            if of_hour == 5 {
                for _ in 0..12 {
                    let jitter = rng.range(0, 20);
                    add(&mut rng, X64, t + jitter, (3, 6));
                }
            }
            if of_hour == 20 || of_hour == 50 {
                for _ in 0..2 {
                    let jitter = rng.range(0, 20);
                    add(&mut rng, ARM, t + jitter, (4, 6));
                }
            }
            if weekday && minute == 2 * 60 {
                for _ in 0..30 {
                    let jitter = rng.range(0, 10);
                    add(&mut rng, X64, t + jitter, (10, 20));
                }
            }
            let office = match (weekday, hour) {
                (true, 9..=16) => 1.2,
                (true, 8 | 17) => 0.6,
                _ => 0.0,
            };
            for (rate, labels, run) in [
                (office, X64, (4, 16)),
                (office / 6.0, ARM, (5, 15)),
                (0.01, X64, (3, 10)),
            ] {
                for _ in 0..rng.poisson(rate) {
                    let second = rng.range(0, 59);
                    add(&mut rng, labels, t + second, run);
                }
            }
            if bursts.contains(&minute) {
                let second = rng.range(0, 59);
                for _ in 0..16 {
                    add(&mut rng, X64, t + second, (6, 10));
                }
            }
        }
    }
    jobs.sort_by_key(|j| j.created);
    for (i, job) in jobs.iter_mut().enumerate() {
        job.id = 38_000_000_000 + i as u64;
    }
    jobs
}

fn rfc3339(seconds_or_ms: DateTime<Utc>) -> String {
    seconds_or_ms.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A delivery id shaped like GitHub's (a UUID), numbered: the trace stays small compressed.
fn guid(n: u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 48,
        n & 0xffff_ffff_ffff
    )
}

/// The trace lines of `jobs`: each job queued (delivered a second after `created_at`), then,
/// if `starts` gives its start (ms), in progress and completed, each delivered a second late.
/// Without `starts`, a job's start is its creation and only `queued` and `completed` are
/// written (enough for a replay to know its run). Sorted by delivery.
pub fn lines(jobs: &[SynthJob], starts: Option<&HashMap<String, i64>>) -> Vec<String> {
    let mut n = 0u64;
    let mut out: Vec<(i64, String)> = Vec::with_capacity(jobs.len() * 3);
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
    for job in jobs {
        let id = job.id.to_string();
        let created = job.created * 1000;
        let started = match starts {
            Some(s) => s.get(&id).copied(),
            None => Some(created),
        };
        let payload = |action: &str, started: Option<i64>, completed: Option<i64>| {
            let runner = started.map(|_| format!("runner-{}", job.id % 1000));
            json!({
                "action": action,
                "workflow_job": {
                    "id": job.id,
                    "labels": job.labels,
                    "status": action,
                    "conclusion": completed.map(|_| "success"),
                    "created_at": rfc3339(at(created)),
                    "started_at": started.map(|t| rfc3339(at(t))),
                    "completed_at": completed.map(|t| rfc3339(at(t))),
                    "runner_id": started.map(|_| job.id % 1000),
                    "runner_name": runner,
                },
                "repository": {"full_name": job.repository, "owner": {"login": "acme", "type": "Organization"}},
            })
        };
        let mut push = |delivered: i64, body: serde_json::Value| {
            n += 1;
            let line =
                json!({"delivered_at": rfc3339(at(delivered)), "guid": guid(n), "payload": body});
            out.push((delivered, line.to_string()));
        };
        push(created + 1000, payload("queued", None, None));
        if let Some(s) = started {
            let done = s + job.run * 1000;
            if starts.is_some() {
                push(s + 1000, payload("in_progress", Some(s), None));
            }
            push(done + 1000, payload("completed", Some(s), Some(done)));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, l)| l).collect()
}

/// Runs `bin replay --trace TRACE --seed SEED ARGS…` and returns its standard output,
/// panicking with its standard error if it fails.
pub fn run_replay(bin: &str, trace: &Path, seed: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(bin)
        .arg("replay")
        .arg("--trace")
        .arg(trace)
        .arg("--seed")
        .arg(seed)
        .args(args)
        .output()
        .expect("batch-scaler runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The settings of `batch-scaler replay` with `flags` (the service's defaults otherwise).
pub fn replay_settings(flags: &[&str]) -> replay::Settings {
    let mut argv = vec!["batch-scaler", "replay", "--trace", "-", "--seed", "-"];
    argv.extend_from_slice(flags);
    match Args::try_parse_from(argv).expect("replay flags").command {
        Some(Tool::Replay(args)) => args.settings(),
        _ => unreachable!("a replay"),
    }
}

/// The whole trace text of `jobs`: their waits are those of a replay with the defaults.
pub fn generate(jobs: &[SynthJob]) -> String {
    let world = World::read(&world_path()).expect("world");
    let parse = |lines: &[String]| -> Vec<trace::Delivery> {
        lines
            .iter()
            .map(|l| trace::parse_line(l).expect("a generated line"))
            .collect()
    };
    let first = parse(&lines(jobs, None));
    let report = replay::run(&world, &first, &replay_settings(&[]), &mut |_| {});
    let starts: HashMap<String, i64> = report
        .starts
        .iter()
        .map(|(id, t)| (id.to_string(), *t))
        .collect();
    let mut text = lines(jobs, Some(&starts)).join("\n");
    text.push('\n');
    text
}
