//! `--reservation-clock started`: a waiting job keeps its capacity past the trigger duration
//! and its start (`in_progress`) begins the duration, named or grouped. On the memory backend
//! and over real HTTP against the test API server (or an existing cluster with
//! `USE_EXISTING_CLUSTER=true`). The service's clock runs ahead of the wall clock on demand,
//! so an hour passes at once.

mod common;

use batch_scaler::{
    api::pb,
    config::Settings,
    domain::{hra::Hra, planner::ReservationClock},
    store::{MemoryStore, resource::parse_hra},
};
use batch_scaler_testkit::cluster::TestCluster;
use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

const DAY: TimeDelta = TimeDelta::hours(24);
/// The trigger duration of `hra_object`'s HRAs.
const DURATION: TimeDelta = TimeDelta::minutes(30);
/// More jobs than stay named: the last ones wait grouped.
const JOBS: u64 = 150;

/// The service's clock: the wall clock plus a skew the test advances.
#[derive(Clone, Default)]
struct Skew(Arc<AtomicI64>);

impl Skew {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::seconds(self.0.load(Ordering::SeqCst))
    }

    fn advance(&self, by: TimeDelta) {
        self.0.fetch_add(by.num_seconds(), Ordering::SeqCst);
    }
}

fn settings(skew: &Skew, clock: ReservationClock) -> Settings {
    let mut s = test_settings(Duration::from_millis(100));
    let skew = skew.clone();
    s.engine.clock = Arc::new(move || skew.now());
    s.engine.reservation_clock = clock;
    s
}

fn started_clock() -> ReservationClock {
    ReservationClock::Started {
        max_queue_time: DAY,
    }
}

fn job_id(i: u64) -> String {
    (31_000_000_000 + i * 37).to_string()
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// A job's start as a producer sends it.
fn start(ns: &str, job: u64, at: DateTime<Utc>) -> pb::ScaleEvent {
    pb::ScaleEvent {
        started_at: Some(timestamp(at)),
        ..job_ev(ns, "clocked", 0, &job_id(job), &format!("start-{job}"))
    }
}

enum Backend {
    Memory(Arc<MemoryStore>),
    Cluster(TestCluster),
}

impl Backend {
    async fn hra(&self, ns: &str) -> Hra {
        let object: Value = match self {
            Self::Memory(store) => store.object(&key(ns, "clocked")).unwrap(),
            Self::Cluster(c) => c.object("clocked").await.unwrap(),
        };
        parse_hra(&object).unwrap()
    }

    async fn server(&self, settings: Settings) -> TestServer {
        match self {
            Self::Memory(store) => TestServer::start(store.clone(), settings).await,
            Self::Cluster(c) => TestServer::on_cluster(c, settings).await,
        }
    }
}

/// When the reservation holding `job` expires (named or grouped).
fn expiry_of(hra: &Hra, job: u64) -> DateTime<Utc> {
    let id = job_id(job);
    let holding: Vec<_> = hra
        .capacity_reservations
        .iter()
        .filter(|r| r.name == id || hra.groups.members(&r.name).is_some_and(|m| m.contains(&id)))
        .collect();
    assert_eq!(holding.len(), 1, "job {id} is held once");
    holding[0].expiration_time
}

fn near(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_seconds().abs() <= 5
}

async fn waiting_jobs_keep_their_runners_until_they_start(backend: Backend, ns: &str) {
    let skew = Skew::default();
    let server = backend.server(settings(&skew, started_clock())).await;
    let t = skew.now();
    let queued: Vec<_> = (1..=JOBS)
        .map(|i| job_ev(ns, "clocked", 1, &job_id(i), &format!("q-{i}")))
        .collect();
    server.publish(queued).await;
    let mut hra = backend.hra(ns).await;
    for _ in 0..100 {
        if hra.units() == JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        hra = backend.hra(ns).await;
    }
    assert_eq!(hra.units(), JOBS);
    assert!(
        hra.capacity_reservations.len() < JOBS as usize,
        "some jobs wait grouped"
    );
    for job in [1, JOBS] {
        assert!(
            near(expiry_of(&hra, job), t + DAY),
            "held for the queue time"
        );
    }

    // 45 minutes later, past the 30-minute duration, nobody has started: all still held.
    skew.advance(TimeDelta::minutes(45));
    assert_eq!(hra.reserved_replicas(skew.now()), JOBS as u32);

    // Job 1 (named) and the last job (grouped) start a minute ago.
    let begun = skew.now() - TimeDelta::minutes(1);
    let r = server.scale_and_wait(start(ns, 1, begun)).await;
    assert_eq!(r.outcome, pb::Outcome::Applied as i32);
    let r2 = server.scale_and_wait(start(ns, JOBS, begun)).await;
    assert_eq!((r.started + r2.started, r2.after), (2, JOBS as u32));
    let hra = backend.hra(ns).await;
    for job in [1, JOBS] {
        assert!(near(expiry_of(&hra, job), begun + DURATION), "{job}");
    }
    assert!(near(expiry_of(&hra, 2), t + DAY));

    // Job 2 is cancelled while it waits: its capacity ends at once.
    let r = server
        .scale_and_wait(job_ev(ns, "clocked", -1, &job_id(2), "done-2"))
        .await;
    assert_eq!((r.completed, r.after), (1, JOBS as u32 - 1));

    // The started jobs' duration runs out; the waiting ones keep theirs.
    skew.advance(DURATION);
    let r = server
        .scale_and_wait(job_ev(ns, "clocked", 1, &job_id(JOBS + 1), "q-late"))
        .await;
    assert_eq!((r.expired, r.added), (2, 1));
    assert_eq!(r.after, JOBS as u32 - 2);
    let hra = backend.hra(ns).await;
    assert_eq!(hra.reserved_replicas(skew.now()), JOBS as u32 - 2);
    assert!(near(expiry_of(&hra, 3), t + DAY));
}

#[tokio::test]
async fn waiting_jobs_keep_their_runners_until_they_start_in_memory() {
    let store = MemoryStore::with_objects([hra_object("clock", "clocked", None)]).unwrap();
    let backend = Backend::Memory(Arc::new(store));
    waiting_jobs_keep_their_runners_until_they_start(backend, "clock").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_waiting_jobs_keep_their_runners_until_they_start() {
    let c = TestCluster::start().await;
    c.create(hra_object(&c.namespace, "clocked", None)).await;
    let ns = c.namespace.clone();
    waiting_jobs_keep_their_runners_until_they_start(Backend::Cluster(c), &ns).await;
}

fn routed_store() -> MemoryStore {
    MemoryStore::with_objects([
        hra_object("ci", "clocked", None),
        json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
            "metadata": {"name": "clocked", "namespace": "ci"},
            "spec": {"template": {"spec": {"repository": "octo/app"}}}}),
    ])
    .unwrap()
}

