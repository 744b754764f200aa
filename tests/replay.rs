//! `batch-scaler replay` on the checked-in synthetic two-week trace.

use batch_scaler::replay::{self, Report, World, trace};
use batch_scaler_testkit::trace::{
    generate, replay_settings, run_replay, trace_path, two_weeks_jobs, world_path,
};
use std::{collections::HashMap, io::Read};

const SECOND_WEEK: &str = "2026-11-09T00:00:00Z";

fn replay_with(flags: &[&str]) -> Report {
    let world = World::read(&world_path()).unwrap();
    let deliveries = trace::read(&trace_path(), |_| {}).unwrap();
    replay::run(&world, &deliveries, &replay_settings(flags), &mut |_| {})
}

#[test]
fn the_checked_in_trace_is_what_the_generator_makes() {
    let made = generate(&two_weeks_jobs());
    if std::env::var_os("REGENERATE_TRACE").is_some() {
        let file = std::fs::File::create(trace_path()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
        std::io::Write::write_all(&mut gz, made.as_bytes()).unwrap();
        gz.finish().unwrap();
    }
    let mut stored = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(trace_path()).unwrap())
        .read_to_string(&mut stored)
        .unwrap();
    assert!(
        stored == made,
        "the generator changed: REGENERATE_TRACE=1 cargo test --test replay"
    );
}

#[test]
fn a_replay_of_a_trace_made_by_the_model_finds_its_recorded_waits() {
    let deliveries = trace::read(&trace_path(), |_| {}).unwrap();
    let recorded: HashMap<String, i64> = deliveries
        .iter()
        .filter(|d| d.job.action == "in_progress")
        .map(|d| {
            (
                d.job.job_id.clone(),
                d.job.started_at.unwrap().timestamp_millis(),
            )
        })
        .collect();
    let report = replay_with(&[]);
    assert!(report.starts.len() > 13_000, "{}", report.starts.len());
    let mut compared = 0;
    for (id, start) in &report.starts {
        if let Some(r) = recorded.get(&**id) {
            assert_eq!(r, start, "job {id}");
            compared += 1;
        }
    }
    assert_eq!(compared, recorded.len());
    let total = &report.total;
    assert_eq!(
        replay::report::waits(&total.waits),
        replay::report::waits(&total.recorded_waits)
    );
    assert_eq!(report.unrouted, 0);
}

fn cli(args: &[&str]) -> Vec<u8> {
    let bin = env!("CARGO_BIN_EXE_batch-scaler");
    run_replay(bin, &trace_path(), &world_path(), args)
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let flags = [
        "--json",
        "--warm-runners",
        "forecast",
        "--measure-from",
        SECOND_WEEK,
    ];
    let (a, b) = (cli(&flags), cli(&flags));
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v["hras"][0]["namespace"], "ci");
    assert_eq!(v["hras"][0]["name"], "arm");
    assert!(v["total"]["wait"]["p90"].is_number());
    assert!(v["total"]["runner_seconds"].as_f64().unwrap() > 0.0);
    let table = String::from_utf8(cli(&[])).unwrap();
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );
}

fn p90(r: &Report) -> i64 {
    r.total.wait().p90
}

fn runner_seconds(r: &Report) -> f64 {
    r.total.runner_ms as f64 / 1000.0
}

#[test]
fn forecast_beats_off_and_every_static_minimum_of_no_greater_cost() {
    let off = replay_with(&["--measure-from", SECOND_WEEK]);
    let forecast = replay_with(&["--measure-from", SECOND_WEEK, "--warm-runners", "forecast"]);
    println!("off\n{}forecast\n{}", off.table(), forecast.table());
    assert_eq!(off.total.jobs(), forecast.total.jobs());
    assert!(
        (p90(&forecast) as f64) <= 0.3 * p90(&off) as f64,
        "p90 {} ms vs {} ms",
        p90(&forecast),
        p90(&off)
    );
    assert!(
        runner_seconds(&forecast) <= 1.3 * runner_seconds(&off),
        "{} vs {} runner-seconds",
        runner_seconds(&forecast),
        runner_seconds(&off)
    );
    // Every static minimum that spends no more than the forecast waits longer.
    for n in 1.. {
        let fixed = replay_with(&[
            "--measure-from",
            SECOND_WEEK,
            "--min-replicas",
            &n.to_string(),
        ]);
        println!(
            "--min-replicas {n}: p90 {} ms, {} runner-seconds",
            p90(&fixed),
            runner_seconds(&fixed)
        );
        if runner_seconds(&fixed) > runner_seconds(&forecast) {
            break;
        }
        assert!(p90(&forecast) < p90(&fixed), "--min-replicas {n}");
    }
    // Warm reservations were claimed, never more than were added.
    let warm = forecast.total.warm;
    assert!(warm.claimed > 0 && warm.claimed <= warm.added, "{warm:?}");
    assert_eq!(off.total.warm.added, 0);
}

#[test]
fn a_bad_line_is_named_by_line_and_field() {
    let dir = std::env::temp_dir().join(format!("replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.jsonl");
    let good = r#"{"delivered_at":"2026-11-02T00:00:01Z","guid":"g1","payload":{"action":"queued","repository":{"full_name":"acme/api","owner":{"type":"Organization"}},"workflow_job":{"id":1,"labels":["self-hosted","linux"]}}}"#;
    let bad = good.replace(r#""id":1,"#, r#""id":2,"created_at":"yesterday","#);
    std::fs::write(&path, format!("{good}\n\n{bad}\n")).unwrap();
    let e = trace::read(&path, |_| {}).unwrap_err().to_string();
    assert!(e.contains("bad.jsonl:3") && e.contains("created_at"), "{e}");
    let no_job = good.replace(r#""id":1,"#, "");
    std::fs::write(&path, format!("{no_job}\n")).unwrap();
    let e = trace::read(&path, |_| {}).unwrap_err().to_string();
    assert!(e.contains(":1: payload.job_id"), "{e}");
}
