//! Chaos: three service processes against one Kubernetes API server (the test API server with
//! faults on, or an existing cluster with `USE_EXISTING_CLUSTER=true`, where faults are limited
//! to kills and foreign writes). Producers send `ScaleAndWait` with job and delivery ids to
//! random replicas (queued, completed, redeliveries, completed before queued, unknown HRAs)
//! and retry on errors as the README tells them to, while the harness SIGKILLs and restarts
//! replicas, injects 5xx bursts and latency, and writes foreign fields concurrently. The
//! replicas share the HRAs out (member Leases of 3 s) and forward to owners, so killed owners
//! are taken over; the time until a killed owner's HRA is applied again is printed.
//!
//! At the end, for every HRA the named reservations are exactly the jobs whose `queued` was
//! acknowledged and whose `completed` was not, without duplicates; the foreign writer's
//! fields are intact; every process stayed under an RSS bound. Job-less events (each with its
//! own reservation life, so every reservation names its event) must each be applied once:
//! a double apply is seen. `CHAOS_SECONDS` (default 30) sets how long the chaos lasts;
//! `CHAOS_SEED` the choices (printed at the start and the end).

mod common;
#[path = "chaos_parts/deep.rs"]
mod deep;

use batch_scaler::{
    api::pb::{self, batch_scaler_client::BatchScalerClient},
    domain::{
        hra::HraKey,
        ownership::{Member, owner},
    },
};
use batch_scaler_testkit::{apiserver::Fault, cluster::TestCluster, process::ServiceProcess};
use common::hra_object;
use deep::{DEEP, DEEP_MAX_REPLICAS};
use fastrand::Rng;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};
use tonic::{Request, transport::Channel};

const HRAS: [&str; 4] = ["c0", "c1", "c2", "c3"];
const GHOST: &str = "ghost";
/// The HRA of job-less events: every reservation's life is `ANON_BASE_LIFE + k` seconds for
/// the event `a-k` that made it.
const ANON: &str = "anon";
const ANON_BASE_LIFE: u64 = 7200;
const REPLICAS: usize = 3;
const PRODUCERS: usize = 16;
/// Every replica must stay under this resident set size.
const RSS_BOUND_MIB: u64 = 200;
const APPLIED: i32 = pb::Outcome::Applied as i32;

/// Figures of the run, printed on one line at the end.
#[derive(Default)]
struct Figures {
    calls: AtomicU64,
    acked: AtomicU64,
    retries: AtomicU64,
    jobs: AtomicU64,
    kills: AtomicU64,
    faults: AtomicU64,
    foreign_writes: AtomicU64,
    max_rss_kib: AtomicU64,
    /// The most jobs the deep backlog held.
    deep_peak: AtomicU64,
    /// Jobs of the deep backlog completed (drawn from anywhere in it).
    deep_completed: AtomicU64,
}

/// The replicas' clients; `None` while one is down.
type Clients = Arc<Mutex<Vec<Option<BatchScalerClient<Channel>>>>>;

struct Harness {
    cluster: TestCluster,
    kubeconfig: PathBuf,
    clients: Clients,
    figures: Figures,
    /// Jobs whose reservation must be there at the end, per HRA.
    expected: Mutex<BTreeMap<&'static str, BTreeSet<String>>>,
    /// The foreign writer's last `minReplicas` per HRA.
    foreign: Mutex<BTreeMap<&'static str, u64>>,
    stop: AtomicBool,
    /// Every answer each job's deliveries got, to explain a violation.
    log: Mutex<BTreeMap<String, Vec<String>>>,
    /// Jobs whose deliveries are not all acknowledged yet.
    active: Mutex<BTreeSet<String>>,
    /// Job-less events for [`ANON`] by reservation life: acknowledged, and sent without an
    /// answer.
    anon: Mutex<(BTreeSet<u64>, BTreeSet<u64>)>,
    /// The member name of each replica now.
    members: Mutex<Vec<String>>,
    /// Numbers the member names (a restarted replica is a new member).
    generation: AtomicU64,
    /// Every kill, the HRAs its victim owned, and when one of them was applied again.
    kills: Mutex<Vec<Kill>>,
    /// The jobs of the deep backlog whose `queued` was acknowledged and `completed` not.
    deep: Mutex<BTreeSet<String>>,
}

