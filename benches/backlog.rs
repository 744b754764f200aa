//! What a deep backlog costs: one HRA (maxReplicas 20) holding 10,000 and 100,000 waiting
//! jobs, built as an hour of arrivals. Per point: the HRA's bytes per 1,000 waiting jobs,
//! and the CPU time of one window's plan on it (100 new jobs queued, 100 completed: 90 of
//! the oldest, 10 from anywhere in the backlog): reading the changed groups, planning, and writing the list out
//! with the changed groups encoded. Then the service itself, on the memory store, holding
//! 100,000 waiting jobs: its RSS. Run: `cargo bench --bench backlog`.

use batch_scaler::{
    domain::{
        hra::{CapacityReservation, Hra, HraKey},
        planner::{PlanEvent, Rules, plan_grouped},
    },
    store::{MemoryStore, remembered},
};
use batch_scaler_testkit::{TestServer, hra_object, job_ev, process::rss_kib, test_settings};
use chrono::{DateTime, TimeDelta, Utc};
use std::{sync::Arc, time::Duration};

const LIFE: TimeDelta = TimeDelta::minutes(30);

/// GitHub-like ids: rising, an HRA's jobs among ~2,000 a second GitHub-wide.
struct Ids(u64, u64);
impl Ids {
    fn next(&mut self) -> u64 {
        self.1 ^= self.1 << 13;
        self.1 ^= self.1 >> 7;
        self.1 ^= self.1 << 17;
        self.0 += 1 + self.1 % 800;
        self.0
    }
}

fn event(amount: i64, job: u64) -> PlanEvent {
    PlanEvent {
        amount,
        duration: None,
        job: Some(Arc::from(job.to_string())),
        started: None,
    }
}

/// The HRA a store reads back after a write of `list`: its groups decoded through the
/// store's own memo, so a group whose name is unchanged is not decoded again.
fn read_back(mut hra: Hra, list: Vec<CapacityReservation>) -> Hra {
    hra.groups = remembered::groups(&hra.key, &list);
    hra.capacity_reservations = list;
    hra
}

fn hra() -> Hra {
    Hra {
        key: HraKey::new("ci", "deep"),
        resource_version: "1".into(),
        min_replicas: None,
        max_replicas: Some(20),
        capacity_reservations: vec![],
        applied_batches: Default::default(),
        trigger_duration: Some(LIFE),
        finished_jobs: Default::default(),
        job_repositories: Default::default(),
        groups: Default::default(),
        object_bytes: 0,
        warm_profile: None,
    }
}

fn point(jobs: usize) {
    let t0: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let repos: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    let mut ids = Ids(29_679_449_000, 0x2545_f491_4f6c_dd1d);
    let mut read = hra();
    let mut waiting = Vec::with_capacity(jobs);
    // An hour of arrivals, one window's batch every 10 s.
    let windows = 360;
    for w in 0..windows {
        let n = jobs / windows + usize::from(w < jobs % windows);
        let events: Vec<PlanEvent> = (0..n)
            .map(|_| {
                let id = ids.next();
                waiting.push(id);
                event(1, id)
            })
            .collect();
        let now = t0 + TimeDelta::seconds(10 * w as i64);
        let plan = plan_grouped(&read, &events, now, &repos, Rules::new(LIFE)).materialize();
        read = read_back(read, plan.reservations);
    }
    let list_bytes = serde_json::to_vec(&read.capacity_reservations)
        .unwrap()
        .len();
    let per_1000 = list_bytes as f64 / (jobs as f64 / 1000.0);
    // Windows on the full backlog: 100 queued, 100 completed: mostly the oldest (the jobs
    // running), one in ten drawn from anywhere (cancelled while waiting).
    let rounds = 200;
    let mut times = Vec::with_capacity(rounds);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut now = t0 + TimeDelta::seconds(3600);
    for _ in 0..rounds {
        let mut events: Vec<PlanEvent> = Vec::with_capacity(200);
        for _ in 0..100 {
            let id = ids.next();
            waiting.push(id);
            events.push(event(1, id));
        }
        for k in 0..100 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let i = if k < 90 {
                0
            } else {
                (state >> 33) as usize % waiting.len()
            };
            events.push(event(-1, waiting.remove(i)));
        }
        now += TimeDelta::seconds(1);
        let started = std::time::Instant::now();
        let plan = plan_grouped(&read, &events, now, &repos, Rules::new(LIFE)).materialize();
        read = read_back(read, plan.reservations);
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "backlog jobs={jobs} entries={} backlog_hra_bytes_per_1000_jobs={per_1000:.0} backlog_plan_ms={:.2} (p99 {:.2})",
        read.capacity_reservations.len(),
        ms(times[rounds / 2]),
        ms(times[rounds * 99 / 100]),
    );
}

async fn service_rss() {
    let before = rss_kib("self");
    let store = Arc::new(MemoryStore::with_objects([hra_object("ci", "deep", Some(20))]).unwrap());
    let mut settings = test_settings(Duration::from_millis(300));
    settings.engine.bounds.per_hra = u64::MAX;
    settings.engine.bounds.total = u64::MAX;
    let server = TestServer::start(store.clone(), settings).await;
    let mut ids = Ids(29_679_449_000, 0x2545_f491_4f6c_dd1d);
    for round in 0..10 {
        let events = (0..10_000)
            .map(|i| {
                job_ev(
                    "ci",
                    "deep",
                    1,
                    &ids.next().to_string(),
                    &format!("{round}-{i}"),
                )
            })
            .collect();
        server.publish(events).await;
    }
    use batch_scaler::store::HraStore;
    let key = HraKey::new("ci", "deep");
    while store.get(&key).await.unwrap().units() < 100_000 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = rss_kib("self");
    println!(
        "backlog service holding 100000 jobs: backlog_service_rss_mib={:.1} (process {:.1} MiB, grown {:.1} MiB)",
        after as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0
    );
}

fn main() {
    for jobs in [10_000, 100_000] {
        point(jobs);
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(service_rss());
}
