//! Tests of the HRA resource type: parsing, size, the merge patch.
use super::*;
use crate::domain::hra::k8s_time;
use chrono::Utc;
use serde_json::json;

#[test]
fn parses_only_what_it_needs_and_accepts_fractional_seconds() {
    let obj = json!({
        "apiVersion": "actions.summerwind.dev/v1alpha1",
        "kind": "HorizontalRunnerAutoscaler",
        "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "42",
            "annotations": {APPLIED_BATCHES_ANNOTATION: "b1, b2"}},
        "spec": {"maxReplicas": 3, "scaleTargetRef": {"name": "x"},
            "capacityReservations": [{"effectiveTime": "2026-05-29T17:04:57.5Z",
                "expirationTime": "2026-05-29T17:34:57Z", "replicas": 2, "name": "j"}]},
        "status": {"desiredReplicas": 4}
    });
    let hra = parse_hra(&obj).unwrap();
    assert_eq!(hra.key, HraKey::new("ns", "a"));
    assert_eq!(hra.resource_version, "42");
    assert_eq!(hra.max_replicas, Some(3));
    assert_eq!(hra.min_replicas, None);
    assert_eq!(hra.applied_batches.len(), 2);
    assert!(hra.applied_batches.contains("b1") && hra.applied_batches.contains("b2"));
    assert_eq!(hra.object_bytes, serde_json::to_vec(&obj).unwrap().len());
    assert!(hra.finished_jobs.is_empty());
    let r = &hra.capacity_reservations[0];
    assert_eq!(r.name, "j");
    assert_eq!(r.life(), TimeDelta::milliseconds(29 * 60 * 1000 + 59_500));
}

#[test]
fn the_single_positive_trigger_duration_is_read() {
    let with = |triggers: Value| {
        parse_hra(&json!({"metadata": {"name": "a"}, "spec": {"scaleUpTriggers": triggers}}))
            .unwrap()
            .trigger_duration
    };
    let trigger = |d: &str| json!({"githubEvent": {"workflowJob": {}}, "duration": d});
    assert_eq!(with(json!([trigger("30m")])), Some(TimeDelta::minutes(30)));
    assert_eq!(
        with(json!([trigger("1h30m")])),
        Some(TimeDelta::minutes(90))
    );
    assert_eq!(with(json!([trigger("0s")])), None, "not positive");
    assert_eq!(with(json!([trigger("soon")])), None, "not a duration");
    assert_eq!(with(json!([{"githubEvent": {}}])), None, "no duration");
    assert_eq!(
        with(json!([trigger("5m"), trigger("7m")])),
        None,
        "two triggers"
    );
    assert_eq!(with(json!([])), None);
}

#[test]
fn null_times_read_as_go_zero_time() {
    let obj = json!({"metadata": {"name": "a"}, "spec": {"capacityReservations": [
        {"effectiveTime": null, "replicas": 1}]}});
    let hra = parse_hra(&obj).unwrap();
    assert_eq!(
        hra.capacity_reservations[0].expiration_time,
        k8s_time::zero()
    );
    assert_eq!(hra.reserved_replicas(Utc::now()), 0);
}

#[test]
fn finished_jobs_are_read_and_an_unreadable_annotation_is_ignored() {
    let at = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
    let with = |annotations: Value| {
        parse_hra(&json!({"metadata": {"name": "a", "namespace": "finished", "annotations": annotations}}))
            .unwrap()
            .finished_jobs
    };
    // The older single annotation.
    let jobs = with(json!({FINISHED_JOBS_ANNOTATION: r#"[["9",1800000009],["7",1800000007]]"#}));
    assert_eq!(jobs.until("7", at(1_800_000_000)), Some(at(1_800_000_007)));
    assert!(jobs.contains("9", at(1_800_000_008)) && !jobs.contains("7", at(1_800_000_008)));
    assert!(with(json!({FINISHED_JOBS_ANNOTATION: "7,9"})).is_empty());
    // Buckets, one of them unreadable.
    let mut set = crate::domain::codec::JobSet::default();
    set.insert("11", 1_800_000_100);
    let jobs = with(json!({
        finished_jobs_annotation(1_800_000_060): set.encode(),
        finished_jobs_annotation(1_800_000_120): "[garbage",
    }));
    assert_eq!(jobs.buckets.len(), 1);
    assert!(jobs.contains("11", at(1_800_000_000)));
}

#[test]
fn bad_time_is_an_error() {
    let obj = json!({"metadata": {"name": "a"}, "spec": {"capacityReservations": [
        {"effectiveTime": "yesterday", "expirationTime": "2026-05-29T17:34:57Z"}]}});
    let err = parse_hra(&obj).unwrap_err().to_string();
    assert!(err.contains("yesterday"), "{err}");
}

#[test]
fn the_patch_carries_only_version_reservations_and_batch_ids() {
    let key = HraKey::new("ns", "a");
    let t = chrono::DateTime::parse_from_rfc3339("2026-05-29T17:04:57.9Z")
        .unwrap()
        .to_utc();
    let list = [CapacityReservation {
        name: "42".into(),
        effective_time: t,
        expiration_time: t + TimeDelta::minutes(30),
        replicas: 1,
    }];
    let w = Write {
        key: &key,
        resource_version: "7",
        reservations: &list,
        applied_batches: "b1,b2",
        finished_jobs: &[],
        job_repositories: Default::default(),
        warm_profile: None,
        dry_run: false,
    };
    assert_eq!(
        merge_patch(&w).to_value(),
        json!({
            "metadata": {"resourceVersion": "7", "annotations": {APPLIED_BATCHES_ANNOTATION: "b1,b2"}},
            "spec": {"capacityReservations": [{"name": "42", "effectiveTime": "2026-05-29T17:04:57Z",
                "expirationTime": "2026-05-29T17:34:57Z", "replicas": 1}]}
        })
    );
    let empty = Write {
        reservations: &[],
        ..w
    };
    assert_eq!(
        merge_patch(&empty).to_value()["spec"]["capacityReservations"],
        Value::Null
    );
    let changes = [
        (finished_jobs_annotation(60), Some("z1:x".to_owned())),
        (FINISHED_JOBS_ANNOTATION.to_owned(), None),
    ];
    let with_jobs = Write {
        finished_jobs: &changes,
        ..w.clone()
    };
    let annotations = merge_patch(&with_jobs).to_value()["metadata"]["annotations"].clone();
    assert_eq!(
        annotations,
        json!({APPLIED_BATCHES_ANNOTATION: "b1,b2", finished_jobs_annotation(60): "z1:x",
            FINISHED_JOBS_ANNOTATION: null}),
        "a bucket set, the older annotation removed"
    );
    let without = merge_patch(&w).to_value();
    assert_eq!(
        without["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .len(),
        1,
        "buckets not named are left as they are"
    );
}
