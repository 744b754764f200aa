//! `batch-scaler record-deliveries` against the fake GitHub: three days of a hook's
//! `workflow_job` deliveries, paged, through a rate-limit pause, oldest first, one line per
//! guid, in the format `replay` reads.

use batch_scaler::replay::trace;
use batch_scaler_testkit::{
    github::{FakeGithub, workflow_job_payload},
    trace::run_replay,
};
use chrono::{TimeDelta, Utc};
use serde_json::json;
use std::process::Command;

const HOOK: &str = "org/octo/1";
const HOOK_PATH: &str = "/orgs/octo/hooks/1/deliveries";

const WORLD: &str = "
kind: List
items:
- kind: HorizontalRunnerAutoscaler
  metadata: {name: app, namespace: ci}
  spec:
    scaleTargetRef: {kind: RunnerDeployment, name: app}
    maxReplicas: 10
    scaleUpTriggers:
    - githubEvent: {workflowJob: {}}
      duration: 30m
- kind: RunnerDeployment
  metadata: {name: app, namespace: ci}
  spec: {template: {spec: {organization: octo}}}
";

#[tokio::test(flavor = "multi_thread")]
async fn three_days_of_deliveries_become_a_trace_replay_reads() {
    let gh = FakeGithub::start().await;
    let now = Utc::now();
    // Older than three days: left out.
    for job in 0..10 {
        let payload = workflow_job_payload("queued", 100 + job, "octo/app", &["self-hosted"]);
        gh.deliver_at(
            HOOK_PATH,
            "workflow_job",
            payload,
            200,
            now - TimeDelta::hours(80),
        );
    }
    let mut first_guid = String::new();
    for job in 0..120u64 {
        let at = now - TimeDelta::hours(70) + TimeDelta::minutes(30 * job as i64);
        let queued = workflow_job_payload("queued", 1000 + job, "octo/app", &["self-hosted"]);
        let (_, guid) = gh.deliver_at(HOOK_PATH, "workflow_job", queued, 200, at);
        if job == 0 {
            first_guid = guid;
        }
        let done = workflow_job_payload("completed", 1000 + job, "octo/app", &["self-hosted"]);
        gh.deliver_at(
            HOOK_PATH,
            "workflow_job",
            done,
            502,
            at + TimeDelta::minutes(10),
        );
    }
    gh.deliver(
        HOOK_PATH,
        "ping",
        json!({"zen": "Design for failure."}),
        200,
    );
    gh.redeliver(HOOK_PATH, &first_guid, 200);
    // GitHub's secondary rate limit on the first request: the tool waits and goes on.
    gh.force(
        1,
        403,
        &[("retry-after", "1")],
        "You have exceeded a secondary rate limit",
    );

    let token = gh.config(&[HOOK], std::time::Duration::from_secs(60));
    let token_file = token.credentials.token_file.unwrap();
    let dir = std::env::temp_dir().join(format!("record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("trace.jsonl");
    let bin = env!("CARGO_BIN_EXE_batch-scaler");
    let run = tokio::process::Command::new(bin)
        .args(["record-deliveries", "--since", "72h", "--github-hook", HOOK])
        .arg("--github-api-url")
        .arg(gh.url())
        .arg("--github-token-file")
        .arg(&token_file)
        .arg("--out")
        .arg(&out)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("240 deliveries written, 2 skipped"),
        "{stderr}"
    );
    // Three pages of 100 were listed.
    assert!(gh.count(HOOK_PATH) >= 3 + 240, "{}", gh.count(HOOK_PATH));

    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 240);
    assert_eq!(lines[0]["guid"], first_guid.as_str());
    assert_eq!(lines[0]["payload"]["workflow_job"]["id"], 1000);
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l["delivered_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    let deliveries = trace::read(&out, |_| {}).unwrap();
    assert_eq!(deliveries.len(), 240);
    std::fs::write(dir.join("world.yaml"), WORLD).unwrap();
    let replayed = run_replay(bin, &out, &dir.join("world.yaml"), &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&replayed).unwrap();
    assert_eq!(report["total"]["jobs"], 120, "{report}");
    assert_eq!(report["unrouted_deliveries"], 0);
}

#[test]
fn without_credentials_or_hooks_it_says_what_is_missing() {
    let bin = env!("CARGO_BIN_EXE_batch-scaler");
    let out = Command::new(bin)
        .args(["record-deliveries", "--out", "-"])
        .env_remove("BATCH_SCALER_GITHUB_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--github-token-file"));
}
