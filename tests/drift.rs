//! Keeping HRAs true to GitHub, on the memory backend against the fake GitHub REST API:
//! failed webhook deliveries recovered once, stale reservations checked and completed, the
//! request budget and GitHub's rate limits held, and scaling untouched when GitHub refuses
//! us or is slow. (The Kubernetes path with two replicas is in `kube_drift.rs`.)

mod common;

use batch_scaler::{api::pb, config::Settings, store::MemoryStore};
use batch_scaler_testkit::github::{FakeGithub, workflow_job_payload};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_millis(100);
const HOOK: &str = "org/octo/1";
const HOOK_PATH: &str = "/orgs/octo/hooks/1/deliveries";

fn runner_deployment(ns: &str, name: &str, repository: &str) -> Value {
    json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"spec": {"repository": repository}}}})
}

/// HRA `ci/app`, scaling the runners of `octo/app`, plus `extra` objects.
fn store(extra: Vec<Value>) -> MemoryStore {
    let mut objects = vec![
        hra_object("ci", "app", None),
        runner_deployment("ci", "app", "octo/app"),
    ];
    objects.extend(extra);
    MemoryStore::with_objects(objects).unwrap()
}

fn settings(github: batch_scaler::github::GithubConfig) -> Settings {
    let mut s = test_settings(WINDOW);
    s.github = Some(github);
    s
}

fn queued(job: u64) -> Value {
    workflow_job_payload("queued", job, "octo/app", &["self-hosted"])
}

async fn reservation_names(store: &MemoryStore) -> Vec<String> {
    use batch_scaler::store::HraStore;
    let hra = store.get(&key("ci", "app")).await.unwrap();
    hra.capacity_reservations
        .into_iter()
        .map(|r| r.name)
        .collect()
}

async fn metric(server: &TestServer, series: &str) -> f64 {
    sample(&scrape(server.http_addr).await, series)
}

#[tokio::test]
async fn a_failed_queued_delivery_becomes_one_job_named_reservation_even_when_redelivered() {
    let gh = FakeGithub::start().await;
    let (_, guid) = gh.deliver(HOOK_PATH, "workflow_job", queued(101), 502);
    // Delivered fine: the frontend handled it, so it is not ours to recover.
    gh.deliver(HOOK_PATH, "workflow_job", queued(102), 200);
    // Failed, but scales nothing.
    gh.deliver(
        HOOK_PATH,
        "ping",
        json!({"zen": "Keep it logically awesome."}),
        0,
    );
    gh.deliver(
        HOOK_PATH,
        "workflow_job",
        workflow_job_payload("in_progress", 103, "octo/app", &[]),
        0,
    );
    let config = gh.config(&[HOOK], Duration::from_secs(3600));
    let (server, store) = TestServer::with_store(store(vec![]), settings(config)).await;
    let mut results = watch_all(&server).await;
    let result = recv(&mut results).await;
    assert_eq!((result.added, result.recovered), (1, 1), "{result:?}");
    assert_eq!(reservation_names(&store).await, ["101"]);
    // The repository is kept with the reservation, so that it can be verified.
    use batch_scaler::store::HraStore;
    let hra = store.get(&key("ci", "app")).await.unwrap();
    assert_eq!(
        hra.job_repositories.get("101").map(|r| &**r),
        Some("octo/app")
    );

    // Redelivered by hand: it fails again, then reaches the frontend, which calls ScaleJob
    // with the guid as event id.
    gh.redeliver(HOOK_PATH, &guid, 502);
    let polls = gh.count(HOOK_PATH);
    eventually(Duration::from_secs(10), "two more polls", || async {
        gh.count(HOOK_PATH) >= polls + 3
    })
    .await;
    let mut job = queued_job("octo/app", &["self-hosted"], "101");
    job.event_id = guid.clone();
    job.wait = true;
    let answer = server
        .client()
        .await
        .scale_job(job)
        .await
        .unwrap()
        .into_inner();
    assert!(answer.duplicate, "{answer:?}");
    gh.redeliver(HOOK_PATH, &guid, 200);
    let polls = gh.count(HOOK_PATH);
    eventually(Duration::from_secs(10), "two more polls", || async {
        gh.count(HOOK_PATH) >= polls + 2
    })
    .await;
    assert_eq!(reservation_names(&store).await, ["101"]);
    let details = gh
        .requests()
        .iter()
        .filter(|r| r.path.starts_with(&format!("{HOOK_PATH}/")))
        .count();
    assert_eq!(
        details,
        1,
        "only the failed queued delivery was fetched: {:?}",
        gh.requests()
    );
    let queued_total = metric(
        &server,
        "batch_scaler_recovered_deliveries_total{result=\"queued\"}",
    )
    .await;
    assert_eq!(queued_total, 1.0);
    assert_eq!(
        metric(
            &server,
            "batch_scaler_recovered_deliveries_total{result=\"ignored\"}"
        )
        .await,
        1.0
    );
    let stats = server
        .client()
        .await
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.deliveries_recovered, 1);
}

#[tokio::test]
async fn a_delivery_that_failed_then_succeeded_is_not_applied_twice() {
    let gh = FakeGithub::start().await;
    let (_, guid) = gh.deliver(HOOK_PATH, "workflow_job", queued(201), 0);
    gh.redeliver(HOOK_PATH, &guid, 204);
    let config = gh.config(&[HOOK], Duration::from_secs(3600));
    let (server, store) = TestServer::with_store(store(vec![]), settings(config)).await;
    // The successful redelivery reached the frontend.
    let mut job = queued_job("octo/app", &["self-hosted"], "201");
    job.event_id = guid;
    job.wait = true;
    server.client().await.scale_job(job).await.unwrap();
    eventually(Duration::from_secs(10), "three polls", || async {
        gh.count(HOOK_PATH) >= 3
    })
    .await;
    assert_eq!(reservation_names(&store).await, ["201"]);
    assert_eq!(
        gh.count(&format!("{HOOK_PATH}/")),
        0,
        "nothing to recover: {:?}",
        gh.requests()
    );
}