fn in_progress(job: u64, started: Option<DateTime<Utc>>) -> pb::WorkflowJob {
    pb::WorkflowJob {
        action: "in_progress".into(),
        started_at: started.map(timestamp),
        has_runner: true,
        runner_name: "clocked-abcde".into(),
        wait: true,
        event_id: format!("progress-{job}"),
        ..queued_job("octo/app", &["self-hosted"], &job_id(job))
    }
}

#[tokio::test]
async fn a_job_s_in_progress_starts_its_reservation_where_its_queued_went() {
    let skew = Skew::default();
    let (server, store) =
        TestServer::with_store(routed_store(), settings(&skew, started_clock())).await;
    let mut client = server.client().await;
    for job in [1, 2] {
        let queued = pb::WorkflowJob {
            wait: true,
            ..queued_job("octo/app", &["self-hosted"], &job_id(job))
        };
        client.scale_job(queued).await.unwrap();
    }
    // Past the duration, within the hour a start may be ahead of the wall clock.
    skew.advance(TimeDelta::minutes(50));
    let begun = skew.now() - TimeDelta::seconds(20);
    let answer = client
        .scale_job(in_progress(1, Some(begun)))
        .await
        .unwrap()
        .into_inner();
    let route = answer.route.unwrap();
    assert!(route.starts, "{}", route.reason);
    assert_eq!(route.target.unwrap().name, "clocked");
    assert_eq!(answer.batch.unwrap().started, 1);
    // Without `started_at`, the delivery's arrival is the start.
    let arrived = skew.now();
    client.scale_job(in_progress(2, None)).await.unwrap();
    let hra = parse_hra(&store.object(&key("ci", "clocked")).unwrap()).unwrap();
    assert!(near(expiry_of(&hra, 1), begun + DURATION));
    assert!(near(expiry_of(&hra, 2), arrived + DURATION));

    // A malformed start names its field.
    let bad = in_progress(3, Some(Utc::now() + TimeDelta::hours(2)));
    let e = client.scale_job(bad).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("started_at"), "{}", e.message());
}

#[tokio::test]
async fn with_arc_s_clock_in_progress_is_routed_but_queues_nothing() {
    let skew = Skew::default();
    let settings = settings(&skew, ReservationClock::Queued);
    let (server, store) = TestServer::with_store(routed_store(), settings).await;
    let mut client = server.client().await;
    let queued = pb::WorkflowJob {
        wait: true,
        ..queued_job("octo/app", &["self-hosted"], &job_id(1))
    };
    client.scale_job(queued).await.unwrap();
    let answer = client
        .scale_job(in_progress(1, Some(skew.now())))
        .await
        .unwrap()
        .into_inner();
    let route = answer.route.unwrap();
    assert!(!route.starts);
    assert!(
        route.reason.contains("--reservation-clock queued"),
        "{}",
        route.reason
    );
    assert!(answer.batch.is_none(), "nothing was queued");
    let hra = parse_hra(&store.object(&key("ci", "clocked")).unwrap()).unwrap();
    assert!(near(
        expiry_of(&hra, 1),
        hra.capacity_reservations[0].effective_time + DURATION
    ));
    // A producer's own start changes nothing either.
    let r = server
        .scale_and_wait(pb::ScaleEvent {
            started_at: Some(timestamp(skew.now())),
            ..job_ev("ci", "clocked", 0, &job_id(1), "own-start")
        })
        .await;
    assert_eq!((r.started, r.after), (0, 1));
}
