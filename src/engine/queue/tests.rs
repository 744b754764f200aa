use super::*;
use chrono::TimeDelta;

fn ev(amount: i64) -> PlanEvent {
    PlanEvent {
        amount,
        duration: Some(TimeDelta::minutes(1)),
        job: None,
        started: None,
    }
}

#[tokio::test(start_paused = true)]
async fn restored_events_go_back_before_newer_ones() {
    let key = HraKey::new("ns", "a");
    let mut q = Queues::default();
    let now = Instant::now();
    let window = Duration::from_secs(1);
    assert!(
        q.push(&key, ev(2), None, None, Source::default(), window)
            .unwrap()
    );
    let (batch, _) = q.take_ready(&key, now + window).unwrap();
    assert!(q.take_ready(&key, now + window).is_none(), "running");
    q.push(&key, ev(-1), None, None, Source::default(), window)
        .unwrap();
    let joining = q.take_joining(&key).unwrap();
    tokio::time::advance(window).await;
    q.push(&key, ev(5), None, None, Source::default(), window)
        .unwrap();
    q.restore(&key, joining);
    q.release(&key);
    let (next, _) = q.take_ready(&key, now + window).unwrap();
    let amounts: Vec<i64> = next.events.iter().map(|e| e.amount).collect();
    assert_eq!(amounts, [-1, 5]);
    assert_eq!(next.event_count, 2);
    assert_ne!(next.id, batch.id);
}

#[tokio::test(start_paused = true)]
async fn bounds_count_replicas_queued_running_and_joined_until_released() {
    let (a, b) = (HraKey::new("ns", "a"), HraKey::new("ns", "b"));
    let mut q = Queues::new(Bounds {
        total: 50,
        per_hra: 30,
    });
    let window = Duration::from_secs(1);
    q.push(&a, ev(10), None, None, Source::default(), window)
        .unwrap();
    q.push(&a, ev(-10), None, None, Source::default(), window)
        .unwrap();
    q.push(&a, ev(0), None, None, Source::default(), window)
        .unwrap();
    assert_eq!(q.held(), 21, "10 + 10 + 1: a refresh weighs one");
    let full = q
        .push(&a, ev(10), None, None, Source::default(), window)
        .unwrap_err();
    assert_eq!(
        full,
        Exhausted::Hra {
            key: a.clone(),
            limit: 30
        }
    );
    assert!(full.to_string().contains("ns/a") && full.to_string().contains("30"));
    q.push(&a, ev(9), None, None, Source::default(), window)
        .unwrap();
    // Running (a retrying batch) still counts, and so do callers waiting on repeats.
    let now = Instant::now() + window;
    q.take_ready(&a, now).unwrap();
    assert!(q.check_room(&a, 1).is_err(), "30 held for a");
    q.push(&b, ev(15), None, None, Source::default(), window)
        .unwrap();
    q.hold_joined(&b, 5);
    let total = q
        .push(&b, ev(1), None, None, Source::default(), window)
        .unwrap_err();
    assert_eq!(
        total,
        Exhausted::Total {
            key: b.clone(),
            limit: 50
        }
    );
    q.release_joined(&b, 5);
    assert_eq!(q.held(), 45);
    q.release(&a);
    assert_eq!(q.held(), 15);
    q.push(&a, ev(3), None, None, Source::default(), window)
        .unwrap();
    let joining = q.take_joining(&a).unwrap();
    q.restore(&a, joining);
    assert_eq!(q.held(), 18, "restored events are held once");
}
