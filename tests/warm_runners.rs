//! `--warm-runners forecast` in the service: an HRA that saw a cron minute three hours in a
//! row gets warm reservations ahead of it, a queued job claims one (it becomes the job's own,
//! never counted twice) and the batch tops them up again; the profile is kept in the HRA and
//! read back after a restart; with `off` nothing changes. The service's clock is pinned at a
//! minute before the cron minute. On the memory backend and over real HTTP against the test
//! API server (or an existing cluster with `USE_EXISTING_CLUSTER=true`).

mod common;

use batch_scaler::{
    api::pb,
    config::Settings,
    domain::hra::Hra,
    domain::{forecast::Profile, warm::is_warm},
    engine::warm::WarmSettings,
    store::{MemoryStore, resource::parse_hra},
};
use batch_scaler_testkit::{cluster::TestCluster, sample, scrape};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::*;
use std::{sync::Arc, time::Duration};

/// How many jobs the cron minute starts.
const CRON: u64 = 4;

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn settings(now: DateTime<Utc>, warm: bool) -> Settings {
    let mut s = test_settings(Duration::from_millis(100));
    s.engine.clock = Arc::new(move || now);
    s.engine.warm = warm.then_some(WarmSettings {
        max: None,
        runner_start: Duration::from_secs(60),
        tick: Duration::from_millis(200),
    });
    s
}

fn cron_job(ns: &str, hour: i64, n: u64, created: DateTime<Utc>, amount: i32) -> pb::ScaleEvent {
    let id = (32_000_000_000 + hour as u64 * 100 + n).to_string();
    pb::ScaleEvent {
        job_times: Some(pb::JobTimes {
            created_at: Some(timestamp(created)),
            ..Default::default()
        }),
        ..job_ev(ns, "cron", amount, &id, &format!("{amount}-{id}"))
    }
}

enum Backend {
    Memory(Arc<MemoryStore>),
    Cluster(TestCluster),
}

impl Backend {
    async fn memory() -> (Self, String) {
        let ns = format!("warm-{}", uuid::Uuid::new_v4().simple());
        let store = MemoryStore::with_objects([hra_object(&ns, "cron", Some(50))]).unwrap();
        (Self::Memory(Arc::new(store)), ns)
    }

    async fn cluster() -> (Self, String) {
        let c = TestCluster::start().await;
        c.create(hra_object(&c.namespace, "cron", Some(50))).await;
        let ns = c.namespace.clone();
        (Self::Cluster(c), ns)
    }

    async fn hra(&self, ns: &str) -> Hra {
        let object = match self {
            Self::Memory(store) => store.object(&key(ns, "cron")).unwrap(),
            Self::Cluster(c) => c.object("cron").await.unwrap(),
        };
        parse_hra(&object).unwrap()
    }

    async fn warm_names(&self, ns: &str) -> Vec<String> {
        let hra = self.hra(ns).await;
        hra.capacity_reservations
            .iter()
            .map(|r| r.name.clone())
            .filter(|n| is_warm(n))
            .collect()
    }

    /// Drops the reservations, as if they had expired.
    async fn clear(&self, ns: &str) {
        let clear = |o: &mut serde_json::Value| {
            o["spec"]["capacityReservations"] = serde_json::json!([]);
        };
        match self {
            Self::Memory(store) => store.modify(&key(ns, "cron"), clear).unwrap(),
            Self::Cluster(c) => c.edit("cron", clear).await,
        }
    }

    async fn server(&self, settings: Settings) -> TestServer {
        match self {
            Self::Memory(store) => TestServer::start(store.clone(), settings).await,
            Self::Cluster(c) => TestServer::on_cluster(c, settings).await,
        }
    }
}

/// What `learned` leaves.
struct Learned {
    server: TestServer,
    ns: String,
    /// Every batch result since before the first event.
    results: tonic::Streaming<pb::BatchResult>,
    /// Warm reservations those results added so far.
    warm_added: u64,
    /// The service's (pinned) clock.
    now: DateTime<Utc>,
}

