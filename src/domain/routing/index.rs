//! The routing index: every HRA with its resolved target, and the keys each can serve.

use super::{Route, RouteResult, WorkflowJob};
use crate::domain::{hra::HraKey, namespaces::Allowlist};
use chrono::TimeDelta;
use std::collections::{BTreeMap, BTreeSet};

/// The kind of an HRA's scale target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// `RunnerDeployment` (also when `scaleTargetRef.kind` is empty).
    RunnerDeployment,
    /// `RunnerSet`.
    RunnerSet,
}

impl TargetKind {
    /// The kind named by `scaleTargetRef.kind`, if supported.
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "" | "RunnerDeployment" => Some(Self::RunnerDeployment),
            "RunnerSet" => Some(Self::RunnerSet),
            _ => None,
        }
    }
}

/// A RunnerDeployment's (`spec.template.spec`) or RunnerSet's (`spec`) routing fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunnerTarget {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// `repository` (`OWNER/REPO`).
    pub repository: String,
    /// `organization`.
    pub organization: String,
    /// `enterprise`.
    pub enterprise: String,
    /// `group`.
    pub group: String,
    /// `labels`.
    pub labels: Vec<String>,
}

/// What routing needs of an HRA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutableHra {
    /// Namespace and name.
    pub key: HraKey,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// How many `scaleUpTriggers` it has.
    pub triggers: usize,
    /// The first trigger has `githubEvent.workflowJob` set.
    pub workflow_job_trigger: bool,
    /// The single trigger's positive duration.
    pub trigger_duration: Option<TimeDelta>,
    /// `scaleTargetRef.kind` as written.
    pub target_kind: String,
    /// `scaleTargetRef.name`.
    pub target_name: String,
}

/// A runner group: Default or Custom (named), of Organization or Enterprise scope, ordered
/// as ARC visits them: Default before Custom; Organization before Enterprise; then by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    custom: bool,
    enterprise: bool,
    name: String,
}

struct Entry {
    hra: RoutableHra,
    /// The target, or why the HRA has none.
    target: Result<RunnerTarget, String>,
}

/// HRAs by the keys they serve, and the runner groups of each organization and enterprise.
#[derive(Default)]
pub struct RoutingIndex {
    entries: BTreeMap<HraKey, Entry>,
    by_key: BTreeMap<String, BTreeSet<HraKey>>,
    groups_by_org: BTreeMap<String, BTreeSet<Group>>,
    groups_by_enterprise: BTreeMap<String, BTreeSet<Group>>,
}

/// The keys a target serves (routing.md, "Keys of an HRA").
fn keys(kind: TargetKind, t: &RunnerTarget) -> Vec<String> {
    let mut keys = Vec::new();
    if !t.repository.is_empty() {
        keys.push(t.repository.clone());
    }
    let both = kind == TargetKind::RunnerSet;
    for (scope, prefix) in [
        (&t.organization, String::new()),
        (&t.enterprise, "enterprises/".to_owned()),
    ] {
        if scope.is_empty() {
            continue;
        }
        let base = format!("{prefix}{scope}");
        if t.group.is_empty() {
            keys.push(base);
        } else {
            if both {
                keys.push(base.clone());
            }
            keys.push(format!("{base}/group/{}", t.group));
        }
    }
    keys
}

impl RoutingIndex {
    /// Indexes `hras`, resolving each one's target among `targets` (by namespace, kind, name).
    pub fn build(
        hras: impl IntoIterator<Item = RoutableHra>,
        targets: impl IntoIterator<Item = (TargetKind, RunnerTarget)>,
    ) -> Self {
        let targets: BTreeMap<(String, TargetKind, String), RunnerTarget> = targets
            .into_iter()
            .map(|(kind, t)| ((t.namespace.clone(), kind, t.name.clone()), t))
            .collect();
        let mut index = Self::default();
        for hra in hras {
            let resolved = match TargetKind::parse(&hra.target_kind) {
                None => Err(format!(
                    "its scaleTargetRef.kind {:?} is not supported",
                    hra.target_kind
                )),
                Some(_) if hra.target_name.is_empty() => {
                    Err("its scaleTargetRef.name is empty".into())
                }
                Some(kind) => targets
                    .get(&(hra.key.namespace.clone(), kind, hra.target_name.clone()))
                    .cloned()
                    .map(|t| (kind, t))
                    .ok_or_else(|| {
                        format!("its target {kind:?} {} does not exist", hra.target_name)
                    }),
            };
            let target = match resolved {
                Ok((kind, t)) => {
                    for key in keys(kind, &t) {
                        index.by_key.entry(key).or_default().insert(hra.key.clone());
                    }
                    if t.group.is_empty() || !t.organization.is_empty() || !t.enterprise.is_empty()
                    {
                        let group = Group {
                            custom: !t.group.is_empty(),
                            enterprise: !t.enterprise.is_empty(),
                            name: t.group.clone(),
                        };
                        if !t.organization.is_empty() {
                            let groups = index
                                .groups_by_org
                                .entry(t.organization.clone())
                                .or_default();
                            groups.insert(group.clone());
                        }
                        let groups = index
                            .groups_by_enterprise
                            .entry(t.enterprise.clone())
                            .or_default();
                        groups.insert(group);
                    }
                    Ok(t)
                }
                Err(why) => Err(why),
            };
            index.entries.insert(hra.key.clone(), Entry { hra, target });
        }
        index
    }