/// A replica killed while it owned `owned`.
struct Kill {
    at: Instant,
    owned: BTreeSet<&'static str>,
    took: Option<Duration>,
}

impl Harness {
    /// Starts replica `i` under a new member name (as a Deployment's new pod would be).
    async fn start_replica(&self, i: usize) -> ServiceProcess {
        let binary = Path::new(env!("CARGO_BIN_EXE_batch-scaler"));
        let name = format!(
            "{}-r{i}-g{}",
            self.cluster.namespace,
            self.generation.fetch_add(1, Relaxed)
        );
        let process = ServiceProcess::start(
            binary,
            &self.kubeconfig,
            &self.cluster.namespace,
            "100ms",
            &[
                "--request-timeout",
                "2s",
                "--member-name",
                &name,
                "--advertise-address",
                "127.0.0.1:0",
                "--peer-namespace",
                &self.cluster.namespace,
                "--member-lease",
                "3s",
            ],
        )
        .await;
        let mut members = self.members.lock();
        if members.len() <= i {
            members.resize(i + 1, String::new());
        }
        members[i] = name;
        process
    }

    /// Notes a kill of replica `i`: the HRAs it owned then.
    fn note_kill(&self, i: usize) {
        let members: Vec<Member> = self
            .members
            .lock()
            .iter()
            .map(|id| Member {
                id: id.clone(),
                address: String::new(),
            })
            .collect();
        let victim = members[i].id.clone();
        let owned: BTreeSet<&'static str> = HRAS
            .into_iter()
            .chain([ANON])
            .filter(|hra| {
                owner(&HraKey::new(self.cluster.namespace.clone(), *hra), &members)
                    .is_some_and(|m| m.id == victim)
            })
            .collect();
        self.kills.lock().push(Kill {
            at: Instant::now(),
            owned,
            took: None,
        });
    }

    /// Notes that a batch of `hra` was applied: the first after a kill of its owner ends that
    /// owner's takeover.
    fn note_applied(&self, hra: &str) {
        let now = Instant::now();
        for kill in self.kills.lock().iter_mut() {
            if kill.took.is_none() && kill.owned.contains(hra) {
                kill.took = Some(now - kill.at);
            }
        }
    }

    fn event(&self, hra: &str, amount: i32, job: &str, delivery: &str) -> pb::ScaleEvent {
        pb::ScaleEvent {
            namespace: self.cluster.namespace.clone(),
            name: hra.into(),
            amount,
            job_id: job.into(),
            event_id: delivery.into(),
            ..Default::default()
        }
    }

    fn any_client(&self, rng: &mut Rng) -> Option<BatchScalerClient<Channel>> {
        let clients = self.clients.lock();
        let live: Vec<_> = clients.iter().flatten().collect();
        (!live.is_empty()).then(|| live[rng.usize(..live.len())].clone())
    }