#[tokio::test]
async fn a_lost_completed_delivery_is_recovered_and_frees_the_reservation() {
    let gh = FakeGithub::start().await;
    let config = gh.config(&[HOOK], Duration::from_secs(3600));
    let (server, store) = TestServer::with_store(store(vec![]), settings(config)).await;
    let mut job = queued_job("octo/app", &["self-hosted"], "301");
    job.wait = true;
    server.client().await.scale_job(job).await.unwrap();
    assert_eq!(reservation_names(&store).await, ["301"]);
    gh.deliver(
        HOOK_PATH,
        "workflow_job",
        workflow_job_payload("completed", 301, "octo/app", &["self-hosted"]),
        0,
    );
    eventually(
        Duration::from_secs(10),
        "the completion recovered",
        || async { reservation_names(&store).await.is_empty() },
    )
    .await;
}

#[tokio::test]
async fn reservations_of_jobs_ended_on_github_are_completed_after_verify_after_and_live_ones_kept()
{
    let gh = FakeGithub::start().await;
    let verify_after = Duration::from_secs(2);
    let config = gh.config(&[], verify_after);
    let (server, store) = TestServer::with_store(store(vec![]), settings(config)).await;
    let mut results = watch_all(&server).await;
    let mut client = server.client().await;
    for (job, status) in [
        ("401", Some("completed")),
        ("402", Some("in_progress")),
        ("403", None),
    ] {
        if let Some(status) = status {
            gh.set_job("octo/app", job, status);
        }
        let mut j = queued_job("octo/app", &["self-hosted"], job);
        j.wait = true;
        client.scale_job(j).await.unwrap();
    }
    let added = Instant::now();
    // A reservation of unknown repository (a plain event) is left to expiry.
    client
        .scale(job_ev("ci", "app", 1, "404", ""))
        .await
        .unwrap();
    let (mut completed, mut verified) = (0, 0);
    while verified < 2 {
        let r = recv(&mut results).await;
        completed += r.completed;
        verified += r.verified;
    }
    let took = added.elapsed();
    assert_eq!(completed, 2);
    let mut names = reservation_names(&store).await;
    names.sort();
    assert_eq!(names, ["402", "404"]);
    assert!(took >= verify_after - Duration::from_secs(1), "{took:?}");
    println!(
        "verify: a lost completed freed its reservation {took:?} after it was reserved (--github-verify-after {verify_after:?})"
    );
    // The job still running is asked again after another verify-after, not every scan.
    let asked = |job: &str| {
        gh.requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/jobs/{job}")))
            .count()
    };
    assert_eq!(asked("402"), 1);
    eventually(Duration::from_secs(10), "402 checked again", || async {
        asked("402") >= 2
    })
    .await;
    assert!(asked("402") <= 3, "{}", asked("402"));
    assert_eq!(asked("404"), 0);
    // The completion is remembered: a late queued for 401 adds nothing.
    use batch_scaler::store::HraStore;
    let hra = store.get(&key("ci", "app")).await.unwrap();
    assert!(hra.finished_jobs.contains("401", chrono::Utc::now()));
    let mut late = queued_job("octo/app", &["self-hosted"], "401");
    late.wait = true;
    client.scale_job(late).await.unwrap();
    assert!(!reservation_names(&store).await.contains(&"401".to_string()));
    for (result, n) in [("completed", 1.0), ("gone", 1.0)] {
        let series = format!("batch_scaler_verified_reservations_total{{result=\"{result}\"}}");
        assert_eq!(metric(&server, &series).await, n, "{series}");
    }
    assert!(
        metric(
            &server,
            "batch_scaler_verified_reservations_total{result=\"kept\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_grouped_job_ended_on_github_is_completed_by_the_verifier() {
    use batch_scaler::{domain::github::verify::reserved_jobs, store::HraStore};
    let gh = FakeGithub::start().await;
    let verify_after = Duration::from_secs(2);
    let config = gh.config(&[], verify_after);
    let (server, store) = TestServer::with_store(store(vec![]), settings(config)).await;
    let mut client = server.client().await;
    // 130 waiting jobs: the oldest 100 named, the last 30 in a group that keeps their
    // repository. GitHub says job 5120 (grouped) completed; every other one still waits.
    for job in 5000..5130 {
        let status = if job == 5120 { "completed" } else { "queued" };
        gh.set_job("octo/app", &job.to_string(), status);
    }
    for job in 5000..5130 {
        client
            .scale_job(queued_job("octo/app", &["self-hosted"], &job.to_string()))
            .await
            .unwrap();
    }
    let hra = || async { store.get(&key("ci", "app")).await.unwrap() };
    eventually(Duration::from_secs(10), "130 jobs held", || async {
        hra().await.units() == 130
    })
    .await;
    assert!(
        hra().await.capacity_reservations.len() < 130,
        "some are grouped"
    );
    eventually(
        Duration::from_secs(15),
        "the grouped job completed",
        || async { !reserved_jobs(&hra().await).contains("5120") },
    )
    .await;
    let h = hra().await;
    assert_eq!(h.units(), 129);
    assert!(reserved_jobs(&h).contains("5121"));
    assert!(h.finished_jobs.contains("5120", chrono::Utc::now()));
    let asked = gh
        .requests()
        .iter()
        .filter(|r| r.path == "/repos/octo/app/actions/jobs/5121")
        .count();
    assert!(asked >= 1, "the waiting grouped job was asked about");
}
