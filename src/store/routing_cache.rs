//! Routing on Kubernetes: reflectors of RunnerDeployments and RunnerSets beside the HRA watch
//! cache, each feeding the [`RoutingModel`] what routing sees of its objects. A cluster
//! without one of the runner CRDs (or without the right to list it) logs one warning and
//! counts that kind as listed and empty, so readiness does not wait for it for ever.

use super::{
    resource::{GROUP, VERSION},
    routing_model::RoutingModel,
    runners::{RUNNER_DEPLOYMENT, RUNNER_DEPLOYMENTS, RUNNER_SET, RUNNER_SETS, runner_target},
};
use crate::domain::routing::TargetKind;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::{WatchStreamExt, watcher},
};
use std::{collections::HashSet, pin::pin, sync::Arc};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// The runner kinds routing reads, with their kind and plural names.
const KINDS: [(TargetKind, &str, &str); 2] = [
    (
        TargetKind::RunnerDeployment,
        RUNNER_DEPLOYMENT,
        RUNNER_DEPLOYMENTS,
    ),
    (TargetKind::RunnerSet, RUNNER_SET, RUNNER_SETS),
];

/// How many sources (reflectors) the runner kinds add over `namespaces` (all when empty).
pub fn runner_sources(namespaces: &[String]) -> usize {
    KINDS.len() * namespaces.len().max(1)
}

fn api_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

/// True when a list failed because the kind is not there for us (no CRD, or no right to
/// list it): waiting would not help.
pub fn kind_absent(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404 || s.code == 403)
}

/// Starts watching RunnerDeployments and RunnerSets (every namespace when `namespaces` is
/// empty), feeding `model`; returns the tasks.
pub fn start(
    client: &Client,
    namespaces: &[String],
    model: Arc<RoutingModel>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (kind, name, plural) in KINDS {
        let resource = api_resource(name, plural);
        let apis: Vec<(Option<String>, Api<DynamicObject>)> = if namespaces.is_empty() {
            vec![(None, Api::all_with(client.clone(), &resource))]
        } else {
            namespaces
                .iter()
                .map(|ns| {
                    (
                        Some(ns.clone()),
                        Api::namespaced_with(client.clone(), ns, &resource),
                    )
                })
                .collect()
        };
        for (scope, api) in apis {
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            let model = model.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = pin!(stream);
                let mut synced = false;
                let mut warned = false;
                // What a re-list found, to forget what it no longer has.
                let mut listed: Option<HashSet<(String, String)>> = None;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                            let Ok(value) = serde_json::to_value(&object) else {
                                continue;
                            };
                            if let Ok(target) = runner_target(kind, &value) {
                                if let Some(listed) = &mut listed {
                                    listed.insert((target.namespace.clone(), target.name.clone()));
                                }
                                model.runner_applied(kind, target);
                            }
                        }
                        Ok(watcher::Event::Delete(object)) => model.runner_deleted(
                            kind,
                            object.metadata.namespace.as_deref().unwrap_or(""),
                            object.metadata.name.as_deref().unwrap_or(""),
                        ),
                        Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                        Ok(watcher::Event::InitDone) => {
                            if let Some(listed) = listed.take() {
                                model.retain_runners(kind, scope.as_deref(), &listed);
                            }
                            if !synced {
                                synced = true;
                                model.source_synced();
                            }
                        }
                        Err(e) if kind_absent(&e) => {
                            if !warned {
                                warned = true;
                                tracing::warn!(
                                    error = %e,
                                    "cannot list {plural}: routing goes on without them (is the CRD installed, and may we list and watch it?)"
                                );
                            }
                            if !synced {
                                synced = true;
                                model.source_synced();
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "{plural} watch failed; retrying"),
                    }
                }
            }));
        }
    }
    tasks
}
