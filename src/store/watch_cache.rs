//! A watch cache of HRAs (kube-runtime reflectors): batches are planned from the cached
//! object and written with its resourceVersion, so a window costs one PATCH per dirty HRA.
//! A stale cache only costs a 409 and a fresh GET; the watcher re-lists on its own after
//! errors, and events never depend on it (they wait in the batcher).

use super::{
    resource::HorizontalRunnerAutoscaler,
    routing_cache::{RoutingCache, RoutingChanges},
};
use crate::domain::{
    hra::{Hra, HraKey},
    routing::RoutingIndex,
};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, reflector::ObjectRef, watcher},
};
use std::{pin::pin, sync::Arc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Reflectors over all namespaces, or over each of a list of namespaces.
pub struct WatchCache {
    /// The namespaces watched; empty: all.
    namespaces: Vec<String>,
    readers: Vec<reflector::Store<HorizontalRunnerAutoscaler>>,
    tasks: Vec<JoinHandle<()>>,
    /// How many reflectors have their first full list. (Only one task awaits each
    /// reflector's readiness: its one-shot wakes a single waiter.)
    synced: watch::Receiver<usize>,
    /// RunnerDeployments and RunnerSets, and the routing index over everything.
    routing: RoutingCache,
}

impl WatchCache {
    /// Starts watching (every namespace when `namespaces` is empty).
    pub fn start(client: &Client, namespaces: &[String]) -> Self {
        let apis: Vec<(String, Api<HorizontalRunnerAutoscaler>)> = if namespaces.is_empty() {
            vec![("*".into(), Api::all(client.clone()))]
        } else {
            namespaces
                .iter()
                .map(|ns| (ns.clone(), Api::namespaced(client.clone(), ns)))
                .collect()
        };
        let mut readers = Vec::new();
        let mut tasks = Vec::new();
        let (synced_tx, synced) = watch::channel(0usize);
        let changes = Arc::new(RoutingChanges::default());
        let routing = RoutingCache::start(client, namespaces, changes.clone());
        for (scope, api) in apis {
            let (reader, writer) = reflector::store();
            let stream = reflector(
                writer,
                watcher(api, watcher::Config::default()).default_backoff(),
            );
            let changes = changes.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = pin!(stream);
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(watcher::Event::Apply(hra) | watcher::Event::InitApply(hra)) => {
                            changes.hra_applied(&hra)
                        }
                        Ok(watcher::Event::Delete(hra)) => changes.hra_deleted(&hra),
                        Ok(watcher::Event::Init | watcher::Event::InitDone) => changes.bump(),
                        Err(e) => {
                            tracing::warn!(namespaces = %scope, error = %e, "HRA watch failed; retrying")
                        }
                    }
                }
            }));
            let (ready, count) = (reader.clone(), synced_tx.clone());
            tasks.push(tokio::spawn(async move {
                if ready.wait_until_ready().await.is_ok() {
                    count.send_modify(|n| *n += 1);
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

    /// Waits until every reflector has its first full list.
    pub async fn ready(&self) {
        let all = self.readers.len();
        let _ = self.synced.clone().wait_for(|n| *n >= all).await;
    }

    /// The routing index over the cached HRAs and runner objects.
    pub fn routing_index(&self) -> Arc<RoutingIndex> {
        self.routing.index(|| {
            self.readers
                .iter()
                .flat_map(|r| r.state())
                .map(|h| HorizontalRunnerAutoscaler::clone(&h))
                .collect()
        })
    }

    /// True once every reflector has its first full list.
    pub fn is_ready(&self) -> bool {
        *self.synced.borrow() >= self.readers.len()
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
