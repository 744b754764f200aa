//! Drift repair at its limits, on the memory backend against the fake GitHub: the hourly
//! budget (oldest reservations first), GitHub's rate limits pausing every call, refused
//! credentials and a slow GitHub never touching scaling, the GitHub App's token exchange, and
//! the requests one hook and 100 reservations cost in an hour (time scaled down 600 times).

mod common;

use batch_scaler::{
    config::Settings,
    github::{
        GithubConfig,
        auth::{AppCredentials, Credentials},
    },
    store::{MemoryStore, resource::JOB_REPOSITORIES_ANNOTATION},
};
use batch_scaler_testkit::github::{APP_KEY, FakeGithub, workflow_job_payload};
use chrono::{TimeDelta, Utc};
use common::*;
use serde_json::json;
use std::time::Duration;

const WINDOW: Duration = Duration::from_millis(100);

fn at(offset: TimeDelta) -> String {
    (Utc::now() + offset)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// HRA `ci/app` (runners of `octo/app`) holding reservations for `jobs` of `octo/app`, the
/// first the oldest (each a minute younger than the one before, all over an hour old).
fn store_with_jobs(jobs: &[String]) -> MemoryStore {
    let mut hra = hra_object("ci", "app", None);
    let n = jobs.len() as i64;
    hra["spec"]["capacityReservations"] = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            json!({"name": job, "effectiveTime": at(TimeDelta::minutes(i as i64 - n - 60)),
                "expirationTime": at(TimeDelta::hours(2)), "replicas": 1})
        })
        .collect();
    hra["metadata"]["annotations"] =
        json!({ JOB_REPOSITORIES_ANNOTATION: json!({"octo/app": jobs}).to_string() });
    let rd = json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
        "metadata": {"name": "app", "namespace": "ci"},
        "spec": {"template": {"spec": {"repository": "octo/app"}}}});
    MemoryStore::with_objects([hra, rd]).unwrap()
}

fn settings(github: GithubConfig) -> Settings {
    let mut s = test_settings(WINDOW);
    s.github = Some(github);
    s
}

fn jobs(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{}", 5000 + i)).collect()
}

