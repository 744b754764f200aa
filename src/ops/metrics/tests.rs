use super::*;

#[test]
fn a_snapshot_reads_the_counters_and_recent_latency() {
    let m = Metrics::new();
    m.event("accepted", 5);
    m.event("invalid", 1);
    m.event("exhausted", 2);
    m.batch("applied");
    m.batch("failed");
    for ms in 1..=100 {
        m.event_age(Duration::from_millis(ms));
    }
    let s = m.snapshot();
    assert_eq!((s.events_accepted, s.events_rejected), (5, 3));
    assert_eq!(s.batches, [1, 0, 1, 0]);
    assert_eq!(
        s.apply_latency,
        (Duration::from_millis(51), Duration::from_millis(99))
    );
}

#[test]
fn encodes_every_metric_with_its_labels() {
    let m = Metrics::new();
    m.event("accepted", 3);
    m.batch("applied");
    m.batch("retrying");
    m.write(Duration::from_millis(3), true);
    m.pending_hras.set(2);
    let text = m.encode();
    for line in [
        "batch_scaler_events_received_total{result=\"accepted\"} 3",
        "batch_scaler_batches_total{outcome=\"applied\"} 1",
        "batch_scaler_retries_total 1",
        "batch_scaler_write_conflicts_total 1",
        "batch_scaler_write_duration_seconds_count 1",
        "batch_scaler_pending_hras 2",
        "batch_scaler_applies_in_flight 0",
        "batch_scaler_watchers 0",
        "batch_scaler_watch_results_dropped_total 0",
        "batch_scaler_event_age_at_apply_seconds_count 0",
        "batch_scaler_dedupe_hits_total 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
