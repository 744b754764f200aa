//! How long `batch-scaler replay` takes on 1,000,000 deliveries. `cargo bench --bench replay`
//! writes 24 copies of the synthetic two-week trace (each for its own organization and pair
//! of HRAs: 48 HRAs, about 334,000 jobs, each queued, in progress and completed), then runs
//! the real command on it twice (`off`, then `--warm-runners forecast`) and prints
//! `replay_deliveries`, `replay_seconds_off` and `replay_seconds_forecast` (reading included).

use batch_scaler_testkit::trace::{SynthJob, lines, run_replay, two_weeks_jobs};
use std::{collections::HashMap, fmt::Write as _, io::Write, time::Instant};

const COPIES: usize = 24;

fn world() -> String {
    let mut yaml = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for k in 0..COPIES {
        for (name, label, max) in [("linux", "linux", 100), ("arm", "arm64", 20)] {
            let _ = write!(
                yaml,
                "- kind: HorizontalRunnerAutoscaler\n  metadata: {{name: {name}, namespace: org{k}}}\n  spec:\n    scaleTargetRef: {{kind: RunnerDeployment, name: {name}}}\n    maxReplicas: {max}\n    scaleUpTriggers:\n    - githubEvent: {{workflowJob: {{}}}}\n      duration: 30m\n- kind: RunnerDeployment\n  metadata: {{name: {name}, namespace: org{k}}}\n  spec:\n    template:\n      spec: {{organization: org{k}, labels: [{label}]}}\n"
            );
        }
    }
    yaml
}

fn main() {
    let dir = std::env::temp_dir().join(format!("replay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (world_path, trace_path) = (dir.join("world.yaml"), dir.join("trace.jsonl"));
    std::fs::write(&world_path, world()).unwrap();
    let base = two_weeks_jobs();
    let mut all: Vec<SynthJob> = Vec::with_capacity(base.len() * COPIES);
    for k in 0..COPIES {
        all.extend(base.iter().map(|j| SynthJob {
            id: j.id + (k as u64) * 1_000_000,
            repository: j.repository.replacen("acme", &format!("org{k}"), 1),
            ..j.clone()
        }));
    }
    // Each job starts 30 s after it is created, so every job has its three deliveries.
    let starts: HashMap<String, i64> = all
        .iter()
        .map(|j| (j.id.to_string(), j.created * 1000 + 30_000))
        .collect();
    let text = lines(&all, Some(&starts));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&trace_path).unwrap());
    for line in &text {
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    println!("replay_deliveries {}", text.len());
    let bin = env!("CARGO_BIN_EXE_batch-scaler");
    for (label, extra) in [
        ("off", &[][..]),
        ("forecast", &["--warm-runners", "forecast"][..]),
    ] {
        let started = Instant::now();
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let out = run_replay(bin, &trace_path, &world_path, &args);
        let secs = started.elapsed().as_secs_f64();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        println!(
            "replay_seconds_{label} {secs:.2} (jobs {}, {:.0} deliveries/s)",
            v["total"]["jobs"],
            text.len() as f64 / secs
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
