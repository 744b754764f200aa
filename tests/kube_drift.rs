//! Keeping HRAs true to GitHub on the Kubernetes backend with two replicas sharing the HRAs
//! out: each failed delivery is recovered once (one replica polls the hook), each stale
//! reservation is checked once (by its HRA's owner), and a job completed on GitHub loses its
//! reservation. On the test API server, or an existing cluster with
//! `USE_EXISTING_CLUSTER=true`; GitHub is always the local fake.

mod common;

use batch_scaler::api::pb;
use batch_scaler_testkit::{
    cluster::TestCluster,
    github::{FakeGithub, workflow_job_payload},
    members::{await_members, member},
};
use common::*;
use serde_json::json;
use std::{collections::HashMap, time::Duration};

const WINDOW: Duration = Duration::from_millis(200);
const HRAS: usize = 4;
const JOBS: u64 = 12;

/// A replica of the service polling `hook` and verifying after 3 s.
async fn replica(c: &TestCluster, name: &str, gh: &FakeGithub, hook: &str) -> TestServer {
    let mut settings = test_settings(WINDOW);
    settings.github = Some(gh.config(&[hook], Duration::from_secs(3)));
    member(c, name, settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_two_replicas_recover_each_delivery_and_verify_each_reservation_once() {
    let c = TestCluster::start().await;
    let org = c.namespace.clone();
    for i in 0..HRAS {
        c.create(hra_object(&c.namespace, &format!("h{i}"), None))
            .await;
        c.create(
            json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
            "metadata": {"name": format!("h{i}")},
            "spec": {"template": {"spec": {"repository": format!("{org}/r{i}")}}}}),
        )
        .await;
    }
    let gh = FakeGithub::start().await;
    let hook_path = format!("/orgs/{org}/hooks/9/deliveries");
    let repo = |job: u64| format!("{org}/r{}", job as usize % HRAS);
    let hook = format!("org/{org}/9");
    let both = [
        replica(&c, "a", &gh, &hook).await,
        replica(&c, "b", &gh, &hook).await,
    ];
    await_members(&both, 2).await;
    // Once the replicas know each other: jobs 1..=12 queued, every delivery failed; GitHub says the even ones have completed.
    for job in 1..=JOBS {
        gh.deliver(
            &hook_path,
            "workflow_job",
            workflow_job_payload("queued", job, &repo(job), &["self-hosted"]),
            502,
        );
        let status = if job % 2 == 0 {
            "completed"
        } else {
            "in_progress"
        };
        gh.set_job(&repo(job), &job.to_string(), status);
    }
    let names = || async {
        let mut all = Vec::new();
        for i in 0..HRAS {
            let hra = c.object(&format!("h{i}")).await.unwrap();
            for r in hra["spec"]["capacityReservations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                all.push(r["name"].as_str().unwrap().parse::<u64>().unwrap());
            }
        }
        all.sort();
        all
    };
    // The even jobs' reservations are removed once verified; the odd ones stay.
    let odd: Vec<u64> = (1..=JOBS).filter(|j| j % 2 == 1).collect();
    eventually(
        Duration::from_secs(40),
        "recovered, then the completed ones verified",
        || async { names().await == odd },
    )
    .await;
    let requests = gh.requests();
    let details = requests
        .iter()
        .filter(|r| r.path.starts_with(&format!("{hook_path}/")))
        .count();
    assert_eq!(details, JOBS as usize, "each failed delivery fetched once");
    let mut checks: HashMap<String, usize> = HashMap::new();
    for r in requests
        .iter()
        .filter(|r| r.path.contains("/actions/jobs/"))
    {
        *checks
            .entry(r.path.rsplit('/').next().unwrap().to_owned())
            .or_default() += 1;
    }
    for job in (1..=JOBS).filter(|j| j % 2 == 0) {
        assert_eq!(
            checks.get(&job.to_string()),
            Some(&1),
            "job {job} checked once: {checks:?}"
        );
    }
    for job in &odd {
        assert!(
            checks.get(&job.to_string()).is_some_and(|n| *n <= 2),
            "job {job}: {checks:?}"
        );
    }
    let mut recovered = 0;
    for r in &both {
        let stats = r
            .client()
            .await
            .get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner();
        recovered += stats.deliveries_recovered;
    }
    assert_eq!(recovered, JOBS, "each delivery recovered by one replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_grouped_job_ended_on_github_is_completed_by_the_verifier() {
    use batch_scaler::{
        domain::{github::verify::reserved_jobs, hra::Hra},
        store::resource::parse_hra,
    };
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    c.create(hra_object(&ns, "grouped", None)).await;
    let gh = FakeGithub::start().await;
    let mut settings = test_settings(WINDOW);
    settings.github = Some(gh.config(&[], Duration::from_secs(2)));
    let server = TestServer::on_cluster(&c, settings).await;
    // 130 waiting jobs: the oldest 100 named, the last 30 grouped with their repository.
    // GitHub says job 5120 (grouped) completed; every other one still waits.
    let repo = format!("{ns}/app");
    for job in 5000..5130 {
        let status = if job == 5120 { "completed" } else { "queued" };
        gh.set_job(&repo, &job.to_string(), status);
    }
    let events = (5000..5130)
        .map(|job| pb::ScaleEvent {
            repository: repo.clone(),
            ..job_ev(&ns, "grouped", 1, &job.to_string(), &format!("q-{job}"))
        })
        .collect();
    server.publish(events).await;
    let hra = || async { parse_hra(&c.object("grouped").await.unwrap()).unwrap() };
    eventually(Duration::from_secs(10), "130 jobs held", || async {
        hra().await.units() == 130
    })
    .await;
    let h: Hra = hra().await;
    assert!(h.capacity_reservations.len() < 130, "some are grouped");
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
}
