//! What remembering finished jobs costs, at 0, 1,000 and 36,000 remembered jobs on one HRA
//! (36,000: an hour of 10 completions a second): bytes per job in the HRA and in the
//! service's memory, bytes one write sends, and the time to read, plan and write the HRA.
//! Each round is a window's batch (one every 300 ms of the applier's clock) of 5 new jobs
//! queued and the 5 of the round before completed, through the applier on the memory store.
//! Run: `cargo bench --bench remembered`.

use async_trait::async_trait;
use batch_scaler::{
    domain::{
        hra::{Hra, HraKey},
        planner::PlanEvent,
        tombstones::TombstoneLimits,
    },
    engine::{
        applier::{Applier, Attempt, Clock, Late, Policy, RetryPolicy, Verdict},
        batch::Batch,
    },
    store::{HraStore, MemoryStore, StoreError, Write, resource::merge_patch},
};
use batch_scaler_testkit::{hra_object, process::rss_kib, remembered::finished_over_the_last_hour};
use chrono::{TimeDelta, Utc};
use serde_json::Value;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

const LIMITS: TombstoneLimits = TombstoneLimits {
    ttl: TimeDelta::hours(1),
    capacity: 40_000,
};
/// Rounds measured per point (`BENCH_ROUNDS` overrides).
fn rounds_measured() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300)
}

/// The memory store, counting the bytes of each write's merge patch.
struct Counting {
    inner: MemoryStore,
    bytes: AtomicU64,
}

#[async_trait]
impl HraStore for Counting {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        self.inner.list(namespace).await
    }
    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        let bytes = serde_json::to_vec(&merge_patch(&write)).map_or(0, |b| b.len());
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.inner.write(write).await
    }
}

fn object(name: &str, n: usize) -> Value {
    let mut object = hra_object("bench", name, None);
    object["metadata"]["annotations"] =
        Value::Object(finished_over_the_last_hour(n, LIMITS, Utc::now()));
    object
}

fn job(amount: i64, id: u64) -> PlanEvent {
    PlanEvent {
        amount,
        duration: None,
        job: Some(id.to_string().into()),
        started: None,
    }
}

/// Median microseconds per read-plan-write and mean bytes per write, over the rounds.
async fn rounds(n: usize) -> (f64, f64) {
    let store = Arc::new(Counting {
        inner: MemoryStore::with_objects([object("hra", n)]).unwrap(),
        bytes: AtomicU64::new(0),
    });
    let policy = Policy {
        retry: RetryPolicy::with_deadline(Duration::from_secs(60)),
        dry_run: false,
        default_life: TimeDelta::minutes(30),
        tombstones: LIMITS,
        max_hra_bytes: 1024 * 1024,
        reservation_clock: Default::default(),
    };
    // One window every 300 ms, as a busy HRA is written.
    let start = Utc::now();
    let round_clock = Arc::new(AtomicU64::new(0));
    let ticks = round_clock.clone();
    let clock: Clock = Arc::new(move || {
        start + TimeDelta::milliseconds(300 * ticks.load(Ordering::Relaxed) as i64)
    });
    let applier = Applier::new(store.clone(), policy, clock, Arc::default());
    let key = HraKey::new("bench", "hra");
    let measured = rounds_measured();
    let mut times = Vec::with_capacity(measured);
    let mut id = 40_000_000_000u64;
    for round in 0..=measured {
        let mut events: Vec<PlanEvent> = (0..5).map(|i| job(1, id + i)).collect();
        if id > 40_000_000_000 {
            events.extend((0..5).map(|i| job(-1, id - 5 + i)));
        }
        id += 5;
        round_clock.store(round as u64, Ordering::Relaxed);
        let batch = Batch::new(key.clone(), events, 10, Instant::now());
        let at = Attempt {
            number: 1,
            started: Instant::now(),
            write_id: batch.id.clone(),
            last: false,
        };
        let started = std::time::Instant::now();
        let verdict = applier.attempt(&batch, Late::default(), at).await;
        let took = started.elapsed();
        assert!(matches!(verdict, Verdict::Written(_)), "{verdict:?}");
        if round == 0 {
            // The first read decodes every bucket once (a process start); not measured.
            store.bytes.store(0, Ordering::Relaxed);
            continue;
        }
        times.push(took.as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let bytes = store.bytes.load(Ordering::Relaxed) as f64 / measured as f64;
    (times[times.len() / 2], bytes)
}

/// Bytes per remembered job in the HRA (annotation names and values) and in this process
/// (the store's objects and the decoded buckets), with 40 HRAs of 36,000 jobs each.
async fn bytes_per_job() -> (f64, f64) {
    const N: usize = 36_000;
    const HRAS: usize = 40;
    let annotations = finished_over_the_last_hour(N, LIMITS, Utc::now());
    let in_hra: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len) + 6)
        .sum();
    let pid = std::process::id().to_string();
    let before = rss_kib(&pid);
    let objects = (0..HRAS).map(|i| {
        let mut o = hra_object("bench", &format!("hra-{i}"), None);
        o["metadata"]["annotations"] = Value::Object(annotations.clone());
        o
    });
    let store = MemoryStore::with_objects(objects).unwrap();
    for i in 0..HRAS {
        let hra = store
            .get(&HraKey::new("bench", format!("hra-{i}")))
            .await
            .unwrap();
        assert_eq!(hra.finished_jobs.len(), N);
    }
    let after = rss_kib(&pid);
    let in_memory = (after.saturating_sub(before) * 1024) as f64 / (N * HRAS) as f64;
    drop(store);
    (in_hra as f64 / N as f64, in_memory)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (hra, memory) = bytes_per_job().await;
    println!("remembered_bytes_per_job_hra: {hra:.2}");
    println!("remembered_bytes_per_job_memory: {memory:.2}");
    let points: Vec<usize> = std::env::var("BENCH_POINTS")
        .ok()
        .map(|p| p.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 1_000, 36_000]);
    for n in points {
        let (us, bytes) = rounds(n).await;
        println!("plan_us_per_hra_{n}: {us:.1}");
        println!("write_bytes_per_dirty_hra_{n}: {bytes:.0}");
    }
}
