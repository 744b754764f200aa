//! Finished jobs are remembered in the HRA, so they hold across replicas and restarts; and
//! the HRA object's size is bounded. Over real HTTP against the test API server, or an
//! existing cluster with `USE_EXISTING_CLUSTER=true` (size limits need the fake).

mod common;

use batch_scaler::{api::pb, domain::codec::JobSet, store::resource::FINISHED_JOBS_ANNOTATION};
use batch_scaler_testkit::{cluster::TestCluster, fake_or_skip};
use common::*;
use std::time::Duration;

const WINDOW: Duration = Duration::from_millis(100);
const APPLIED: i32 = pb::Outcome::Applied as i32;
const FAILED: i32 = pb::Outcome::Failed as i32;

#[tokio::test]
async fn kube_a_completion_on_one_replica_stops_a_late_queued_on_another_and_after_restart() {
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    c.create(hra_object(&ns, "a", None)).await;
    let one = TestServer::on_cluster(&c, test_settings(WINDOW)).await;
    let mut two = TestServer::on_cluster(&c, test_settings(WINDOW)).await;

    // `completed` reaches replica one before its `queued`: it removes nothing…
    let done = one
        .scale_and_wait(job_ev(&ns, "a", -1, "7", "d-completed"))
        .await;
    assert_eq!((done.outcome, done.completed, done.after), (APPLIED, 0, 0));
    let object = c.object("a").await.unwrap();
    let buckets: Vec<JobSet> = object["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with(&format!("{FINISHED_JOBS_ANNOTATION}.")))
        .map(|(_, value)| JobSet::decode(value.as_str().unwrap()).unwrap())
        .collect();
    assert!(buckets.iter().any(|b| b.get("7").is_some()), "{object}");

    // …and the late `queued` at replica two adds nothing, while another job still does.
    let late = two
        .scale_and_wait(job_ev(&ns, "a", 1, "7", "d-queued"))
        .await;
    assert_eq!((late.outcome, late.added, late.after), (APPLIED, 0, 0));
    let other = two
        .scale_and_wait(job_ev(&ns, "a", 1, "8", "d-queued-8"))
        .await;
    assert_eq!((other.added, other.after), (1, 1));

    // A restarted replica (no memory of its own) reads the same: a redelivery adds nothing.
    two.shutdown().await.unwrap();
    let three = TestServer::on_cluster(&c, test_settings(WINDOW)).await;
    let again = three
        .scale_and_wait(job_ev(&ns, "a", 1, "7", "d-queued-again"))
        .await;
    assert_eq!((again.outcome, again.added, again.after), (APPLIED, 0, 1));
    assert_eq!(c.reservations("a").await, 1);
    drop(one);
}

#[tokio::test]
async fn kube_a_batch_over_max_hra_bytes_applies_the_earliest_that_fit_and_fails_the_rest_once() {
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    c.create(hra_object(&ns, "big", None)).await;
    c.create(hra_object(&ns, "small", None)).await;
    let size = serde_json::to_vec(&c.object("big").await.unwrap())
        .unwrap()
        .len();
    let mut settings = test_settings(WINDOW);
    // Room for a few reservations of about 110 bytes each, not for 40.
    settings.engine.max_hra_bytes = size + 1500;
    let server = TestServer::on_cluster(&c, settings).await;
    let mut watch = watch_all(&server).await;

    let flood: Vec<pb::ScaleEvent> = (0..40)
        .map(|i| job_ev(&ns, "big", 1, &format!("j{i}"), &format!("d{i}")))
        .collect();
    server.publish(flood).await;
    // The events that do not fit fail at once, as a batch of their own…
    let failed = recv(&mut watch).await;
    assert_eq!(
        (failed.name.as_str(), failed.outcome, failed.attempt),
        ("big", FAILED, 1)
    );
    assert!(
        failed.batch_id.ends_with("-overflow"),
        "{}",
        failed.batch_id
    );
    assert!(failed.error.contains("--max-hra-bytes"), "{}", failed.error);
    // …and the earliest ones, which fit, are written.
    let applied = recv(&mut watch).await;
    assert_eq!((applied.outcome, applied.attempt), (APPLIED, 1));
    assert_eq!(applied.events + failed.events, 40);
    let kept = c.reservations("big").await;
    assert!(kept > 0 && kept < 40, "{kept}");
    assert_eq!(kept, applied.events as usize);
    assert_eq!(failed.failed_job_ids[0], format!("j{kept}"));

    // The HRA and another one go on (a job-less completion: it adds no finished job, which
    // would grow this HRA's annotations past its tight limit).
    let done = server.scale_and_wait(ev(&ns, "big", -1)).await;
    assert_eq!((done.outcome, done.completed), (APPLIED, 1), "{done:?}");
    let other = server.scale_and_wait(ev(&ns, "small", 3)).await;
    assert_eq!(other.outcome, APPLIED);
    let metrics = scrape(server.http_addr).await;
    assert_eq!(
        sample(&metrics, "batch_scaler_hra_too_large_events_total"),
        f64::from(failed.events),
        "{metrics}"
    );
}

#[tokio::test]
async fn kube_the_api_servers_own_size_limit_is_terminal_not_a_retry_storm() {
    let c = TestCluster::start().await;
    let fake = fake_or_skip!(c, "emulates etcd's request size limit");
    let ns = c.namespace.clone();
    c.create(hra_object(&ns, "a", None)).await;
    let size = fake
        .object(&ns, "a")
        .map(|o| serde_json::to_vec(&o).unwrap().len());
    fake.limit_object_bytes(size.unwrap() + 1000);
    // Our own limit is above the server's: the server refuses the write.
    let server = TestServer::on_cluster(&c, test_settings(WINDOW)).await;
    let mut watch = watch_all(&server).await;
    server
        .publish((0..30).map(|_| ev(&ns, "a", 1)).collect())
        .await;
    let r = recv(&mut watch).await;
    assert_eq!((r.outcome, r.attempt), (FAILED, 1), "{}", r.error);
    assert!(r.error.contains("request is too large"), "{}", r.error);
    assert_eq!(fake.count("patch"), 1, "one write, no retries");
}
