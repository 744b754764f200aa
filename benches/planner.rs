//! The planner on a long list: 1,000 reservations (half in the backlog beyond maxReplicas, a
//! quarter expired) and 1,000 events of mixed sign, some with job ids.
//! Run: `cargo bench --bench planner`.

use batch_scaler::{
    domain::hra::{CapacityReservation, Hra, HraKey},
    domain::planner::{PlanEvent, plan},
};
use chrono::{TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use std::{hint::black_box, sync::Arc};

fn inputs() -> (Hra, Vec<PlanEvent>) {
    let now = Utc::now();
    let list = (0..1000)
        .map(|i| CapacityReservation {
            name: if i % 3 == 0 {
                format!("job-{i}")
            } else {
                String::new()
            },
            effective_time: now - TimeDelta::seconds(600),
            expiration_time: now + TimeDelta::seconds(if i % 4 == 0 { -1 } else { 600 }),
            replicas: 1,
        })
        .collect();
    let hra = Hra {
        key: HraKey::new("ci", "runners"),
        resource_version: "1".into(),
        min_replicas: Some(1),
        max_replicas: Some(500),
        capacity_reservations: list,
        applied_batches: Default::default(),
        trigger_duration: None,
        finished_jobs: Default::default(),
        job_repositories: Default::default(),
        groups: Default::default(),
        object_bytes: 0,
        warm_profile: None,
    };
    let events = (0..1000)
        .map(|i| PlanEvent {
            amount: if i % 2 == 0 { 1 } else { -1 },
            duration: Some(TimeDelta::minutes(30)),
            job: (i % 5 == 0).then(|| Arc::from(format!("job-{}", i * 3))),
            started: None,
        })
        .collect();
    (hra, events)
}

fn planner(c: &mut Criterion) {
    let (hra, events) = inputs();
    let now = Utc::now();
    c.bench_function("plan 1000 reservations x 1000 events", |b| {
        b.iter(|| {
            plan(
                black_box(&hra),
                black_box(&events),
                now,
                TimeDelta::minutes(10),
            )
        })
    });
}

criterion_group!(benches, planner);
criterion_main!(benches);
