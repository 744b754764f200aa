//! HRAs in a Kubernetes cluster through kube-rs: JSON merge PATCH carrying the planned-from
//! resourceVersion to write, every call under a per-request timeout. With a watch cache,
//! reads (`get`, `list`) are answered from it and cost the API server nothing; what we wrote
//! ourselves is read back at once, before the watch delivers it.

use super::routing_model::RoutingModel;
use super::{
    HraStore, StoreError, Write,
    resource::{HorizontalRunnerAutoscaler, merge_patch},
    watch_cache::WatchCache,
};
use crate::domain::hra::{Hra, HraKey};
use async_trait::async_trait;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use parking_lot::Mutex;
use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

/// HRAs in a cluster.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    request_timeout: Duration,
    cache: Option<Arc<WatchCache>>,
    /// Our own last write of each HRA, until the cache has it too.
    written: Arc<Mutex<HashMap<HraKey, Hra>>>,
}

/// True if `a`'s resourceVersion is known to be newer than `b`'s. (They are opaque; where
/// both are numbers, as every API server writes them, the larger is newer.)
fn newer(a: &Hra, b: &Hra) -> bool {
    match (
        a.resource_version.parse::<u64>(),
        b.resource_version.parse::<u64>(),
    ) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

const LIST_PAGE: u32 = 500;

impl KubeStore {
    /// A store using `client`; no call may take longer than `request_timeout`.
    pub fn new(client: Client, request_timeout: Duration) -> Self {
        Self {
            client,
            request_timeout,
            cache: None,
            written: Arc::default(),
        }
    }

    /// Plans from a watch cache of the HRAs of `namespaces` (all when empty).
    pub fn with_watch_cache(mut self, namespaces: &[String]) -> Self {
        self.cache = Some(Arc::new(WatchCache::start(&self.client, namespaces)));
        self
    }

    /// The client it talks to the cluster with.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The watch cache, if enabled.
    pub fn cache(&self) -> Option<&WatchCache> {
        self.cache.as_deref()
    }

    /// A store for the cluster of the standard kubeconfig / in-cluster resolution
    /// (`KUBECONFIG` honoured).
    pub async fn from_environment(request_timeout: Duration) -> Result<Self, kube::Error> {
        // No client-wide read timeout: it would cut idle watch streams. Each call has its own.
        let config = kube::Config::infer()
            .await
            .map_err(kube::Error::InferConfig)?;
        Ok(Self::new(Client::try_from(config)?, request_timeout))
    }

    /// The cached HRA, or our own later write of it.
    fn freshest(&self, cached: Hra) -> Hra {
        let mut written = self.written.lock();
        match written.get(&cached.key) {
            Some(ours) if newer(ours, &cached) => ours.clone(),
            Some(_) => {
                written.remove(&cached.key);
                cached
            }
            None => cached,
        }
    }

    fn api(&self, namespace: &str) -> Api<HorizontalRunnerAutoscaler> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Runs one API call under the request timeout, classifying its failure.
    async fn call<T>(
        &self,
        key: Option<&HraKey>,
        writing: bool,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.request_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(e, key, writing)),
            Err(elapsed) => {
                let why = format!("no answer within {:?}", self.request_timeout);
                let e = if writing {
                    StoreError::unknown(why)
                } else {
                    StoreError::transient(why)
                };
                Err(e.caused_by(elapsed))
            }
        }
    }
}

/// Maps a kube error to how the applier should treat it, keeping it as the cause. Failures
/// without an API status during a write may have happened after the request was sent, so
/// their outcome is unknown.
pub fn classify(e: kube::Error, key: Option<&HraKey>, writing: bool) -> StoreError {
    let classified = match &e {
        kube::Error::Api(status) => {
            let message = format!("{} {}: {}", status.code, status.reason, status.message);
            match (status.code, key) {
                (404, Some(key)) => return StoreError::NotFound(key.clone()),
                (409, _) => StoreError::conflict(message),
                (403, _) => StoreError::forbidden(message),
                (400 | 413 | 422, _) => StoreError::invalid(message),
                // etcd's size limit still comes back as a 500 from many API servers: it is
                // not transient, retrying the same write cannot succeed.
                _ if status.message.contains("request is too large") => {
                    StoreError::invalid(message)
                }
                _ => StoreError::transient(message),
            }
        }
        other if writing => StoreError::unknown(other.to_string()),
        other => StoreError::transient(other.to_string()),
    };
    classified.caused_by(e)
}

