//! The job ledger with two replicas sharing the HRAs out on the Kubernetes backend: each HRA's
//! owner keeps its ledger (events are forwarded there), any replica answers `GetJobStats`
//! with the owner's figures, and after the owner stops the new owner's figures start afresh,
//! with a `since` that says so. On the test API server, or an existing cluster with
//! `USE_EXISTING_CLUSTER=true`.

mod common;

use batch_scaler::api::{pb, peers::FORWARDED_BY};
use batch_scaler_testkit::{
    cluster::TestCluster,
    members::{await_members, member},
};
use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use std::time::Duration;
use tonic::Request;

/// Enough HRAs that both replicas own some (all on one owner: 2 in 4,096 namespaces).
const HRAS: usize = 12;
const JOBS: u64 = 3;

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

/// Job `id` of HRA `hra`, created at `created`: queued, started 20 s later, completed 100 s
/// after that.
fn job(ns: &str, hra: &str, id: u64, amount: i32, created: DateTime<Utc>) -> pb::ScaleEvent {
    let started = created + TimeDelta::seconds(20);
    let times = pb::JobTimes {
        created_at: ts(created),
        started_at: if amount > 0 { None } else { ts(started) },
        completed_at: if amount < 0 {
            ts(started + TimeDelta::seconds(100))
        } else {
            None
        },
        runner_name: String::new(),
        ran: amount <= 0,
    };
    pb::ScaleEvent {
        job_times: Some(times),
        ..job_ev(
            ns,
            hra,
            amount,
            &id.to_string(),
            &format!("{hra}-{id}-{amount}"),
        )
    }
}

/// Sends job `id`'s queued, in_progress and completed to `server`.
async fn run_job(server: &TestServer, ns: &str, hra: &str, id: u64) {
    let created = Utc::now() - TimeDelta::minutes(10);
    server.scale_and_wait(job(ns, hra, id, 1, created)).await;
    let start = job(ns, hra, id, 0, created);
    server.client().await.scale(start).await.unwrap();
    server.scale_and_wait(job(ns, hra, id, -1, created)).await;
}

/// `hra`'s job figures from `server`: as it forwards them (`local: false`), or its own.
async fn stats(server: &TestServer, ns: &str, hra: &str, local: bool) -> pb::JobStats {
    let mut request = Request::new(pb::TargetRef {
        namespace: ns.into(),
        name: hra.into(),
    });
    if local {
        request
            .metadata_mut()
            .insert(FORWARDED_BY, "the-test".parse().unwrap());
    }
    let mut client = server.client().await;
    client.get_job_stats(request).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_any_replica_answers_the_owner_s_figures_and_a_new_owner_starts_afresh() {
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    let hras: Vec<String> = (0..HRAS).map(|i| format!("h{i}")).collect();
    for hra in &hras {
        c.create(hra_object(&ns, hra, None)).await;
    }
    let settings = || test_settings(Duration::from_millis(100));
    let mut both = vec![
        member(&c, "a", settings()).await,
        member(&c, "b", settings()).await,
    ];
    await_members(&both, 2).await;
    // Every job goes to replica a, which forwards those of b's HRAs to b.
    for hra in &hras {
        for id in 1..=JOBS {
            run_job(&both[0], &ns, hra, id).await;
        }
    }
    // Any replica answers every HRA with its owner's figures; exactly one keeps each.
    let mut owners = Vec::new();
    for hra in &hras {
        for server in &both {
            let s = stats(server, &ns, hra, false).await;
            assert_eq!(
                (s.jobs_completed, s.run.unwrap().count),
                (JOBS, JOBS),
                "{hra}"
            );
            assert_eq!(s.wait.unwrap().sum.unwrap().seconds, 20 * JOBS as i64);
        }
        let mut keepers = Vec::new();
        for (i, server) in both.iter().enumerate() {
            if stats(server, &ns, hra, true).await.jobs_completed == JOBS {
                keepers.push(i);
            }
        }
        assert_eq!(keepers.len(), 1, "{hra}: kept by {keepers:?}");
        owners.push(keepers[0]);
    }
    assert!(
        owners.contains(&0) && owners.contains(&1),
        "both own some: {owners:?}"
    );

    // The owner of h0 stops; the other takes it over.
    let gone = owners[0];
    let mut leaving = both.remove(gone);
    leaving.shutdown().await.unwrap();
    let survivor = &both[0];
    let handover = Utc::now();
    await_members(std::slice::from_ref(survivor), 1).await;
    run_job(survivor, &ns, "h0", 100).await;
    let s = stats(survivor, &ns, "h0", false).await;
    assert_eq!(s.jobs_completed, 1, "the new owner counts only what it saw");
    let since = DateTime::from_timestamp(s.since.unwrap().seconds, 0).unwrap();
    assert!(
        since >= handover - TimeDelta::seconds(1),
        "since {since} claims time before {handover}"
    );
}
