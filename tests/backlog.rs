//! A backlog of any size fits one HRA: 100,000 waiting jobs on one HRA, completions drawn
//! from the whole backlog (repeated and never-seen ones too), the oldest jobs named as named
//! ones end, and a restarted process (or another replica taking the HRA over: the state is
//! all in the HRA) continuing it with nothing lost and nothing doubled. On the memory backend
//! and over real HTTP against the test API server (or an existing cluster with
//! `USE_EXISTING_CLUSTER=true`).

mod common;

use batch_scaler::{
    config::Settings,
    domain::{
        github::verify::reserved_jobs,
        groups::{GROUP_SIZE, NAMED_AT_LEAST, is_group_name},
    },
    store::{MemoryStore, resource::parse_hra},
};
use batch_scaler_testkit::cluster::TestCluster;
use common::*;
use serde_json::Value;
use std::{collections::BTreeSet, sync::Arc, time::Duration};

const WINDOW: Duration = Duration::from_millis(200);
const JOBS: u64 = 100_000;
const MAX_REPLICAS: i32 = 20;
/// The API server refuses more than this much of annotations on one object.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// GitHub-like job ids: rising, spread among everyone else's (gaps of 1 to 800).
fn job_id(i: u64) -> String {
    let spread = |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54; // 0..1023
    (29_679_449_000 + i * 400 + spread(i) * 390 / 1023).to_string()
}

fn settings() -> Settings {
    let mut s = test_settings(WINDOW);
    s.engine.bounds.per_hra = u64::MAX;
    s.engine.bounds.total = u64::MAX;
    s
}

/// Where the HRA lives: read back as a whole object.
enum Backend {
    Memory(Arc<MemoryStore>),
    Cluster(TestCluster),
}

impl Backend {
    async fn object(&self, ns: &str) -> Value {
        match self {
            Self::Memory(store) => store.object(&key(ns, "deep")).unwrap(),
            Self::Cluster(c) => c.object("deep").await.unwrap(),
        }
    }

    async fn server(&self) -> TestServer {
        match self {
            Self::Memory(store) => TestServer::start(store.clone(), settings()).await,
            Self::Cluster(c) => TestServer::on_cluster(c, settings()).await,
        }
    }
}

/// What the object holds: every job with a reservation, the units ARC sums, the entries.
struct Held {
    jobs: BTreeSet<String>,
    units: u64,
    entries: usize,
    named: Vec<String>,
    object_bytes: usize,
    annotation_bytes: usize,
}

async fn held(backend: &Backend, ns: &str) -> Held {
    let object = backend.object(ns).await;
    let hra = parse_hra(&object).unwrap();
    let jobs = reserved_jobs(&hra).iter().map(|j| j.to_string()).collect();
    let named = hra
        .capacity_reservations
        .iter()
        .filter(|r| !is_group_name(&r.name))
        .map(|r| r.name.clone())
        .collect();
    Held {
        jobs,
        units: hra.units(),
        entries: hra.capacity_reservations.len(),
        named,
        object_bytes: serde_json::to_vec(&object).unwrap().len(),
        annotation_bytes: serde_json::to_vec(&object["metadata"]["annotations"])
            .unwrap()
            .len(),
    }
}

/// Sends job events (`+1` queued, `-1` completed), each with its own delivery id.
async fn send(server: &TestServer, ns: &str, events: &[(i32, u64)], round: &str) {
    for chunk in events.chunks(10_000) {
        let events = chunk
            .iter()
            .enumerate()
            .map(|(i, (amount, job))| {
                job_ev(
                    ns,
                    "deep",
                    *amount,
                    &job_id(*job),
                    &format!("{round}-{job}-{i}"),
                )
            })
            .collect();
        server.publish(events).await;
    }
}

