//! `WatchTargets` over gRPC on the memory backend: every HRA once without its reservations,
//! then only the HRAs that changed and those gone, and nothing while nothing changes.

mod common;

use batch_scaler::{api::pb, store::MemoryStore};
use common::*;
use std::time::Duration;
use tokio_stream::StreamExt as _;

async fn next(stream: &mut tonic::Streaming<pb::TargetsUpdate>) -> pb::TargetsUpdate {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an update in time")
        .expect("the stream goes on")
        .unwrap()
}

fn names(u: &pb::TargetsUpdate) -> Vec<String> {
    u.targets
        .iter()
        .map(|t| format!("{}/{}", t.namespace, t.name))
        .collect()
}

#[tokio::test]
async fn a_snapshot_then_only_what_changed() {
    let store = MemoryStore::with_objects([
        hra_object("ci", "a", None),
        hra_object("ci", "b", Some(2)),
        hra_object("ml", "c", None),
    ])
    .unwrap();
    let (server, store) =
        TestServer::with_store(store, test_settings(Duration::from_millis(100))).await;
    let mut client = server.client().await;
    let mut all = client
        .watch_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut all).await;
    assert!(first.snapshot);
    assert_eq!(names(&first), ["ci/a", "ci/b", "ml/c"]);
    let mut ci = client
        .watch_targets(pb::ListTargetsRequest {
            namespace: "ci".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&next(&mut ci).await), ["ci/a", "ci/b"]);

    // Two jobs for ci/b: only ci/b comes, with its counts and last batch, no reservations.
    for job in ["1", "2"] {
        server
            .scale_and_wait(job_ev("ci", "b", 1, job, &format!("d-{job}")))
            .await;
    }
    let mut update = next(&mut all).await;
    while update.targets.iter().any(|t| t.reservation_units < 2) {
        update = next(&mut all).await;
    }
    assert!(!update.snapshot);
    assert_eq!(names(&update), ["ci/b"]);
    let b = &update.targets[0];
    assert_eq!((b.reservation_units, b.reserved_replicas), (2, 2));
    assert!(
        b.capacity_reservations.is_empty(),
        "reservations stay in GetTarget"
    );
    assert!(b.last_batch.is_some());

    // Nothing changes: nothing is sent.
    let idle = tokio::time::timeout(Duration::from_millis(2500), all.next()).await;
    assert!(idle.is_err(), "an update while nothing changed: {idle:?}");

    // An HRA removed: named as gone.
    assert!(store.remove(&key("ml", "c")));
    let gone = next(&mut all).await;
    assert_eq!(gone.removed.len(), 1);
    assert_eq!(gone.removed[0].name, "c");
    assert!(gone.targets.is_empty());
}
