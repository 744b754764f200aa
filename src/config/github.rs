//! The `--github-*` flags: drift repair (recovering failed webhook deliveries, verifying
//! stale reservations). Off unless credentials are given.

use super::{DAY, HOUR, at_most, defaults, human};
use crate::{
    domain::github::hook::HookSpec,
    github::{
        GithubConfig,
        auth::{self, AppCredentials, Credentials},
    },
};
use std::path::PathBuf;

/// Flags of drift repair.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GithubArgs {
    /// GitHub's REST API (GitHub Enterprise Server: `https://HOST/api/v3`).
    #[arg(long, env = "BATCH_SCALER_GITHUB_API_URL", default_value = defaults::GITHUB_API_URL)]
    pub github_api_url: String,

    /// File holding a GitHub token (sent as `Authorization: Bearer`; read again on every use).
    /// With it or a GitHub App, lost webhook deliveries are recovered and stale reservations
    /// checked against GitHub.
    #[arg(long, env = "BATCH_SCALER_GITHUB_TOKEN_FILE")]
    pub github_token_file: Option<PathBuf>,

    /// GitHub App id (with --github-app-private-key-file).
    #[arg(
        long,
        env = "BATCH_SCALER_GITHUB_APP_ID",
        requires = "github_app_private_key_file"
    )]
    pub github_app_id: Option<u64>,

    /// PEM private key of the GitHub App.
    #[arg(
        long,
        env = "BATCH_SCALER_GITHUB_APP_PRIVATE_KEY_FILE",
        requires = "github_app_id"
    )]
    pub github_app_private_key_file: Option<PathBuf>,

    /// Installation of the GitHub App whose token reads hooks and jobs (without
    /// --github-token-file).
    #[arg(
        long,
        env = "BATCH_SCALER_GITHUB_APP_INSTALLATION_ID",
        requires = "github_app_id"
    )]
    pub github_app_installation_id: Option<u64>,

    /// Webhook whose deliveries are watched for failures (repeatable; env: comma-separated):
    /// `app`, `org/ORG/HOOK_ID` or `repo/OWNER/REPO/HOOK_ID`.
    #[arg(long = "github-hook", env = "BATCH_SCALER_GITHUB_HOOK", value_delimiter = ',', value_parser = parse_hook)]
    pub github_hooks: Vec<HookSpec>,

    /// How often each hook's deliveries are polled.
    #[arg(long, env = "BATCH_SCALER_GITHUB_POLL_INTERVAL", default_value_t = human(defaults::GITHUB_POLL_INTERVAL), value_parser = at_most(HOUR, true))]
    pub github_poll_interval: humantime::Duration,

    /// How far back the first poll of a hook looks.
    #[arg(long, env = "BATCH_SCALER_GITHUB_LOOKBACK", default_value_t = human(defaults::GITHUB_LOOKBACK), value_parser = at_most(3 * DAY, true))]
    pub github_lookback: humantime::Duration,

    /// Age after which a job-named reservation is checked against GitHub (and again each
    /// time this passes while its job waits or runs).
    #[arg(long, env = "BATCH_SCALER_GITHUB_VERIFY_AFTER", default_value_t = human(defaults::GITHUB_VERIFY_AFTER), value_parser = at_most(7 * DAY, true))]
    pub github_verify_after: humantime::Duration,

    /// Most requests to GitHub in any hour (oldest reservations first when short).
    #[arg(long, env = "BATCH_SCALER_GITHUB_REQUESTS_PER_HOUR", default_value_t = defaults::GITHUB_REQUESTS_PER_HOUR,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub github_requests_per_hour: u32,
}

fn parse_hook(s: &str) -> Result<HookSpec, String> {
    s.parse::<HookSpec>().map_err(|e| e.to_string())
}

/// Drift repair's flags that cannot be used together.
#[derive(Debug, thiserror::Error)]
pub enum GithubConfigError {
    /// A credential file is unusable.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A combination of flags that cannot work.
    #[error("{0}")]
    Flags(String),
    /// `--github-api-url` is not an http(s) URL.
    #[error("--github-api-url {0:?}: expected an http(s) URL such as https://api.github.com")]
    Url(String),
}