fn job_requests(gh: &FakeGithub) -> Vec<String> {
    gh.requests()
        .into_iter()
        .filter(|r| r.path.contains("/actions/jobs/"))
        .map(|r| r.path.rsplit('/').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_hourly_budget_holds_and_goes_to_the_oldest_reservations_first() {
    let gh = FakeGithub::start().await;
    let all = jobs(6);
    for job in &all {
        gh.set_job("octo/app", job, "in_progress");
    }
    let mut config = gh.config(&[], Duration::from_millis(500));
    config.requests_per_hour = 3;
    let (server, _store) = TestServer::with_store(store_with_jobs(&all), settings(config)).await;
    eventually(Duration::from_secs(10), "the budget spent", || async {
        job_requests(&gh).len() >= 3
    })
    .await;
    // Ten scan periods and more than one verify-after later, nothing more was sent.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut asked = job_requests(&gh);
    asked.sort();
    assert_eq!(asked, all[..3], "the three oldest, once each");
    // Scaling goes on regardless.
    server.publish(vec![ev("ci", "app", 1)]).await;
}

/// Once the answer `status` (the first at or after request `from`) came, how long until the
/// next request that was not already in flight with it (answered over 100 ms later).
async fn paused_after(gh: &FakeGithub, status: u16, from: usize) -> Duration {
    let find = || {
        let log = gh.requests();
        let i = log.iter().skip(from).position(|r| r.status == status)? + from;
        let limited = log[i].at;
        let next = log[i + 1..]
            .iter()
            .find(|r| r.at > limited + Duration::from_millis(100))?;
        Some(next.at - limited)
    };
    eventually(
        Duration::from_secs(15),
        "calls resumed after the limit",
        || async { find().is_some() },
    )
    .await;
    find().unwrap()
}

#[tokio::test]
async fn a_rate_limit_pauses_every_github_call_until_it_resets() {
    let gh = FakeGithub::start().await;
    let all = jobs(1);
    gh.set_job("octo/app", &all[0], "in_progress");
    gh.deliver(
        "/orgs/octo/hooks/1/deliveries",
        "workflow_job",
        json!({"action": "queued"}),
        200,
    );
    let config = gh.config(&["org/octo/1"], Duration::from_millis(500));
    // The primary limit used up, resetting in 2-3 s.
    let reset = (Utc::now().timestamp() + 3).to_string();
    gh.force(
        1,
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
        r#"{"message":"API rate limit exceeded for installation ID 7."}"#,
    );
    let (server, _store) = TestServer::with_store(store_with_jobs(&all), settings(config)).await;
    let first = paused_after(&gh, 403, 0).await;
    assert!(first >= Duration::from_millis(1900), "{first:?}");
    // A secondary limit: retry-after 1 s.
    let seen = gh.requests().len();
    gh.force(
        1,
        429,
        &[("retry-after", "1")],
        r#"{"message":"You have exceeded a secondary rate limit."}"#,
    );
    let second = paused_after(&gh, 429, seen).await;
    assert!(second >= Duration::from_millis(950), "{second:?}");
    println!(
        "rate limit: every call paused {first:?} (x-ratelimit-reset) and {second:?} (retry-after: 1)"
    );
    let text = scrape(server.http_addr).await;
    assert!(sample(&text, "batch_scaler_github_ratelimit_remaining") >= 0.0);
}

#[tokio::test]
async fn refused_credentials_or_a_slow_github_never_touch_scaling() {
    let gh = FakeGithub::start().await;
    let all = jobs(3);
    let config = gh.config(&["org/octo/1"], Duration::from_millis(500));
    // The token is revoked: every call is answered 401.
    let token = std::fs::read_to_string(config.credentials.token_file.as_ref().unwrap()).unwrap();
    gh.revoke_token(token.trim());
    let (server, store) = TestServer::with_store(store_with_jobs(&all), settings(config)).await;
    eventually(Duration::from_secs(10), "401s counted", || async {
        let text = scrape(server.http_addr).await;
        sample(
            &text,
            "batch_scaler_github_requests_total{endpoint=\"deliveries\",code=\"401\"}",
        ) >= 2.0
            && sample(
                &text,
                "batch_scaler_github_requests_total{endpoint=\"job\",code=\"401\"}",
            ) >= 1.0
    })
    .await;
    let mut results = watch_all(&server).await;
    server.publish(vec![ev("ci", "app", 2)]).await;
    let r = recv(&mut results).await;
    assert_eq!((r.added, r.after), (2, 5));
    // GitHub slower than the request timeout: batches go on at their window.
    gh.delay(Some(Duration::from_secs(5)));
    gh.accept_token(token.trim());
    let sent = std::time::Instant::now();
    server.publish(vec![ev("ci", "app", 1)]).await;
    let r = recv(&mut results).await;
    let took = sent.elapsed();
    assert_eq!(r.added, 1);
    assert!(took < Duration::from_secs(1), "{took:?}");
    eventually(Duration::from_secs(10), "timeouts counted", || async {
        sample(
            &scrape(server.http_addr).await,
            "batch_scaler_github_requests_total{endpoint=\"deliveries\",code=\"error\"}",
        ) >= 1.0
    })
    .await;
    use batch_scaler::store::HraStore;
    assert_eq!(
        store
            .get(&key("ci", "app"))
            .await
            .unwrap()
            .capacity_reservations
            .len(),
        6
    );
}

#[tokio::test]
async fn a_github_app_polls_its_own_hook_with_its_jwt_and_checks_jobs_with_installation_tokens() {
    let gh = FakeGithub::start().await;
    // Installation tokens live 5 min 2 s: refreshed when 5 min are left, so every ~2 s here.
    gh.with_app(42, 7, Duration::from_secs(302));
    let all = jobs(1);
    gh.set_job("octo/app", &all[0], "completed");
    gh.deliver(
        "/app/hook/deliveries",
        "workflow_job",
        workflow_job_payload("queued", 77, "octo/app", &["self-hosted"]),
        502,
    );
    let mut config = gh.config(&["app"], Duration::from_millis(300));
    config.credentials = Credentials {
        token_file: None,
        app: Some(AppCredentials {
            app_id: 42,
            private_key_file: APP_KEY.into(),
            installation_id: Some(7),
        }),
    };
    let (_server, store) = TestServer::with_store(store_with_jobs(&all), settings(config)).await;
    use batch_scaler::store::HraStore;
    eventually(
        Duration::from_secs(10),
        "recovered and verified",
        || async {
            let names: Vec<String> = store
                .get(&key("ci", "app"))
                .await
                .unwrap()
                .capacity_reservations
                .into_iter()
                .map(|r| r.name)
                .collect();
            names == ["77"]
        },
    )
    .await;
    // Job 77 is unknown to GitHub: verified as gone once it is old enough; meanwhile the
    // installation token is exchanged again before it expires, and nothing is refused.
    gh.set_job("octo/app", "77", "queued");
    eventually(
        Duration::from_secs(10),
        "a second token exchange",
        || async { gh.token_exchanges() >= 2 },
    )
    .await;
    let refused: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.status == 401)
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test]
async fn requests_in_an_hour_for_one_hook_and_100_reservations_time_scaled() {
    // One hour of the defaults (poll every 1m, verify after 15m) scaled down 600 times.
    const SCALE: u32 = 600;
    let gh = FakeGithub::start().await;
    let all = jobs(100);
    for job in &all {
        gh.set_job("octo/app", job, "in_progress");
    }
    let mut config = gh.config(&["org/octo/1"], Duration::from_secs(15 * 60) / SCALE);
    config.poll_interval = Duration::from_secs(60) / SCALE;
    let hour = Duration::from_secs(3600) / SCALE;
    let (_server, _store) = TestServer::with_store(store_with_jobs(&all), settings(config)).await;
    // Every reservation was checked once: from then on, one scaled hour is counted.
    eventually(
        Duration::from_secs(10),
        "every reservation checked",
        || async { job_requests(&gh).len() >= 100 },
    )
    .await;
    let start = (gh.requests().len(), job_requests(&gh).len());
    tokio::time::sleep(hour).await;
    let polls = gh.requests().len() - start.0 - (job_requests(&gh).len() - start.1);
    let checks = job_requests(&gh).len() - start.1;
    println!(
        "budget: one hook and 100 reservations cost {} requests an hour ({polls} polls + {checks} job checks; expected about 60 + 4 x 100 = 460; time scaled {SCALE}x)",
        polls + checks
    );
    assert!((40..=75).contains(&polls), "{polls}");
    assert!((300..=520).contains(&checks), "{checks}");
}
