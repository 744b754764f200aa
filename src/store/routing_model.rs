//! The routing read model: the routing view of every HRA and every runner target, fed by
//! whoever watches them (the memory store as it changes, the Kubernetes reflectors), and the
//! routing index built from them off the request path, only after a change routing can see
//! (a target's labels, repository, organization, enterprise or group; an HRA's trigger,
//! target or deletion; never status or our own reservation writes), then swapped in whole:
//! requests read it without a lock and never build it.
//!
//! It is ready once every source it was told of has delivered its first full list; until
//! then there is no index, and routing answers that it is not ready rather than guess.

use crate::domain::{
    hra::HraKey,
    routing::{RoutableHra, RoutingIndex, RunnerTarget, TargetKind},
};
use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};
use tokio::sync::{Notify, watch};

type RunnerKey = (TargetKind, String, String);

#[derive(Default)]
struct Views {
    hras: BTreeMap<HraKey, RoutableHra>,
    runners: BTreeMap<RunnerKey, RunnerTarget>,
    /// Something routing can see changed since the last build.
    dirty: bool,
}

/// The routing view of a cluster (or of the memory store), and its index.
pub struct RoutingModel {
    views: Mutex<Views>,
    index: ArcSwapOption<RoutingIndex>,
    /// Sources (reflectors) still without their first full list.
    unsynced: watch::Sender<usize>,
    changed: Notify,
    rebuilds: AtomicU64,
}

impl RoutingModel {
    /// A model waiting for `sources` first lists (0: ready at once).
    pub fn new(sources: usize) -> Self {
        let model = Self {
            views: Mutex::new(Views {
                dirty: true,
                ..Views::default()
            }),
            index: ArcSwapOption::empty(),
            unsynced: watch::channel(sources).0,
            changed: Notify::new(),
            rebuilds: AtomicU64::new(0),
        };
        if sources == 0 {
            model.rebuild();
        }
        model
    }

    fn mark_dirty(&self, views: &mut Views) {
        views.dirty = true;
        self.changed.notify_one();
    }

    /// An HRA as it is now; a rebuild is due only if its routing view changed.
    pub fn hra_applied(&self, view: RoutableHra) {
        let mut views = self.views.lock();
        if views.hras.get(&view.key) != Some(&view) {
            views.hras.insert(view.key.clone(), view);
            self.mark_dirty(&mut views);
        }
    }

    /// An HRA deleted.
    pub fn hra_deleted(&self, key: &HraKey) {
        let mut views = self.views.lock();
        if views.hras.remove(key).is_some() {
            self.mark_dirty(&mut views);
        }
    }

    /// A RunnerDeployment or RunnerSet as it is now.
    pub fn runner_applied(&self, kind: TargetKind, target: RunnerTarget) {
        let key = (kind, target.namespace.clone(), target.name.clone());
        let mut views = self.views.lock();
        if views.runners.get(&key) != Some(&target) {
            views.runners.insert(key, target);
            self.mark_dirty(&mut views);
        }
    }

    /// A RunnerDeployment or RunnerSet deleted.
    pub fn runner_deleted(&self, kind: TargetKind, namespace: &str, name: &str) {
        let key = (kind, namespace.to_owned(), name.to_owned());
        let mut views = self.views.lock();
        if views.runners.remove(&key).is_some() {
            self.mark_dirty(&mut views);
        }
    }

    /// After a re-list of HRAs in `scope` (a namespace; `None`: all), forgets those it no
    /// longer has (deleted while the watch was down).
    pub fn retain_hras(&self, scope: Option<&str>, listed: &HashSet<HraKey>) {
        let mut views = self.views.lock();
        let before = views.hras.len();
        views
            .hras
            .retain(|key, _| scope.is_some_and(|ns| key.namespace != ns) || listed.contains(key));
        if views.hras.len() != before {
            self.mark_dirty(&mut views);
        }
    }

