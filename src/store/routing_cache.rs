//! Routing on Kubernetes: reflectors of RunnerDeployments and RunnerSets beside the HRA watch
//! cache, and the routing index rebuilt only after a change that can alter routing (an HRA's
//! target, triggers or deletion; any runner object) — never after our own reservation writes.
//! A cluster without one of the runner CRDs (or without the right to watch it) logs one
//! warning and routes with what it has.

use super::{
    resource::{GROUP, HorizontalRunnerAutoscaler, VERSION},
    runners::{
        RUNNER_DEPLOYMENT, RUNNER_DEPLOYMENTS, RUNNER_SET, RUNNER_SETS, routable_hra, runner_target,
    },
};
use crate::domain::{
    hra::HraKey,
    routing::{RoutableHra, RoutingIndex, TargetKind},
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::{WatchStreamExt, reflector, watcher},
};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Counts changes that can alter routing; the index is rebuilt when it moves.
#[derive(Default)]
pub struct RoutingChanges {
    generation: AtomicU64,
    /// The routing view of each HRA last seen, to tell routing changes from our own writes.
    seen: Mutex<HashMap<HraKey, RoutableHra>>,
}

impl RoutingChanges {
    /// Something changed that can alter routing.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes an HRA as the watch now has it; bumps if its routing view changed.
    pub fn hra_applied(&self, hra: &HorizontalRunnerAutoscaler) {
        let view = routable_hra(hra);
        let changed = self.seen.lock().insert(view.key.clone(), view.clone()) != Some(view);
        if changed {
            self.bump();
        }
    }

    /// Notes an HRA deleted.
    pub fn hra_deleted(&self, hra: &HorizontalRunnerAutoscaler) {
        self.seen.lock().remove(&routable_hra(hra).key);
        self.bump();
    }
}

/// Reflectors of one runner kind, over every watched namespace.
struct RunnerReflectors {
    kind: TargetKind,
    readers: Vec<reflector::Store<DynamicObject>>,
}

/// The runner caches and the index built from them and the HRA cache.
pub struct RoutingCache {
    runners: Vec<RunnerReflectors>,
    changes: Arc<RoutingChanges>,
    index: Mutex<(u64, Option<Arc<RoutingIndex>>)>,
    tasks: Vec<JoinHandle<()>>,
}

fn api_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

impl RoutingCache {
    /// Starts watching RunnerDeployments and RunnerSets (every namespace when `namespaces`
    /// is empty); `changes` is also fed by the HRA watch.
    pub fn start(client: &Client, namespaces: &[String], changes: Arc<RoutingChanges>) -> Self {
        let mut runners = Vec::new();
        let mut tasks = Vec::new();
        for (kind, name, plural) in [
            (
                TargetKind::RunnerDeployment,
                RUNNER_DEPLOYMENT,
                RUNNER_DEPLOYMENTS,
            ),
            (TargetKind::RunnerSet, RUNNER_SET, RUNNER_SETS),
        ] {
            let resource = api_resource(name, plural);
            let apis: Vec<Api<DynamicObject>> = if namespaces.is_empty() {
                vec![Api::all_with(client.clone(), &resource)]
            } else {
                namespaces
                    .iter()
                    .map(|ns| Api::namespaced_with(client.clone(), ns, &resource))
                    .collect()
            };
            let warned = Arc::new(AtomicBool::new(false));
            let mut readers = Vec::new();
            for api in apis {
                let writer = reflector::store::Writer::new(resource.clone());
                readers.push(writer.as_reader());
                let stream = reflector(
                    writer,
                    watcher(api, watcher::Config::default()).default_backoff(),
                );
                let (changes, warned) = (changes.clone(), warned.clone());
                tasks.push(tokio::spawn(async move {
                    let mut stream = pin!(stream);
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(_) => changes.bump(),
                            Err(e) if !warned.swap(true, Ordering::Relaxed) => tracing::warn!(
                                error = %e,
                                "cannot watch {plural}: routing goes on without them (is the CRD installed, and may we list and watch it?)"
                            ),
                            Err(e) => tracing::debug!(error = %e, "{plural} watch failed; retrying"),
                        }
                    }
                }));
            }
            runners.push(RunnerReflectors { kind, readers });
        }
        Self {
            runners,
            changes,
            index: Mutex::new((u64::MAX, None)),
            tasks,
        }
    }

    /// The routing index over `hras` and the cached runner objects, rebuilt only when
    /// something that can alter routing changed since the last build.
    pub fn index(
        &self,
        hras: impl FnOnce() -> Vec<HorizontalRunnerAutoscaler>,
    ) -> Arc<RoutingIndex> {
        let generation = self.changes.generation.load(Ordering::Relaxed);
        let mut index = self.index.lock();
        if let (built, Some(current)) = &*index
            && *built == generation
        {
            return current.clone();
        }
        let hras: Vec<RoutableHra> = hras().iter().map(routable_hra).collect();
        let mut targets = Vec::new();
        for runners in &self.runners {
            for reader in &runners.readers {
                for object in reader.state() {
                    let Ok(value) = serde_json::to_value(&*object) else {
                        continue;
                    };
                    if let Ok(target) = runner_target(runners.kind, &value) {
                        targets.push((runners.kind, target));
                    }
                }
            }
        }
        let built = Arc::new(RoutingIndex::build(hras, targets));
        *index = (generation, Some(built.clone()));
        built
    }
}

impl Drop for RoutingCache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