/// Three hours of the cron minute :05, each job completed, with the clock at :04.
async fn learned(backend: &Backend, ns: &str, warm: bool) -> Learned {
    let ns = ns.to_owned();
    let now = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() + TimeDelta::minutes(4);
    let server = backend.server(settings(now, warm)).await;
    let mut results = watch_all(&server).await;
    for hour in [3, 2, 1] {
        let created = now - TimeDelta::hours(hour) + TimeDelta::minutes(1);
        let queued = (0..CRON)
            .map(|n| cron_job(&ns, hour, n, created, 1))
            .collect();
        server.publish(queued).await;
        let done = (0..CRON)
            .map(|n| cron_job(&ns, hour, n, created, -1))
            .collect();
        server.publish(done).await;
    }
    let (mut completed, mut warm_added) = (0, 0);
    while completed < 3 * CRON {
        let r = recv(&mut results).await;
        completed += u64::from(r.completed);
        warm_added += u64::from(r.warm_added);
    }
    Learned {
        server,
        ns,
        results,
        warm_added,
        now,
    }
}

async fn warm_reservations_come_ahead_of_a_learned_cron_minute_and_are_claimed(
    backend: Backend,
    ns: &str,
) {
    let Learned {
        server,
        ns,
        mut results,
        warm_added: mut added,
        ..
    } = learned(&backend, ns, true).await;
    eventually(Duration::from_secs(10), "warm reservations", || async {
        backend.warm_names(&ns).await.len() == CRON as usize
    })
    .await;
    while added < CRON {
        let r = recv(&mut results).await;
        added += u64::from(r.warm_added);
        assert_eq!((r.added, r.events), (0, 1), "a refresh alone: {r:?}");
    }
    assert_eq!(added, CRON);

    // A job of the cron minute claims one: it is held once, as the job's own, and the same
    // batch makes up the warm reservation it took.
    let before = backend.warm_names(&ns).await;
    let r = server
        .scale_and_wait(job_ev(&ns, "cron", 1, "32000000999", "q-999"))
        .await;
    assert_eq!(
        (r.added, r.warm_claimed, r.warm_added, r.after),
        (1, 1, 1, CRON as u32 + 1),
        "{r:?}"
    );
    let hra = backend.hra(&ns).await;
    let names: Vec<&str> = hra
        .capacity_reservations
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "32000000999").count(), 1);
    assert!(
        !names.contains(&before[0].as_str()),
        "the oldest warm one was claimed"
    );
    assert_eq!(hra.units(), CRON + 1);

    let text = scrape(server.http_addr).await;
    let series = |event: &str| {
        sample(
            &text,
            &format!(
                "batch_scaler_warm_reservations_total{{namespace=\"{ns}\",hra=\"cron\",event=\"{event}\"}}"
            ),
        )
    };
    assert_eq!(
        (series("added"), series("claimed")),
        ((CRON + 1) as f64, 1.0)
    );
    // The job ledger counts the claim; warm reservations are no job of its.
    let stats = server
        .client()
        .await
        .get_job_stats(pb::TargetRef {
            namespace: ns.clone(),
            name: "cron".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.warm_claimed, stats.warm_expired_unclaimed), (1, 0));
    assert_eq!((stats.jobs_waiting, stats.jobs_completed), (1, 3 * CRON));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_warm_runners_off_nothing_changes() {
    let (backend, ns) = Backend::memory().await;
    let Learned {
        server,
        ns,
        mut results,
        warm_added,
        ..
    } = learned(&backend, &ns, false).await;
    assert_eq!(warm_added, 0);
    // Several ticks' worth of time: no batch comes by itself.
    let quiet = tokio::time::timeout(Duration::from_millis(800), results.message()).await;
    assert!(quiet.is_err(), "no batch without events: {quiet:?}");
    assert!(backend.warm_names(&ns).await.is_empty());
    let r = server
        .scale_and_wait(job_ev(&ns, "cron", 1, "32000000999", "q-999"))
        .await;
    assert_eq!(
        (r.added, r.warm_claimed, r.warm_added, r.after),
        (1, 0, 0, 1)
    );
    let text = scrape(server.http_addr).await;
    assert!(
        !text.contains("batch_scaler_warm_reservations_total{"),
        "no warm series"
    );
}