    /// After a re-list of one runner kind in `scope`, forgets the objects it no longer has.
    pub fn retain_runners(
        &self,
        kind: TargetKind,
        scope: Option<&str>,
        listed: &HashSet<(String, String)>,
    ) {
        let mut views = self.views.lock();
        let before = views.runners.len();
        views.runners.retain(|(k, ns, name), _| {
            *k != kind
                || scope.is_some_and(|s| ns != s)
                || listed.contains(&(ns.clone(), name.clone()))
        });
        if views.runners.len() != before {
            self.mark_dirty(&mut views);
        }
    }

    /// One source delivered its first full list (or, for a runner kind the cluster does not
    /// have, found there is none). The last one builds the first index.
    pub fn source_synced(&self) {
        self.unsynced.send_modify(|n| *n = n.saturating_sub(1));
        if self.is_ready() {
            self.rebuild();
        }
    }

    /// True once every source has its first full list.
    pub fn is_ready(&self) -> bool {
        *self.unsynced.borrow() == 0
    }

    /// Waits until [`RoutingModel::is_ready`].
    pub async fn ready(&self) {
        let _ = self.unsynced.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Sources still without their first full list.
    pub fn unsynced(&self) -> usize {
        *self.unsynced.borrow()
    }

    /// Builds the index again if something routing can see changed (and the model is
    /// ready), and swaps it in. True if it rebuilt.
    pub fn rebuild(&self) -> bool {
        if !self.is_ready() {
            return false;
        }
        let (hras, runners) = {
            let mut views = self.views.lock();
            if !views.dirty {
                return false;
            }
            views.dirty = false;
            let runners: Vec<(TargetKind, RunnerTarget)> = views
                .runners
                .iter()
                .map(|((kind, _, _), t)| (*kind, t.clone()))
                .collect();
            (views.hras.values().cloned().collect::<Vec<_>>(), runners)
        };
        self.index
            .store(Some(Arc::new(RoutingIndex::build(hras, runners))));
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The index as last built; `None` until the model is ready.
    pub fn index(&self) -> Option<Arc<RoutingIndex>> {
        if !self.is_ready() {
            return None;
        }
        self.index.load_full()
    }

    /// How many times the index was built.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }

    /// Rebuilds after each change, until the model is dropped (the Kubernetes store runs
    /// this beside its reflectors; changes that come together cost one build).
    pub async fn run(self: Arc<Self>) {
        loop {
            self.changed.notified().await;
            self.rebuild();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hra(name: &str, target: &str) -> RoutableHra {
        RoutableHra {
            key: HraKey::new("ci", name),
            deleting: false,
            triggers: 1,
            workflow_job_trigger: true,
            trigger_duration: None,
            target_kind: "RunnerDeployment".into(),
            target_name: target.into(),
        }
    }

    fn runner(name: &str, labels: &[&str]) -> RunnerTarget {
        RunnerTarget {
            namespace: "ci".into(),
            name: name.into(),
            organization: "octo".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..RunnerTarget::default()
        }
    }

    #[test]
    fn no_index_until_every_source_synced_then_rebuilt_only_after_routing_changes() {
        let model = RoutingModel::new(2);
        model.hra_applied(hra("linux", "linux"));
        model.runner_applied(TargetKind::RunnerDeployment, runner("linux", &["linux"]));
        assert!(model.index().is_none());
        model.source_synced();
        assert!(
            !model.rebuild() && model.index().is_none(),
            "one source still listing"
        );
        model.source_synced();
        assert!(model.index().is_some());
        assert_eq!(model.rebuilds(), 1);
        // The same views again (a status change, our own write): nothing to build.
        model.hra_applied(hra("linux", "linux"));
        model.runner_applied(TargetKind::RunnerDeployment, runner("linux", &["linux"]));
        assert!(!model.rebuild());
        // A label change is routing's business.
        model.runner_applied(
            TargetKind::RunnerDeployment,
            runner("linux", &["linux", "x64"]),
        );
        assert!(model.rebuild());
        model.hra_deleted(&HraKey::new("ci", "linux"));
        assert!(model.rebuild());
        assert_eq!(model.rebuilds(), 3);
    }
}