    /// Sends until acknowledged (APPLIED, or a duplicate: applied before), retrying on every
    /// error as a webhook frontend does. `Err` only for an HRA that does not exist.
    async fn deliver(&self, rng: &mut Rng, event: pb::ScaleEvent) -> Result<(), String> {
        loop {
            let Some(mut client) = self.any_client(rng) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            self.figures.calls.fetch_add(1, Relaxed);
            let mut request = Request::new(event.clone());
            request.set_timeout(Duration::from_secs(10));
            let answer = client.scale_and_wait(request).await.map(|r| r.into_inner());
            self.note(&event, &answer);
            match answer {
                Ok(r) if r.duplicate => break,
                Ok(pb::ScaleResult { batch: Some(b), .. }) if b.outcome == APPLIED => {
                    self.note_applied(&event.name);
                    break;
                }
                Ok(pb::ScaleResult { batch: Some(b), .. }) if event.name == GHOST => {
                    assert!(b.error.contains("not found"), "{}", b.error);
                    return Err(b.error);
                }
                _ => {
                    self.figures.retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_millis(rng.u64(50..300))).await;
                }
            }
        }
        self.figures.acked.fetch_add(1, Relaxed);
        Ok(())
    }

    fn note(&self, event: &pb::ScaleEvent, answer: &Result<pb::ScaleResult, tonic::Status>) {
        let text = match answer {
            Ok(r) => match &r.batch {
                Some(b) => format!(
                    "{} {}: {} attempt {} added {} completed {} after {} batch {} {}",
                    event.event_id,
                    event.name,
                    b.outcome,
                    b.attempt,
                    b.added,
                    b.completed,
                    b.after,
                    b.batch_id,
                    b.error
                ),
                None => format!(
                    "{} {}: duplicate={}",
                    event.event_id, event.name, r.duplicate
                ),
            },
            Err(s) => format!(
                "{} {}: error {:?} {}",
                event.event_id,
                event.name,
                s.code(),
                s.message()
            ),
        };
        let at = chrono::Utc::now().format("%H:%M:%S%.3f");
        self.log
            .lock()
            .entry(event.job_id.clone())
            .or_default()
            .push(format!("{at} {text}"));
    }

    /// One job's life, in one of several shapes; records whether it must stay reserved.
    async fn job(&self, rng: &mut Rng, n: u64) {
        let hra = HRAS[rng.usize(..HRAS.len())];
        let job = format!("{n}");
        self.active.lock().insert(job.clone());
        let queued = self.event(hra, 1, &job, &format!("q-{n}"));
        let completed = self.event(hra, -1, &job, &format!("c-{n}"));
        let mut other = rng.fork();
        let stays = match rng.u8(..10) {
            // Queued, then completed a little later.
            0..=4 => {
                self.deliver(rng, queued).await.unwrap();
                tokio::time::sleep(Duration::from_millis(rng.u64(0..200))).await;
                self.deliver(rng, completed).await.unwrap();
                false
            }
            // Still running at the end.
            5 => {
                self.deliver(rng, queued).await.unwrap();
                true
            }
            // Completed before its queued arrives (the queued must add nothing).
            6 | 7 => {
                self.deliver(rng, completed).await.unwrap();
                self.deliver(rng, queued).await.unwrap();
                false
            }
            // Redelivered to two replicas at once, then completed, then redelivered again.
            8 => {
                let (a, b) = tokio::join!(
                    self.deliver(rng, queued.clone()),
                    self.deliver(&mut other, queued.clone())
                );
                a.unwrap();
                b.unwrap();
                self.deliver(rng, completed).await.unwrap();
                self.deliver(rng, queued).await.unwrap();
                false
            }
            // An HRA that does not exist: a FAILED answer, nothing anywhere.
            _ => {
                let ghost = self.event(GHOST, 1, &job, &format!("g-{n}"));
                assert!(self.deliver(rng, ghost).await.is_err());
                false
            }
        };
        if stays {
            self.expected
                .lock()
                .entry(hra)
                .or_default()
                .insert(job.clone());
        }
        self.figures.jobs.fetch_add(1, Relaxed);
        self.active.lock().remove(&job);
    }

    async fn produce(self: Arc<Self>, mut rng: Rng, next: Arc<AtomicU64>) {
        while !self.stop.load(Relaxed) {
            self.job(&mut rng, next.fetch_add(1, Relaxed)).await;
        }
    }

    /// Job-less `+1`s for [`ANON`], each with its own reservation life (so every reservation
    /// names the event that made it), sent once each: acknowledged ones must be there exactly
    /// once, unanswered ones at most once, nothing twice.
    async fn produce_job_less(self: Arc<Self>, mut rng: Rng) {
        let mut k = 0u64;
        while !self.stop.load(Relaxed) {
            k += 1;
            let life = ANON_BASE_LIFE + k;
            let Some(mut client) = self.any_client(&mut rng) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let event = pb::ScaleEvent {
                duration: Some(prost_types::Duration {
                    seconds: life as i64,
                    nanos: 0,
                }),
                ..self.event(ANON, 1, "", &format!("a-{k}"))
            };
            self.figures.calls.fetch_add(1, Relaxed);
            let mut request = Request::new(event);
            request.set_timeout(Duration::from_secs(10));
            let answer = client.scale_and_wait(request).await.map(|r| r.into_inner());
            let applied = matches!(&answer, Ok(pb::ScaleResult { batch: Some(b), .. }) if b.outcome == APPLIED);
            if applied {
                self.note_applied(ANON);
                self.anon.lock().0.insert(life);
                self.figures.acked.fetch_add(1, Relaxed);
            } else {
                // Failed, or no answer: it may or may not have landed (never retried, since
                // event ids are remembered per process and a retry elsewhere may apply again).
                self.anon.lock().1.insert(life);
            }
            tokio::time::sleep(Duration::from_millis(rng.u64(100..300))).await;
        }
    }

    /// Kills a random replica every 2–5 s and starts it again 0.3–1 s later; returns the
    /// replicas running when the chaos stops.
    async fn kill_and_restart(
        self: Arc<Self>,
        mut rng: Rng,
        mut replicas: Vec<ServiceProcess>,
    ) -> Vec<ServiceProcess> {
        while !self.stop.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(rng.u64(2000..5000))).await;
            self.sample_rss(&replicas);
            let i = rng.usize(..REPLICAS);
            self.clients.lock()[i] = None;
            self.note_kill(i);
            let fresh = self
                .start_after_kill(i, replicas.swap_remove(i), rng.u64(300..1000))
                .await;
            self.clients.lock()[i] = Some(fresh.client.clone());
            replicas.push(fresh);
            let last = replicas.len() - 1;
            replicas.swap(i, last);
        }
        replicas
    }

    async fn start_after_kill(
        &self,
        i: usize,
        victim: ServiceProcess,
        pause_ms: u64,
    ) -> ServiceProcess {
        victim.kill().await;
        self.figures.kills.fetch_add(1, Relaxed);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        self.start_replica(i).await
    }

    fn sample_rss(&self, replicas: &[ServiceProcess]) {
        for r in replicas {
            self.figures.max_rss_kib.fetch_max(r.rss_kib(), Relaxed);
        }
    }

    /// Bursts of 500s on writes and reads, and latency, on the test API server.
    async fn inject_faults(self: Arc<Self>, mut rng: Rng) {
        let Some(fake) = self.cluster.fake() else {
            return;
        };
        while !self.stop.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(rng.u64(500..1500))).await;
            let verb = if rng.bool() { "patch" } else { "get" };
            // A burst, not a backlog: reads are rarer than writes, and faults queued faster
            // than they are met would turn into an outage that outlasts the chaos.
            if fake.pending_faults(verb) > 0 {
                continue;
            }
            for _ in 0..rng.usize(1..6) {
                let fault = match rng.u8(..4) {
                    // Half the write faults land unseen: what a double apply would need.
                    0 | 1 if verb == "patch" => Fault::ApplyThenDrop,
                    _ => Fault::Status(500),
                };
                fake.fault_next(verb, fault);
                self.figures.faults.fetch_add(1, Relaxed);
            }
            fake.set_latency(Duration::from_millis(rng.u64(0..30)));
        }
        fake.set_latency(Duration::ZERO);
        fake.clear_faults();
    }

    /// Another controller editing fields we do not own, concurrently with our writes.
    async fn write_foreign_fields(self: Arc<Self>, mut rng: Rng) {
        let mut n = 0;
        while !self.stop.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(rng.u64(100..400))).await;
            n += 1;
            let hra = HRAS[rng.usize(..HRAS.len())];
            let patch = json!({
                "metadata": {"annotations": {"example.com/foreign": n.to_string()}},
                "spec": {"minReplicas": n},
            });
            // An injected fault may hit this write instead of ours: like any client, the
            // foreign writer retries (the patch is idempotent).
            while self
                .cluster
                .merge_patch("horizontalrunnerautoscalers", hra, patch.clone())
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.foreign.lock().insert(hra, n);
            self.figures.foreign_writes.fetch_add(1, Relaxed);
        }
    }
}

