//! A soak of the service as a busy installation runs it, printing per minute the service's
//! RSS, its CPU per 1,000 events and the p99 of event age at apply:
//! - the release binary on the memory backend, 500 HRAs, `--window 300ms`;
//! - three producers at ~470 events/s each (~1,400 in all) on a `Publish` stream, every job queued and
//!   completed 30 s later (job and event ids set, as a webhook frontend sends them);
//! - 20 dashboards reading `WatchBatches`, 5 that never read, and a watcher opened and closed
//!   five times a second.
//!
//! Run: `cargo build --release && cargo run --release --example soak -- [MINUTES]` (default
//! 15). Not part of `cargo test`: it takes its minutes.

use batch_scaler::api::pb::{self, WatchBatchesRequest, batch_scaler_client::BatchScalerClient};
use batch_scaler_testkit::{process::rss_kib, sample, scrape};
use std::{
    collections::VecDeque,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const HRAS: usize = 500;
const PRODUCERS: u64 = 3;
const EVENTS_PER_SECOND: u64 = 470;
const COMPLETE_AFTER: Duration = Duration::from_secs(30);
const AGE: &str = "batch_scaler_event_age_at_apply_seconds";

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn seed() -> PathBuf {
    let mut yaml = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..HRAS {
        yaml += &format!(
            "- apiVersion: actions.summerwind.dev/v1alpha1\n  kind: HorizontalRunnerAutoscaler\n  \
             metadata: {{name: hra-{i:03}, namespace: soak}}\n  spec:\n    scaleTargetRef: \
             {{kind: RunnerDeployment, name: hra-{i:03}}}\n    minReplicas: 0\n    \
             scaleUpTriggers: [{{githubEvent: {{workflowJob: {{}}}}, duration: 30m}}]\n"
        );
    }
    let path = std::env::temp_dir().join(format!("soak-hras-{}.yaml", std::process::id()));
    std::fs::write(&path, yaml).expect("seed file written");
    path
}

async fn client(addr: SocketAddr) -> BatchScalerClient<Channel> {
    for _ in 0..100 {
        if let Ok(c) = BatchScalerClient::connect(format!("http://{addr}")).await {
            return c.max_decoding_message_size(64 * 1024 * 1024);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not start on {addr}");
}

/// One producer: a `Publish` stream sending queued events and, 30 s later, their completions.
async fn produce(addr: SocketAddr, n: u64, sent: Arc<AtomicU64>) {
    let mut c = client(addr).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ScaleEvent>(4096);
    tokio::spawn(async move {
        let mut pending: VecDeque<(Instant, u64)> = VecDeque::new();
        let mut next_job = n * 1_000_000_000;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
            let now = Instant::now();
            let mut budget = EVENTS_PER_SECOND / 100;
            let mut batch = Vec::new();
            while budget > 0 && pending.front().is_some_and(|(at, _)| *at <= now) {
                let (_, job) = pending.pop_front().unwrap();
                batch.push((job, -1));
                budget -= 1;
            }
            for _ in 0..budget {
                next_job += 1;
                pending.push_back((now + COMPLETE_AFTER, next_job));
                batch.push((next_job, 1));
            }
            for (job, amount) in batch {
                let event = pb::ScaleEvent {
                    namespace: "soak".into(),
                    name: format!("hra-{:03}", job % HRAS as u64),
                    amount,
                    job_id: job.to_string(),
                    event_id: format!("{job}-{amount}"),
                    ..Default::default()
                };
                if tx.send(event).await.is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    if let Err(e) = c.publish(stream).await {
        eprintln!("producer {n}: {e}");
    }
}

async fn watch(addr: SocketAddr, read: bool) {
    let mut c = client(addr).await;
    let mut stream = c
        .watch_batches(WatchBatchesRequest::default())
        .await
        .expect("watch opened")
        .into_inner();
    if read {
        while let Some(Ok(_)) = stream.next().await {}
    } else {
        std::future::pending::<()>().await;
    }
}

async fn churn(addr: SocketAddr) {
    let mut c = client(addr).await;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if let Ok(r) = c.watch_batches(WatchBatchesRequest::default()).await {
            let mut stream = r.into_inner();
            let _ = stream.next().await;
        }
    }
}

/// User plus system CPU seconds of process `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
}

/// The cumulative buckets of the event-age histogram: (upper bound, count).
fn age_buckets(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{AGE}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The p99 upper bound between two scrapes of the histogram.
fn p99(before: &[(f64, f64)], after: &[(f64, f64)]) -> f64 {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, n)| *n);
            (*le, n - was)
        })
        .collect();
    let total = delta.last().map_or(0.0, |(_, n)| *n);
    delta
        .iter()
        .find(|(_, n)| *n >= total * 0.99)
        .map_or(f64::NAN, |(le, _)| *le)
}

#[tokio::main]
async fn main() {
    let minutes: u64 = std::env::args()
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(15);
    let exe = std::env::current_exe().expect("own path");
    let binary = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("batch-scaler"))
        .filter(|p| p.exists())
        .expect("build the service first: cargo build --release");
    let (grpc, metrics) = (free_port(), free_port());
    let seed = seed();
    let mut service = tokio::process::Command::new(&binary)
        .args(["--seed", &seed.display().to_string(), "--window", "300ms"])
        .args([
            "--listen",
            &grpc.to_string(),
            "--metrics-listen",
            &metrics.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("service started");
    let pid = service.id().expect("running");
    client(grpc).await;
    while tokio::net::TcpStream::connect(metrics).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = Arc::new(AtomicU64::new(0));
    for _ in 0..20 {
        tokio::spawn(watch(grpc, true));
    }
    for _ in 0..5 {
        tokio::spawn(watch(grpc, false));
    }
    tokio::spawn(churn(grpc));
    for n in 0..PRODUCERS {
        tokio::spawn(produce(grpc, n, sent.clone()));
    }
    println!("minute  rss_mib  cpu_s  events  cpu_ms_per_1000_events  apply_p99_s");
    let accepted = "batch_scaler_events_received_total{result=\"accepted\"}";
    let mut last = (cpu_seconds(pid), 0.0, age_buckets(&scrape(metrics).await));
    let mut rows = Vec::new();
    for minute in 1..=minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let text = scrape(metrics).await;
        let (cpu, events, ages) = (
            cpu_seconds(pid),
            sample(&text, accepted),
            age_buckets(&text),
        );
        let rss = rss_kib(&pid.to_string()) as f64 / 1024.0;
        let per_1000 = (cpu - last.0) * 1000.0 * 1000.0 / (events - last.1).max(1.0);
        let p = p99(&last.2, &ages);
        println!(
            "{minute:>6}  {rss:>7.1}  {:>5.1}  {:>6.0}  {per_1000:>22.1}  {p:>11.2}",
            cpu - last.0,
            events - last.1
        );
        rows.push((rss, per_1000, p));
        last = (cpu, events, ages);
    }
    let mean = |rows: &[(f64, f64, f64)]| rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
    if rows.len() >= 6 {
        let (first, end) = (mean(&rows[..3]), mean(&rows[rows.len() - 3..]));
        let worst = rows.iter().map(|r| r.2).fold(0.0, f64::max);
        println!(
            "end: rss {:.1} MiB; cpu per 1,000 events, last 3 min / minutes 1-3: {:.2} ({end:.1} / {first:.1} ms); worst apply p99 {worst:.2} s; producers sent {}",
            rows.last().map_or(0.0, |r| r.0),
            end / first,
            sent.load(Ordering::Relaxed)
        );
    }
    if std::env::var_os("SOAK_METRICS").is_some() {
        println!("{}", scrape(metrics).await);
    }
    let _ = service.kill().await;
    let _ = std::fs::remove_file(seed);
}