    /// How many HRAs are indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no HRA is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Routes a validated job; only HRAs in `allowed` namespaces are candidates.
    pub fn route(&self, job: &WorkflowJob, allowed: &Allowlist) -> Route {
        let amount = match job.amount() {
            Ok(amount) => amount,
            Err(_) if job.starts() => 0,
            Err(reason) => {
                return Route {
                    target: None,
                    amount: 0,
                    starts: false,
                    duration: job.duration,
                    reason,
                    also_matched: vec![],
                    result: RouteResult::Ignored,
                };
            }
        };
        let mut rejected = Vec::new();
        if let Some(route) = self.try_key(
            &job.repository,
            "repository runners",
            job,
            allowed,
            amount,
            &mut rejected,
        ) {
            return route;
        }
        if job.owner_type == "User" {
            rejected.push("a user's repository has only repository runners".to_owned());
            return self.unmatched(job, amount, rejected);
        }
        let owner = job.owner();
        let mut groups: BTreeSet<&Group> = BTreeSet::new();
        groups.extend(self.groups_by_org.get(owner).into_iter().flatten());
        groups.extend(
            self.groups_by_enterprise
                .get(&job.enterprise)
                .into_iter()
                .flatten(),
        );
        for group in groups {
            let (key, rule) = match (group.custom, group.enterprise) {
                (false, false) => (
                    owner.to_owned(),
                    "default organization runner group".to_owned(),
                ),
                (false, true) => (
                    format!("enterprises/{}", job.enterprise),
                    "default enterprise runner group".to_owned(),
                ),
                (true, false) => (
                    format!("{owner}/group/{}", group.name),
                    format!("organization runner group {:?}", group.name),
                ),
                (true, true) => (
                    format!("enterprises/{}/group/{}", job.enterprise, group.name),
                    format!("enterprise runner group {:?}", group.name),
                ),
            };
            if let Some(route) = self.try_key(&key, &rule, job, allowed, amount, &mut rejected) {
                return route;
            }
        }
        self.unmatched(job, amount, rejected)
    }

    fn unmatched(&self, job: &WorkflowJob, amount: i32, rejected: Vec<String>) -> Route {
        let mut reason = format!("no HRA matched repository {}", job.repository);
        if rejected.is_empty() {
            reason.push_str(": no HRA serves it, its owner or its enterprise");
        } else {
            reason.push_str(": ");
            reason.push_str(&rejected.join("; "));
        }
        Route {
            target: None,
            amount,
            starts: false,
            duration: job.duration,
            reason,
            also_matched: vec![],
            result: RouteResult::Unmatched,
        }
    }

    /// The route through `key`, if an HRA with that key qualifies; notes why others did not.
    fn try_key(
        &self,
        key: &str,
        rule: &str,
        job: &WorkflowJob,
        allowed: &Allowlist,
        amount: i32,
        rejected: &mut Vec<String>,
    ) -> Option<Route> {
        let candidates = self.by_key.get(key)?;
        let mut qualified = Vec::new();
        for hra in candidates {
            if !allowed.allows(&hra.namespace) {
                continue;
            }
            match self.entries.get(hra).map(|e| qualifies(e, job)) {
                Some(Ok(())) => qualified.push(hra),
                Some(Err(why)) => rejected.push(format!("HRA {hra} (key {key}): {why}")),
                None => {}
            }
        }
        let (first, rest) = qualified.split_first()?;
        let entry = &self.entries[*first];
        let also_matched: Vec<HraKey> = rest.iter().map(|k| (*k).clone()).collect();
        let mut reason = format!("{rule}: key {key} matched HRA {first}");
        let result = if also_matched.is_empty() {
            RouteResult::Routed
        } else {
            let others: Vec<String> = also_matched.iter().map(ToString::to_string).collect();
            reason.push_str(&format!(
                " (first of {}; also {})",
                qualified.len(),
                others.join(", ")
            ));
            RouteResult::Ambiguous
        };
        Some(Route {
            target: Some((*first).clone()),
            amount,
            starts: job.starts(),
            duration: job.duration.or(entry.hra.trigger_duration),
            reason,
            also_matched,
            result,
        })
    }
}

/// Step 4 of routing.md: not being deleted, exactly one `workflowJob` trigger, a target, and
/// every job label but `self-hosted` among the target's labels (case-insensitive).
fn qualifies(entry: &Entry, job: &WorkflowJob) -> Result<(), String> {
    let hra = &entry.hra;
    if hra.deleting {
        return Err("it is being deleted".into());
    }
    if hra.triggers != 1 {
        return Err(format!(
            "it has {} scaleUpTriggers, not exactly one",
            hra.triggers
        ));
    }
    if !hra.workflow_job_trigger {
        return Err("its trigger has no githubEvent.workflowJob".into());
    }
    let target = entry.target.as_ref().map_err(Clone::clone)?;
    for label in job.labels.iter().filter(|l| *l != "self-hosted") {
        if !target.labels.iter().any(|t| t.eq_ignore_ascii_case(label)) {
            return Err(format!(
                "label {label:?} is not among its target's labels {:?}",
                target.labels
            ));
        }
    }
    Ok(())
}