async fn until_held(backend: &Backend, ns: &str, expected: &BTreeSet<u64>) -> Held {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let h = held(backend, ns).await;
        if h.units == expected.len() as u64
            && h.jobs.len() == expected.len()
            && expected.iter().all(|j| h.jobs.contains(&job_id(*j)))
        {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog not applied: {} units, {} jobs, expected {}",
            h.units,
            h.jobs.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_hundred_thousand_waiting_jobs(backend: Backend, ns: &str) {
    let started = std::time::Instant::now();
    let mut server = backend.server().await;
    let queued: Vec<(i32, u64)> = (0..JOBS).map(|i| (1, i)).collect();
    send(&server, ns, &queued, "q").await;
    let mut expected: BTreeSet<u64> = (0..JOBS).collect();
    let h = until_held(&backend, ns, &expected).await;
    let per_1000 = (h.object_bytes as f64) / (JOBS as f64 / 1000.0);
    println!(
        "backlog: {JOBS} jobs applied in {:?}, {} entries, object {} bytes ({per_1000:.0} bytes per 1,000 jobs), annotations {} bytes",
        started.elapsed(),
        h.entries,
        h.object_bytes,
        h.annotation_bytes
    );
    assert!(
        h.object_bytes < 1024 * 1024,
        "--max-hra-bytes: {}",
        h.object_bytes
    );
    assert!(
        h.annotation_bytes < ANNOTATIONS_LIMIT,
        "{}",
        h.annotation_bytes
    );
    let ids = |jobs: &mut dyn Iterator<Item = u64>| jobs.map(job_id).collect::<Vec<_>>();
    assert_eq!(
        h.named,
        ids(&mut (0..NAMED_AT_LEAST as u64)),
        "the oldest are named"
    );
    let groups = JOBS as usize / GROUP_SIZE + 1;
    assert!(
        h.entries <= NAMED_AT_LEAST + groups + 10,
        "{} entries",
        h.entries
    );

    // Completions drawn from the whole backlog, some twice, and some of jobs never queued.
    let mut done = Vec::new();
    let mut x = 12_345u64;
    for _ in 0..1_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        done.push((x >> 20) % JOBS);
    }
    let mut completions: Vec<(i32, u64)> = done.iter().map(|j| (-1, *j)).collect();
    completions.extend(done.iter().take(200).map(|j| (-1, *j)));
    completions.extend((0..100).map(|i| (-1, JOBS * 10 + i)));
    send(&server, ns, &completions, "c").await;
    for j in &done {
        expected.remove(j);
    }
    let h = until_held(&backend, ns, &expected).await;
    let smallest = ids(&mut expected.iter().take(NAMED_AT_LEAST).copied());
    assert_eq!(
        h.named, smallest,
        "named ones that ended were replaced by the oldest waiting"
    );

    // A restarted process (or another replica) continues it.
    server.shutdown().await.unwrap();
    let server = backend.server().await;
    let later: Vec<u64> = expected
        .iter()
        .skip(5_000)
        .step_by(7)
        .take(500)
        .copied()
        .collect();
    let mut events: Vec<(i32, u64)> = later.iter().map(|j| (-1, *j)).collect();
    // A redelivered queued of a waiting job, and a late queued of a completed one: nothing.
    events.extend(expected.iter().skip(50_000).take(100).map(|j| (1, *j)));
    events.extend(done.iter().take(100).map(|j| (1, *j)));
    events.extend((0..10).map(|i| (1, JOBS + i)));
    send(&server, ns, &events, "r").await;
    for j in &later {
        expected.remove(j);
    }
    expected.extend((0..10).map(|i| JOBS + i));
    let h = until_held(&backend, ns, &expected).await;
    assert!(h.object_bytes < 1024 * 1024, "{}", h.object_bytes);
    // The metric counts the backlog as jobs, not entries.
    let series = format!("batch_scaler_reservation_units{{namespace=\"{ns}\",hra=\"deep\"}}");
    await_sample(server.http_addr, &series, expected.len() as f64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_waiting_jobs_fit_one_hra_in_memory() {
    let store = MemoryStore::with_objects([hra_object("ci", "deep", Some(MAX_REPLICAS))]).unwrap();
    a_hundred_thousand_waiting_jobs(Backend::Memory(Arc::new(store)), "ci").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_hundred_thousand_waiting_jobs_fit_one_hra() {
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    c.create(hra_object(&ns, "deep", Some(MAX_REPLICAS))).await;
    a_hundred_thousand_waiting_jobs(Backend::Cluster(c), &ns).await;
}
