//! A watch cache of HRAs (kube-runtime reflectors): batches are planned from the cached
//! object and written with its resourceVersion, so a window costs one PATCH per dirty HRA,
//! and `GetTarget`/`ListTargets` cost the API server nothing. A stale cache only costs a 409
//! and a fresh GET; the watcher re-lists on its own after errors, and events never depend on
//! it (they wait in the batcher). The same watch feeds the routing model what routing sees
//! of each HRA, beside the runner reflectors.

use super::{
    resource::HorizontalRunnerAutoscaler, routing_cache, routing_model::RoutingModel,
    runners::routable_hra,
};
use crate::domain::hra::{Hra, HraKey};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, reflector::ObjectRef, watcher},
};
use std::{collections::HashSet, pin::pin, sync::Arc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Reflectors over all namespaces, or over each of a list of namespaces.
pub struct WatchCache {
    /// The namespaces watched; empty: all.
    namespaces: Vec<String>,
    readers: Vec<reflector::Store<HorizontalRunnerAutoscaler>>,
    tasks: Vec<JoinHandle<()>>,
    /// How many HRA reflectors have their first full list.
    synced: watch::Receiver<usize>,
    /// What routing sees of the HRAs and of the RunnerDeployments and RunnerSets.
    routing: Arc<RoutingModel>,
}

impl WatchCache {
    /// Starts watching (every namespace when `namespaces` is empty).
    pub fn start(client: &Client, namespaces: &[String]) -> Self {
        let apis: Vec<(Option<String>, Api<HorizontalRunnerAutoscaler>)> = if namespaces.is_empty()
        {
            vec![(None, Api::all(client.clone()))]
        } else {
            namespaces
                .iter()
                .map(|ns| (Some(ns.clone()), Api::namespaced(client.clone(), ns)))
                .collect()
        };
        let routing = Arc::new(RoutingModel::new(
            apis.len() + routing_cache::runner_sources(namespaces),
        ));
        let mut tasks = routing_cache::start(client, namespaces, routing.clone());
        tasks.push(tokio::spawn(routing.clone().run()));
        let mut readers = Vec::new();
        let (synced_tx, synced) = watch::channel(0usize);
        for (scope, api) in apis {
            let (reader, writer) = reflector::store();
            let stream = reflector(
                writer,
                watcher(api, watcher::Config::default()).default_backoff(),
            );
            let (model, count) = (routing.clone(), synced_tx.clone());
            tasks.push(tokio::spawn(async move {
                let mut stream = pin!(stream);
                let mut synced = false;
                let mut listed: Option<HashSet<HraKey>> = None;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(watcher::Event::Apply(hra) | watcher::Event::InitApply(hra)) => {
                            let view = routable_hra(&hra);
                            if let Some(listed) = &mut listed {
                                listed.insert(view.key.clone());
                            }
                            model.hra_applied(view);
                        }
                        Ok(watcher::Event::Delete(hra)) => model.hra_deleted(&routable_hra(&hra).key),
                        Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                        Ok(watcher::Event::InitDone) => {
                            if let Some(listed) = listed.take() {
                                model.retain_hras(scope.as_deref(), &listed);
                            }
                            if !synced {
                                synced = true;
                                count.send_modify(|n| *n += 1);
                                model.source_synced();
                            }
                        }
                        Err(e) => {
                            let scope = scope.as_deref().unwrap_or("*");
                            tracing::warn!(namespaces = %scope, error = %e, "HRA watch failed; retrying")
                        }
                    }
                }
            }));
            readers.push(reader);
        }
        Self {
            namespaces: namespaces.to_vec(),
            readers,
            tasks,
            synced,
            routing,
        }
    }

    /// The cached HRA, if the cache holds it.
    pub fn get(&self, key: &HraKey) -> Option<Hra> {
        let reference = ObjectRef::new(&key.name).within(&key.namespace);
        self.readers
            .iter()
            .find_map(|r| r.get(&reference))
            .map(|object| Hra::from(HorizontalRunnerAutoscaler::clone(&object)))
    }

    /// True if the cache watches `namespace`.
    pub fn covers(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }

    /// Every cached HRA, or those of one namespace.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Hra> {
        self.readers
            .iter()
            .flat_map(|r| r.state())
            .map(|object| Hra::from(HorizontalRunnerAutoscaler::clone(&object)))
            .filter(|h| namespace.is_none_or(|ns| h.key.namespace == ns))
            .collect()
    }

    /// Waits until every reflector, HRAs and runner kinds, has its first full list.
    pub async fn ready(&self) {
        let all = self.readers.len();
        let _ = self.synced.clone().wait_for(|n| *n >= all).await;
        self.routing.ready().await;
    }

    /// The routing model this cache feeds.
    pub fn routing(&self) -> Arc<RoutingModel> {
        self.routing.clone()
    }

    /// True once every HRA reflector has its first full list (batches can be planned).
    pub fn hras_ready(&self) -> bool {
        *self.synced.borrow() >= self.readers.len()
    }

    /// True once every reflector, HRAs and runner kinds, has its first full list.
    pub fn is_ready(&self) -> bool {
        self.hras_ready() && self.routing.is_ready()
    }

    /// HRAs cached now.
    pub fn len(&self) -> usize {
        self.readers.iter().map(|r| r.state().len()).sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