/// `CHAOS_SEED`, or a fresh one; printed, so a run's choices can be made again (each task
/// draws from its own generator seeded from it; how tasks interleave still varies).
fn chaos_seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

fn chaos_seconds() -> u64 {
    std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn names(object: &Value) -> Vec<String> {
    object
        .pointer("/spec/capacityReservations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_chaos_replicas_kills_faults_and_foreign_writes_keep_every_reservation_exact() {
    let seed = chaos_seed();
    println!("chaos: seed={seed} (CHAOS_SEED={seed} makes the same choices again)");
    let rng = |task: u64| Rng::with_seed(seed.wrapping_add(task));
    let cluster = TestCluster::start().await;
    for hra in HRAS.into_iter().chain([ANON, DEEP]) {
        let max = match hra {
            "c3" => Some(2),
            DEEP => Some(DEEP_MAX_REPLICAS),
            _ => None,
        };
        let mut object = hra_object(&cluster.namespace, hra, max);
        object["metadata"]["annotations"] = json!({"owner": "platform-team"});
        cluster.create(object).await;
    }
    let kubeconfig = cluster.kubeconfig();
    let harness = Arc::new(Harness {
        cluster,
        kubeconfig,
        clients: Arc::default(),
        figures: Figures::default(),
        expected: Mutex::default(),
        foreign: Mutex::default(),
        stop: AtomicBool::new(false),
        log: Mutex::default(),
        active: Mutex::default(),
        anon: Mutex::default(),
        members: Mutex::default(),
        generation: AtomicU64::new(0),
        kills: Mutex::default(),
        deep: Mutex::default(),
    });
    let mut replicas = Vec::new();
    for i in 0..REPLICAS {
        let r = harness.start_replica(i).await;
        harness.clients.lock().push(Some(r.client.clone()));
        replicas.push(r);
    }

    let seconds = chaos_seconds();
    let next = Arc::new(AtomicU64::new(1));
    let mut producers = tokio::task::JoinSet::new();
    for p in 0..PRODUCERS as u64 {
        producers.spawn(harness.clone().produce(rng(p), next.clone()));
    }
    producers.spawn(harness.clone().produce_job_less(rng(100)));
    producers.spawn(harness.clone().produce_deep(rng(104)));
    let killer = tokio::spawn(harness.clone().kill_and_restart(rng(101), replicas));
    let faults = tokio::spawn(harness.clone().inject_faults(rng(102)));
    let foreign = tokio::spawn(harness.clone().write_foreign_fields(rng(103)));
    tokio::time::sleep(Duration::from_secs(seconds)).await;

    // Stop the chaos; producers finish the job in hand (retrying until acknowledged).
    harness.stop.store(true, Relaxed);
    let (replicas, _, _) = tokio::join!(killer, faults, foreign);
    let replicas = replicas.unwrap();
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(done) = producers.join_next().await {
            done.unwrap();
        }
    })
    .await;
    if drained.is_err() {
        {
            let log = harness.log.lock();
            for job in harness.active.lock().iter() {
                eprintln!(
                    "job {job} not acknowledged:\n  {}",
                    log.get(job).map(|l| l.join("\n  ")).unwrap_or_default()
                );
            }
        }
        for r in &replicas {
            let (_, metrics) = common::http_get(r.metrics, "/metrics").await;
            let gauges: Vec<&str> = metrics
                .lines()
                .filter(|l| {
                    l.starts_with("batch_scaler_pending") || l.starts_with("batch_scaler_applies")
                })
                .collect();
            eprintln!("replica {}: {gauges:?}", r.addr);
        }
        panic!("producers' last jobs not acknowledged within 2 minutes of the chaos stopping");
    }
    harness.sample_rss(&replicas);

    let mut violations = Vec::new();
    let expected = harness.expected.lock().clone();
    let foreign = harness.foreign.lock().clone();
    for hra in HRAS {
        let object = harness.cluster.object(hra).await.unwrap();
        let got = names(&object);
        let unique: BTreeSet<String> = got.iter().cloned().collect();
        if unique.len() != got.len() {
            violations.push(format!("{hra}: duplicate reservations in {got:?}"));
        }
        let want = expected.get(hra).cloned().unwrap_or_default();
        for extra in unique.difference(&want) {
            let since = object["spec"]["capacityReservations"]
                .as_array()
                .and_then(|l| l.iter().find(|r| r["name"] == extra.as_str()))
                .map(|r| r["effectiveTime"].to_string())
                .unwrap_or_default();
            violations.push(format!(
                "{hra}: reservation {extra:?} not expected (effective {since})"
            ));
        }
        for missing in want.difference(&unique) {
            violations.push(format!("{hra}: reservation {missing:?} missing"));
        }
        if let Some(n) = foreign.get(hra) {
            let fields = (
                object["spec"]["minReplicas"].as_u64(),
                object["metadata"]["annotations"]["example.com/foreign"].as_str(),
            );
            if fields != (Some(*n), Some(n.to_string().as_str())) {
                violations.push(format!(
                    "{hra}: foreign fields {fields:?}, last written {n}"
                ));
            }
        }
        if object["metadata"]["annotations"]["owner"] != "platform-team"
            || object["metadata"]["labels"]["team"] != "ci"
        {
            violations.push(format!("{hra}: fields we do not own changed"));
        }
    }
    let deep = harness.cluster.object(DEEP).await.unwrap();
    violations.extend(harness.deep_violations(&deep));
    let deep_peak = harness.figures.deep_peak.load(Relaxed);
    if deep_peak < DEEP_MAX_REPLICAS as u64 * 50 {
        violations.push(format!(
            "{DEEP}: the backlog reached only {deep_peak} jobs (maxReplicas × 50 wanted)"
        ));
    }
    assert!(harness.cluster.object(GHOST).await.is_none());
    // Job-less: every acknowledged event's reservation exactly once, an unanswered one at
    // most once, nothing else and nothing twice.
    let (acked_anon, unsure_anon) = harness.anon.lock().clone();
    let anon = harness.cluster.object(ANON).await.unwrap();
    let mut lives = BTreeMap::<u64, usize>::new();
    for r in anon["spec"]["capacityReservations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let at = |f: &str| {
            chrono::DateTime::parse_from_rfc3339(r[f].as_str().unwrap_or_default())
                .map(|t| t.timestamp())
                .unwrap_or_default()
        };
        let life = (at("expirationTime") - at("effectiveTime")) as u64;
        *lives.entry(life).or_default() += 1;
    }
    for (life, n) in &lives {
        if *n > 1 {
            violations.push(format!(
                "{ANON}: job-less event a-{} applied {n} times",
                life - ANON_BASE_LIFE
            ));
        }
        if !acked_anon.contains(life) && !unsure_anon.contains(life) {
            violations.push(format!(
                "{ANON}: reservation of life {life}s from no event sent"
            ));
        }
    }
    for life in &acked_anon {
        if !lives.contains_key(life) {
            violations.push(format!(
                "{ANON}: acknowledged job-less event a-{} missing",
                life - ANON_BASE_LIFE
            ));
        }
    }

    let f = &harness.figures;
    let conflicts = harness
        .cluster
        .fake()
        .map_or(0, |fake| fake.count("conflict"));
    let max_rss_mib = f.max_rss_kib.load(Relaxed) / 1024;
    let mut takeovers: Vec<u128> = harness
        .kills
        .lock()
        .iter()
        .filter_map(|k| k.took.map(|t| t.as_millis()))
        .collect();
    takeovers.sort_unstable();
    let takeover = |q: f64| {
        takeovers
            .get(((takeovers.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "chaos: takeovers={} (a killed owner's HRA applied again after p50 {} ms, max {} ms)",
        takeovers.len(),
        takeover(0.5),
        takeover(1.0)
    );
    println!(
        "chaos: seed={seed} seconds={seconds} jobs={} job_less={} calls={} acked={} retries={} kills={} faults={} \
         foreign_writes={} conflicts={conflicts} reserved={} deep_peak={deep_peak} deep_final={} deep_completed={} \
         max_rss_mib={max_rss_mib} violations={}",
        f.jobs.load(Relaxed),
        acked_anon.len() + unsure_anon.len(),
        f.calls.load(Relaxed),
        f.acked.load(Relaxed),
        f.retries.load(Relaxed),
        f.kills.load(Relaxed),
        f.faults.load(Relaxed),
        f.foreign_writes.load(Relaxed),
        expected.values().map(BTreeSet::len).sum::<usize>(),
        harness.deep.lock().len(),
        f.deep_completed.load(Relaxed),
        violations.len(),
    );
    if !violations.is_empty() {
        let log = harness.log.lock();
        for v in &violations {
            let job = v.split('"').nth(1).unwrap_or_default();
            eprintln!(
                "{v}:\n  {}",
                log.get(job).map(|l| l.join("\n  ")).unwrap_or_default()
            );
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(f.kills.load(Relaxed) > 0, "the chaos killed replicas");
    assert!(
        max_rss_mib < RSS_BOUND_MIB,
        "a replica reached {max_rss_mib} MiB"
    );
    if harness.cluster.fake().is_some() {
        let _ = std::fs::remove_file(&harness.kubeconfig);
    }
}
