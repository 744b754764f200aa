//! What an HRA remembers (finished jobs, applied batch ids), in its compact form: an HRA
//! written by an older version is read and rewritten with nothing lost, and the bytes a write
//! sends stay flat in the number of remembered jobs. Over real HTTP against the test API
//! server, or an existing cluster with `USE_EXISTING_CLUSTER=true` (byte counts need the fake).

mod common;

use batch_scaler::{
    api::pb,
    domain::{codec::JobSet, hra::AppliedBatches, tombstones::TombstoneLimits},
    store::resource::{APPLIED_BATCHES_ANNOTATION, FINISHED_JOBS_ANNOTATION},
};
use batch_scaler_testkit::{
    cluster::TestCluster, fake_or_skip, remembered::finished_over_the_last_hour,
};
use chrono::{TimeDelta, Utc};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const WINDOW: Duration = Duration::from_millis(100);
const APPLIED: i32 = pb::Outcome::Applied as i32;

/// The finished-jobs buckets of an object, decoded, by annotation name.
fn buckets(object: &Value) -> Vec<(String, JobSet)> {
    let prefix = format!("{FINISHED_JOBS_ANNOTATION}.");
    object["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(name, v)| (name.clone(), JobSet::decode(v.as_str().unwrap()).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn expiry_of(object: &Value, job: &str) -> Option<i64> {
    buckets(object).iter().find_map(|(_, set)| set.get(job))
}

#[tokio::test]
async fn kube_an_hra_in_the_older_format_is_rewritten_with_nothing_lost() {
    let c = TestCluster::start().await;
    let ns = c.namespace.clone();
    let now = Utc::now().timestamp();
    let mut object = hra_object(&ns, "old", None);
    object["metadata"]["annotations"] = json!({
        FINISHED_JOBS_ANNOTATION: format!(r#"[["7",{}],["x-9",{}],["gone",{}]]"#, now + 1800, now + 600, now - 5),
        APPLIED_BATCHES_ANNOTATION: format!("earlier-batch@{now},bare"),
        "kept.example.com/other": "untouched",
    });
    c.create(object).await;
    let server = TestServer::on_cluster(&c, test_settings(WINDOW)).await;

    // Read as it is: a late `queued` of a job remembered there adds nothing.
    let late = server
        .scale_and_wait(job_ev(&ns, "old", 1, "7", "d-7"))
        .await;
    assert_eq!((late.outcome, late.added, late.after), (APPLIED, 0, 0));
    assert_eq!(
        late.ignored_finished_jobs, 1,
        "the result says why nothing was added"
    );
    let object = c.object("old").await.unwrap();
    let annotations = &object["metadata"]["annotations"];
    assert!(
        annotations.get(FINISHED_JOBS_ANNOTATION).is_none(),
        "the older annotation is removed: {object}"
    );
    assert_eq!(annotations["kept.example.com/other"], "untouched");
    assert_eq!(expiry_of(&object, "7"), Some(now + 1800), "expiry kept");
    assert_eq!(expiry_of(&object, "x-9"), Some(now + 600));
    assert_eq!(
        expiry_of(&object, "gone"),
        None,
        "expired before the upgrade"
    );
    let applied = annotations[APPLIED_BATCHES_ANNOTATION].as_str().unwrap();
    assert!(applied.starts_with("b1:"), "{applied}");
    let applied = AppliedBatches::parse(applied).unwrap();
    assert!(applied.contains("earlier-batch"), "young ids are kept");
    assert!(!applied.contains("bare"), "ids without a time go first");
    assert_eq!(applied.len(), 2);

    // A completion is remembered beside them; a restarted process reads them all.
    let done = server
        .scale_and_wait(job_ev(&ns, "old", -1, "8", "d-8"))
        .await;
    assert_eq!(done.outcome, APPLIED);
    drop(server);
    let again = TestServer::on_cluster(&c, test_settings(WINDOW)).await;
    for (job, id) in [("x-9", "d-x9"), ("8", "d-8q"), ("7", "d-7b")] {
        let r = again.scale_and_wait(job_ev(&ns, "old", 1, job, id)).await;
        assert_eq!((r.outcome, r.added), (APPLIED, 0), "job {job}");
    }
    let fresh = again
        .scale_and_wait(job_ev(&ns, "old", 1, "10", "d-10"))
        .await;
    assert_eq!((fresh.added, fresh.after), (1, 1));
}

/// Bytes of the values of one patch's finished-jobs annotations, and of the whole patch.
fn patch_bytes(patch: &Value) -> (usize, usize) {
    let finished = patch["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with(FINISHED_JOBS_ANNOTATION))
        .map(|(_, v)| v.as_str().map_or(0, str::len))
        .sum();
    (finished, serde_json::to_vec(patch).unwrap().len())
}

#[tokio::test]
async fn kube_write_bytes_stay_flat_in_the_remembered_jobs() {
    let c = TestCluster::start().await;
    let fake = fake_or_skip!(c, "counts the bytes of each PATCH the fake receives");
    let ns = c.namespace.clone();
    let limits = TombstoneLimits {
        ttl: TimeDelta::hours(1),
        capacity: 40_000,
    };
    let sizes = [("none", 0), ("thousand", 1_000), ("many", 36_000)];
    for (name, n) in sizes {
        let mut object = hra_object(&ns, name, None);
        object["metadata"]["annotations"] =
            Value::Object(finished_over_the_last_hour(n, limits, Utc::now()));
        c.create(object).await;
    }
    let mut settings = test_settings(WINDOW);
    settings.engine.idempotency.tombstone_capacity = limits.capacity;
    let server = TestServer::on_cluster(&c, settings).await;
    let mut written = Vec::new();
    for (name, n) in sizes {
        // Warm: a first write per HRA, then the one measured.
        server
            .scale_and_wait(job_ev(&ns, name, 1, "1", &format!("{name}-w")))
            .await;
        fake.reset_counts();
        let r = server
            .scale_and_wait(job_ev(&ns, name, -1, "1", &format!("{name}-d")))
            .await;
        assert_eq!(
            (r.outcome, r.completed, r.finished_jobs_forgotten),
            (APPLIED, 1, 0)
        );
        let patches = fake.patches();
        assert_eq!(patches.len(), 1, "one write per dirty HRA");
        let (finished, total) = patch_bytes(&patches[0]);
        let object = c.object(name).await.unwrap();
        assert_eq!(
            buckets(&object).iter().map(|(_, s)| s.len()).sum::<usize>(),
            n + 1,
            "{name}: every job still remembered"
        );
        eprintln!("{n} remembered jobs: {total} bytes written, {finished} of them finished jobs");
        written.push((n, finished, total));
    }
    let (_, _, base) = written[0];
    for (n, finished, total) in written {
        // The newest bucket holds up to two minutes of completions (10 a second for
        // 36,000): that, not the hour's 36,000, is what a write sends.
        assert!(finished <= 6_000, "{n}: {finished} bytes of finished jobs");
        assert!(total <= base + 6_000, "{n}: {total} bytes against {base}");
    }
}

/// Past `--tombstone-capacity`, the soonest-expiring finished jobs are forgotten: the batch
/// result and a metric say how many.
#[tokio::test]
async fn forgotten_finished_jobs_are_reported() {
    let store = FaultyStore::with_objects([hra_object("ci", "a", None)]).unwrap();
    let mut settings = test_settings(WINDOW);
    settings.engine.idempotency.tombstone_capacity = 2;
    let (server, _store) = TestServer::with_store(store, settings).await;
    let first = server
        .scale_and_wait(job_ev("ci", "a", -1, "1", "d1"))
        .await;
    assert_eq!(first.finished_jobs_forgotten, 0);
    let events = (2..=4).map(|j| job_ev("ci", "a", -1, &j.to_string(), &format!("d{j}")));
    server.try_publish(events.collect()).await.unwrap();
    let mut forgotten = 0;
    let mut watch = watch_all(&server).await;
    while forgotten < 2 {
        let r = recv(&mut watch).await;
        forgotten += r.finished_jobs_forgotten;
    }
    assert_eq!(forgotten, 2, "four jobs finished, two remembered");
    let text = scrape(server.http_addr).await;
    assert_eq!(sample(&text, "batch_scaler_tombstones_dropped_total"), 2.0);
}
