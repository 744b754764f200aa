//! Serves the fake GitHub REST API on its own, for checking the release binary's drift repair
//! from the command line: writes a token it accepts, seeds one failed `queued` delivery, sets
//! the job's status on GitHub, writes its URL once serving, serves until killed.
//!
//! ```text
//! fake-github URL_FILE TOKEN_FILE HOOK_PATH REPOSITORY LABEL JOB_ID JOB_STATUS &
//! batch-scaler --github-api-url "$(cat URL_FILE)" --github-token-file TOKEN_FILE \
//!   --github-hook org/ORG/HOOK_ID
//! ```

use batch_scaler_testkit::github::{FakeGithub, workflow_job_payload};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        url_file,
        token_file,
        hook_path,
        repository,
        label,
        job,
        status,
    ] = &args[..]
    else {
        eprintln!(
            "usage: fake-github URL_FILE TOKEN_FILE HOOK_PATH REPOSITORY LABEL JOB_ID JOB_STATUS"
        );
        std::process::exit(2);
    };
    let Ok(job_id) = job.parse::<u64>() else {
        eprintln!("JOB_ID: a number");
        std::process::exit(2);
    };
    let gh = FakeGithub::start().await;
    gh.accept_token("ghp_interop");
    let payload = workflow_job_payload("queued", job_id, repository, &[label]);
    let (id, guid) = gh.deliver(hook_path, "workflow_job", payload, 502);
    gh.set_job(repository, job, status);
    let write = |path: &String, text: String| {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("writing {path}: {e}");
            std::process::exit(1);
        }
    };
    write(token_file, "ghp_interop\n".into());
    write(url_file, gh.url());
    println!(
        "serving on {} (failed delivery {id}, guid {guid}; job {job} is {status})",
        gh.url()
    );
    std::future::pending::<()>().await;
}