#[async_trait]
impl HraStore for KubeStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        if let Some(cache) = &self.cache {
            match cache.get(key) {
                Some(hra) => return Ok(self.freshest(hra)),
                // A synced cache of its namespace knows: there is no such HRA.
                None if cache.hras_ready() && cache.covers(&key.namespace) => {
                    return Err(StoreError::NotFound(key.clone()));
                }
                None => {}
            }
        }
        self.get_fresh(key).await
    }

    async fn get_fresh(&self, key: &HraKey) -> Result<Hra, StoreError> {
        let api = self.api(&key.namespace);
        let object = self.call(Some(key), false, api.get(&key.name)).await?;
        Ok(object.into())
    }

    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        if let Some(cache) = &self.cache
            && cache.hras_ready()
            && namespace.is_none_or(|ns| cache.covers(ns))
        {
            let mut hras: Vec<Hra> = cache
                .list(namespace)
                .into_iter()
                .map(|h| self.freshest(h))
                .collect();
            hras.sort_by(|a, b| a.key.cmp(&b.key));
            return Ok(hras);
        }
        let api = match namespace {
            Some(ns) => self.api(ns),
            None => Api::all(self.client.clone()),
        };
        let mut hras = Vec::new();
        let mut params = ListParams::default().limit(LIST_PAGE);
        loop {
            let page = self.call(None, false, api.list(&params)).await?;
            hras.extend(page.items.into_iter().map(Hra::from));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        hras.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(hras)
    }

    fn routing(&self) -> Option<Arc<RoutingModel>> {
        self.cache.as_ref().map(|c| c.routing())
    }

    fn is_ready(&self) -> bool {
        self.cache.as_ref().is_none_or(|c| c.is_ready())
    }

    async fn ready(&self) {
        if let Some(cache) = &self.cache {
            cache.ready().await;
        }
    }

    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        let api = self.api(&write.key.namespace);
        let params = PatchParams {
            dry_run: write.dry_run,
            ..PatchParams::default()
        };
        let patch = merge_patch(&write);
        let written: Hra = self
            .call(
                Some(write.key),
                true,
                api.patch(&write.key.name, &params, &Patch::Merge(&patch)),
            )
            .await?
            .into();
        if self.cache.is_some() && !write.dry_run {
            self.written
                .lock()
                .insert(written.key.clone(), written.clone());
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("msg", reason).with_code(code)))
    }

    #[test]
    fn api_errors_are_classified_like_the_memory_store_answers() {
        let key = HraKey::new("ns", "a");
        assert_eq!(
            classify(api_error(404, "NotFound"), Some(&key), true),
            StoreError::NotFound(key.clone())
        );
        assert!(matches!(
            classify(api_error(409, "Conflict"), Some(&key), true),
            StoreError::Conflict { .. }
        ));
        assert!(matches!(
            classify(api_error(403, "Forbidden"), Some(&key), false),
            StoreError::Forbidden { .. }
        ));
        assert!(matches!(
            classify(api_error(422, "Invalid"), Some(&key), true),
            StoreError::Invalid { .. }
        ));
        assert!(matches!(
            classify(
                kube::Error::Api(Box::new(
                    Status::failure("etcdserver: request is too large", "").with_code(500)
                )),
                Some(&key),
                true
            ),
            StoreError::Invalid { .. }
        ));
        for code in [500, 503, 429, 401] {
            let e = classify(api_error(code, "x"), Some(&key), true);
            assert!(matches!(e, StoreError::Transient { .. }), "{code}: {e:?}");
        }
        // The kube error stays reachable as the source.
        let e = classify(api_error(500, "InternalError"), Some(&key), true);
        let source = std::error::Error::source(&e).expect("kube error kept");
        assert!(source.to_string().contains("msg"), "{source}");
    }
}
