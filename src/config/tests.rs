//! The flags as a user types them.

use super::*;

#[test]
fn defaults_match_the_contract() {
    let args = Args::try_parse_from(["batch-scaler"]).unwrap();
    assert_eq!(args.listen, "127.0.0.1:50051".parse().unwrap());
    assert_eq!(args.backend, Backend::Memory);
    assert_eq!(*args.window, Duration::from_secs(3));
    assert_eq!(*args.default_duration, Duration::from_secs(600));
    assert_eq!(*args.retry_deadline, Duration::from_secs(600));
    assert!(!args.dry_run);
    assert_eq!(args.log_format, LogFormat::Text);
}

#[test]
fn settings_without_flags_are_the_defaults() {
    let from_flags = Args::try_parse_from(["batch-scaler"])
        .unwrap()
        .settings()
        .unwrap();
    let defaults = Settings::default();
    let (a, b) = (&from_flags.engine, &defaults.engine);
    assert_eq!(
        (a.window, a.retry, a.dry_run, a.max_concurrent_writes),
        (b.window, b.retry, b.dry_run, b.max_concurrent_writes)
    );
    assert_eq!(a.idempotency, b.idempotency);
    assert_eq!(
        (a.default_duration, from_flags.shutdown_grace),
        (b.default_duration, defaults.shutdown_grace)
    );
    assert_eq!(
        (
            from_flags.grpc.max_message_bytes,
            from_flags.grpc.max_concurrent_streams
        ),
        (
            defaults.grpc.max_message_bytes,
            defaults.grpc.max_concurrent_streams
        )
    );
}

#[test]
fn flags_parse_humantime_and_reject_nonsense() {
    let args = Args::try_parse_from([
        "batch-scaler",
        "--listen",
        "0.0.0.0:0",
        "--backend",
        "kubernetes",
        "--window",
        "250ms",
        "--default-duration",
        "30m",
        "--dry-run",
        "--log-format",
        "json",
    ])
    .unwrap();
    assert_eq!(*args.window, Duration::from_millis(250));
    assert_eq!(
        args.settings().unwrap().engine.default_duration,
        Duration::from_secs(1800)
    );
    assert!(args.settings().unwrap().engine.dry_run);
    assert!(Args::try_parse_from(["batch-scaler", "--window", "0s"]).is_err());
    assert!(Args::try_parse_from(["batch-scaler", "--window", "soon"]).is_err());
    assert!(Args::try_parse_from(["batch-scaler", "--backend", "etcd"]).is_err());
    for (flag, absurd) in [
        ("--window", "1000y"),
        ("--default-duration", "8days"),
        ("--retry-deadline", "1000y"),
        ("--request-timeout", "2h"),
        ("--dedupe-ttl", "100y"),
        ("--tombstone-ttl", "100y"),
        ("--shutdown-grace", "1000y"),
    ] {
        let err = Args::try_parse_from(["batch-scaler", flag, absurd])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(flag) && err.contains("must be at most"),
            "{flag} {absurd}: {err}"
        );
    }
    let bad = Args::try_parse_from(["batch-scaler", "--allowed-namespaces", "Prod"]).unwrap();
    assert!(bad.settings().err().unwrap().to_string().contains("Prod"));
}

#[test]
fn the_reservation_clock_is_arc_s_unless_asked_and_its_queue_time_bounded() {
    use crate::domain::planner::ReservationClock;
    let settings = |args: &[&str]| {
        let mut all = vec!["batch-scaler"];
        all.extend_from_slice(args);
        Args::try_parse_from(all).map(|a| a.settings().unwrap().engine.reservation_clock)
    };
    assert_eq!(settings(&[]).unwrap(), ReservationClock::Queued);
    assert_eq!(
        settings(&["--reservation-clock", "started"]).unwrap(),
        ReservationClock::Started {
            max_queue_time: chrono::TimeDelta::hours(24)
        }
    );
    assert_eq!(
        settings(&["--reservation-clock", "started", "--max-queue-time", "6h"]).unwrap(),
        ReservationClock::Started {
            max_queue_time: chrono::TimeDelta::hours(6)
        }
    );
    for bad in [
        &["--reservation-clock", "wall"][..],
        &["--max-queue-time", "0s"],
        &["--max-queue-time", "8days"],
    ] {
        let err = settings(bad).unwrap_err().to_string();
        assert!(err.contains(bad[0]), "{bad:?}: {err}");
    }
}