async fn the_profile_is_kept_in_the_hra_and_survives_a_restart(backend: Backend, ns: &str) {
    let Learned {
        mut server,
        ns,
        now,
        ..
    } = learned(&backend, ns, true).await;
    eventually(
        Duration::from_secs(10),
        "the profile written with a batch",
        || async { backend.hra(&ns).await.warm_profile.is_some() },
    )
    .await;
    let value = backend.hra(&ns).await.warm_profile.unwrap();
    let mut profile = Profile::decode(&value).unwrap();
    assert_eq!(profile.expected(now, 2).periodic, CRON as f64);
    assert!(value.len() < 2048, "{} bytes", value.len());
    server.shutdown().await.unwrap();

    // A new process (or a new owner) learned nothing itself: the HRA's annotation is enough.
    // Its warm reservations are gone (as if they had expired).
    backend.clear(&ns).await;
    assert!(backend.warm_names(&ns).await.is_empty());
    let mut again = backend.server(settings(now, true)).await;
    eventually(
        Duration::from_secs(10),
        "warm reservations again",
        || async { backend.warm_names(&ns).await.len() == CRON as usize },
    )
    .await;
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_warm_reservations_come_ahead_of_a_learned_cron_minute_and_are_claimed() {
    let (backend, ns) = Backend::memory().await;
    warm_reservations_come_ahead_of_a_learned_cron_minute_and_are_claimed(backend, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_warm_reservations_come_ahead_of_a_learned_cron_minute_and_are_claimed() {
    let (backend, ns) = Backend::cluster().await;
    warm_reservations_come_ahead_of_a_learned_cron_minute_and_are_claimed(backend, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_the_profile_is_kept_in_the_hra_and_survives_a_restart() {
    let (backend, ns) = Backend::memory().await;
    the_profile_is_kept_in_the_hra_and_survives_a_restart(backend, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_the_profile_is_kept_in_the_hra_and_survives_a_restart() {
    let (backend, ns) = Backend::cluster().await;
    the_profile_is_kept_in_the_hra_and_survives_a_restart(backend, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_new_owner_warms_from_the_profile_the_old_one_wrote() {
    use batch_scaler_testkit::members::{await_members, member};
    use std::sync::atomic::{AtomicI64, Ordering};
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    c.create(hra_object(&ns, "cron", Some(50))).await;
    // The replicas' clock: 74 minutes before the check at :04 while they learn, so that the
    // profile they write first is an hour old, and written again in full, by then.
    let check = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() + TimeDelta::minutes(4);
    let clock = Arc::new(AtomicI64::new((check - TimeDelta::minutes(74)).timestamp()));
    let replica = |name| {
        let clock = clock.clone();
        let mut s = settings(check, true);
        s.engine.clock =
            Arc::new(move || DateTime::from_timestamp(clock.load(Ordering::SeqCst), 0).unwrap());
        member(&c, name, s)
    };
    let mut both = vec![replica("a").await, replica("b").await];
    await_members(&both, 2).await;
    // Every event goes to replica a, which forwards them if b owns the HRA.
    for hour in [3, 2, 1] {
        let created = check - TimeDelta::hours(hour) + TimeDelta::minutes(1);
        let queued = (0..CRON)
            .map(|n| cron_job(&ns, hour, n, created, 1))
            .collect();
        both[0].publish(queued).await;
        let done = (0..CRON)
            .map(|n| cron_job(&ns, hour, n, created, -1))
            .collect();
        both[0].publish(done).await;
    }
    let backend = Backend::Cluster(c);
    eventually(Duration::from_secs(20), "the jobs applied", || async {
        let hra = backend.hra(&ns).await;
        hra.finished_jobs.len() == 3 * CRON as usize
    })
    .await;
    clock.store(check.timestamp(), Ordering::SeqCst);
    let learned_in_full = || async {
        backend.hra(&ns).await.warm_profile.is_some_and(|v| {
            Profile::decode(&v).unwrap().expected(check, 2).periodic == CRON as f64
        })
    };
    eventually(
        Duration::from_secs(20),
        "the whole profile written",
        learned_in_full,
    )
    .await;
    // The owner stops: the other replica, which learned nothing itself, takes the HRA over
    // and warms it from the annotation alone.
    let mut owner = None;
    for (i, server) in both.iter().enumerate() {
        let stats = server
            .client()
            .await
            .get_stats(pb::GetStatsRequest {})
            .await;
        if stats.unwrap().into_inner().owned_hras == 1 {
            owner = Some(i);
        }
    }
    let mut leaving = both.remove(owner.expect("one replica owns the HRA"));
    leaving.shutdown().await.unwrap();
    await_members(&both, 1).await;
    backend.clear(&ns).await;
    eventually(
        Duration::from_secs(20),
        "the new owner's warm reservations",
        || async { backend.warm_names(&ns).await.len() == CRON as usize },
    )
    .await;
}