impl GithubArgs {
    /// Drift repair's configuration, `None` without credentials; checks the credentials can
    /// be read now, so that a typo fails at start, naming its flag.
    pub fn config(&self) -> Result<Option<GithubConfig>, GithubConfigError> {
        let app = match (self.github_app_id, &self.github_app_private_key_file) {
            (Some(app_id), Some(key)) => {
                auth::read_app_key(key)?;
                Some(AppCredentials {
                    app_id,
                    private_key_file: key.clone(),
                    installation_id: self.github_app_installation_id,
                })
            }
            _ => None,
        };
        if let Some(path) = &self.github_token_file {
            auth::read_token(path)?;
        }
        if app.is_none() && self.github_token_file.is_none() {
            if !self.github_hooks.is_empty() {
                return Err(GithubConfigError::Flags(
                    "--github-hook needs credentials: --github-token-file, or --github-app-id and --github-app-private-key-file".into(),
                ));
            }
            return Ok(None);
        }
        if self.github_hooks.iter().any(HookSpec::needs_app_jwt) && app.is_none() {
            return Err(GithubConfigError::Flags(
                "--github-hook app needs the App: --github-app-id and --github-app-private-key-file".into(),
            ));
        }
        let rest = self.github_token_file.is_some()
            || app.as_ref().is_some_and(|a| a.installation_id.is_some());
        if !rest {
            return Err(GithubConfigError::Flags(
                "checking jobs (and organization or repository hooks) needs --github-token-file or --github-app-installation-id".into(),
            ));
        }
        let url = self.github_api_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.parse::<http::Uri>().is_err()
        {
            return Err(GithubConfigError::Url(self.github_api_url.clone()));
        }
        Ok(Some(GithubConfig {
            api_url: url.to_owned(),
            credentials: Credentials {
                token_file: self.github_token_file.clone(),
                app,
            },
            hooks: self.github_hooks.clone(),
            poll_interval: *self.github_poll_interval,
            lookback: *self.github_lookback,
            verify_after: *self.github_verify_after,
            requests_per_hour: self.github_requests_per_hour,
            request_timeout: defaults::GITHUB_REQUEST_TIMEOUT,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Args;
    use clap::Parser;

    fn config(flags: &[&str]) -> Result<Option<crate::github::GithubConfig>, String> {
        let mut argv = vec!["batch-scaler"];
        argv.extend_from_slice(flags);
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        args.github.config().map_err(|e| e.to_string())
    }

    #[test]
    fn off_without_credentials_and_defaults_as_documented() {
        assert!(config(&[]).unwrap().is_none());
        let dir = std::env::temp_dir().join(format!("gh-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "ghp_x\n").unwrap();
        let c = config(&["--github-token-file", token.to_str().unwrap()])
            .unwrap()
            .unwrap();
        assert_eq!(c.api_url, "https://api.github.com");
        assert_eq!(c.poll_interval.as_secs(), 60);
        assert_eq!(c.lookback.as_secs(), 3600);
        assert_eq!(c.verify_after.as_secs(), 900);
        assert_eq!(c.requests_per_hour, 1000);
        assert!(c.hooks.is_empty());
    }

    #[test]
    fn unusable_combinations_name_the_flag_to_fix() {
        let dir = std::env::temp_dir().join(format!("gh-flags2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "ghp_x\n").unwrap();
        let token = token.to_str().unwrap();
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testkit/fixtures/github/app-key.pem"
        );
        for (flags, says) in [
            (
                vec!["--github-hook", "org/o/1"],
                "--github-hook needs credentials",
            ),
            (
                vec!["--github-token-file", token, "--github-hook", "app"],
                "--github-hook app needs the App",
            ),
            (
                vec!["--github-app-id", "1", "--github-app-private-key-file", key],
                "--github-app-installation-id",
            ),
            (
                vec!["--github-token-file", "/nonexistent/t"],
                "--github-token-file",
            ),
            (
                vec![
                    "--github-app-id",
                    "1",
                    "--github-app-private-key-file",
                    token,
                ],
                "--github-app-private-key-file",
            ),
            (
                vec![
                    "--github-token-file",
                    token,
                    "--github-api-url",
                    "api.github.com",
                ],
                "--github-api-url",
            ),
            (vec!["--github-hook", "repo/o/1"], "--github-hook"),
            (
                vec!["--github-app-id", "1"],
                "--github-app-private-key-file",
            ),
            (
                vec!["--github-requests-per-hour", "0"],
                "--github-requests-per-hour",
            ),
        ] {
            let err = config(&flags).unwrap_err();
            assert!(err.contains(says), "{flags:?}: {err}");
        }
        let ok = config(&[
            "--github-app-id",
            "1",
            "--github-app-private-key-file",
            key,
            "--github-app-installation-id",
            "7",
            "--github-hook",
            "app,org/o/2",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(ok.hooks.len(), 2);
    }
}
