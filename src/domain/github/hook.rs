//! Which webhook's deliveries to watch (`--github-hook`): the GitHub App's own webhook, an
//! organization's or a repository's.

use crate::domain::validate::check_repository;
use std::{fmt, str::FromStr};

/// One webhook whose deliveries are polled.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HookSpec {
    /// The GitHub App's webhook (`app`): needs the App's JWT.
    App,
    /// An organization webhook (`org/ORG/HOOK_ID`).
    Org {
        /// Organization login.
        org: String,
        /// Hook id.
        hook_id: u64,
    },
    /// A repository webhook (`repo/OWNER/REPO/HOOK_ID`).
    Repo {
        /// `OWNER/REPO`.
        repository: String,
        /// Hook id.
        hook_id: u64,
    },
}

/// A `--github-hook` value that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--github-hook {spec:?}: {why} (expected app, org/ORG/HOOK_ID or repo/OWNER/REPO/HOOK_ID)")]
pub struct HookSpecError {
    spec: String,
    why: String,
}

impl HookSpec {
    /// The REST path of the hook's deliveries list; a delivery is `{path}/{id}`.
    pub fn deliveries_path(&self) -> String {
        match self {
            Self::App => "/app/hook/deliveries".into(),
            Self::Org { org, hook_id } => format!("/orgs/{org}/hooks/{hook_id}/deliveries"),
            Self::Repo {
                repository,
                hook_id,
            } => format!("/repos/{repository}/hooks/{hook_id}/deliveries"),
        }
    }

    /// True for the App's webhook (authenticated with the App's JWT).
    pub fn needs_app_jwt(&self) -> bool {
        matches!(self, Self::App)
    }
}

impl fmt::Display for HookSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::App => f.write_str("app"),
            Self::Org { org, hook_id } => write!(f, "org/{org}/{hook_id}"),
            Self::Repo {
                repository,
                hook_id,
            } => write!(f, "repo/{repository}/{hook_id}"),
        }
    }
}

impl FromStr for HookSpec {
    type Err = HookSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| HookSpecError {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let hook_id = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| err("the hook id must be a positive integer"))
        };
        let parts: Vec<&str> = spec.split('/').collect();
        match parts.as_slice() {
            ["app"] => Ok(Self::App),
            ["org", org, id] => {
                // An organization login is an owner: check it as one.
                check_repository(&format!("{org}/x"))
                    .map_err(|_| err("the organization has 1 to 39 letters, digits and '-'"))?;
                Ok(Self::Org {
                    org: (*org).to_owned(),
                    hook_id: hook_id(id)?,
                })
            }
            ["repo", owner, repo, id] => {
                let repository = format!("{owner}/{repo}");
                check_repository(&repository).map_err(err)?;
                Ok(Self::Repo {
                    repository,
                    hook_id: hook_id(id)?,
                })
            }
            _ => Err(err("unknown form")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_names_their_paths() {
        let cases = [
            ("app", "/app/hook/deliveries"),
            ("org/octo-org/12", "/orgs/octo-org/hooks/12/deliveries"),
            (
                "repo/octo-org/hello.rs/7",
                "/repos/octo-org/hello.rs/hooks/7/deliveries",
            ),
        ];
        for (spec, path) in cases {
            let hook: HookSpec = spec.parse().unwrap();
            assert_eq!(hook.deliveries_path(), path);
            assert_eq!(hook.to_string(), spec);
        }
        assert!("app".parse::<HookSpec>().unwrap().needs_app_jwt());
    }

    #[test]
    fn refuses_malformed_specs_saying_why() {
        for bad in [
            "",
            "apps",
            "org/octo",
            "org/octo/x",
            "org/octo/0",
            "org/oc to/1",
            "repo/octo/1",
            "repo/octo/../1",
            "repo/a/b/c/1",
        ] {
            let e = bad.parse::<HookSpec>().unwrap_err();
            assert!(e.to_string().starts_with("--github-hook"), "{bad}: {e}");
        }
    }
}
