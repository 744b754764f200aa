//! HRAs in a Kubernetes cluster through kube-rs: GET to read, JSON merge PATCH carrying the
//! planned-from resourceVersion to write, every call under a per-request timeout.

use super::watch_cache::WatchCache;
use super::{HraStore, Write};
use crate::{
    error::StoreError,
    model::{
        APPLIED_BATCHES_ANNOTATION, CapacityReservation, GROUP, Hra, HraKey, KIND, PLURAL, VERSION,
    },
};
use async_trait::async_trait;
use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::{
    Api, Client, Resource,
    api::{ListParams, Patch, PatchParams},
};
use serde::Deserialize;
use serde_json::json;
use std::{borrow::Cow, future::Future, sync::Arc, time::Duration};

/// A HorizontalRunnerAutoscaler with only the fields we use; everything else in the object
/// is ignored on read and never sent back.
#[derive(Clone, Debug, Deserialize)]
pub struct HorizontalRunnerAutoscaler {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The part of the spec we read.
    #[serde(default)]
    pub spec: HraSpec,
}

/// The spec fields the scaler reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HraSpec {
    /// `spec.minReplicas`.
    #[serde(default)]
    pub min_replicas: Option<i32>,
    /// `spec.maxReplicas`.
    #[serde(default)]
    pub max_replicas: Option<i32>,
    /// `spec.capacityReservations`.
    #[serde(default)]
    pub capacity_reservations: Option<Vec<CapacityReservation>>,
}

impl Resource for HorizontalRunnerAutoscaler {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl From<HorizontalRunnerAutoscaler> for Hra {
    fn from(o: HorizontalRunnerAutoscaler) -> Self {
        let ObjectMeta {
            name,
            namespace,
            resource_version,
            annotations,
            ..
        } = o.metadata;
        let applied_batches = annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_BATCHES_ANNOTATION))
            .map(|v| crate::model::parse_batch_ids(v))
            .unwrap_or_default();
        Hra {
            key: HraKey::new(namespace.unwrap_or_default(), name.unwrap_or_default()),
            resource_version: resource_version.unwrap_or_default(),
            min_replicas: o.spec.min_replicas,
            max_replicas: o.spec.max_replicas,
            capacity_reservations: o.spec.capacity_reservations.unwrap_or_default(),
            applied_batches,
        }
    }
}

/// The merge patch of one write: the resourceVersion precondition, the whole reservation list
/// (null removes it) and the applied-batches annotation. Nothing else of the object.
pub fn merge_patch(write: &Write<'_>) -> serde_json::Value {
    let reservations = if write.reservations.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(write.reservations).expect("reservations serialize")
    };
    json!({
        "metadata": {
            "resourceVersion": write.resource_version,
            "annotations": {APPLIED_BATCHES_ANNOTATION: write.applied_batches},
        },
        "spec": {"capacityReservations": reservations},
    })
}

/// HRAs in a cluster.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    request_timeout: Duration,
    cache: Option<Arc<WatchCache>>,
}

const LIST_PAGE: u32 = 500;

impl KubeStore {
    /// A store using `client`; no call may take longer than `request_timeout`.
    pub fn new(client: Client, request_timeout: Duration) -> Self {
        Self {
            client,
            request_timeout,
            cache: None,
        }
    }

    /// Plans from a watch cache of the HRAs of `namespaces` (all when empty).
    pub fn with_watch_cache(mut self, namespaces: &[String]) -> Self {
        self.cache = Some(Arc::new(WatchCache::start(&self.client, namespaces)));
        self
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
            Err(_) => {
                let why = format!("no answer within {:?}", self.request_timeout);
                Err(if writing {
                    StoreError::Unknown(why)
                } else {
                    StoreError::Transient(why)
                })
            }
        }
    }
}

/// Maps a kube error to how the applier should treat it. Failures without an API status
/// during a write may have happened after the request was sent, so its outcome is unknown.
pub fn classify(e: kube::Error, key: Option<&HraKey>, writing: bool) -> StoreError {
    match e {
        kube::Error::Api(status) => {
            let message = format!("{} {}: {}", status.code, status.reason, status.message);
            match (status.code, key) {
                (404, Some(key)) => StoreError::NotFound(key.clone()),
                (409, _) => StoreError::Conflict(message),
                (403, _) => StoreError::Forbidden(message),
                (400 | 422, _) => StoreError::Invalid(message),
                _ => StoreError::Transient(message),
            }
        }
        other if writing => StoreError::Unknown(other.to_string()),
        other => StoreError::Transient(other.to_string()),
    }
}

#[async_trait]
impl HraStore for KubeStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        match self.cache.as_ref().and_then(|c| c.get(key)) {
            Some(hra) => Ok(hra),
            None => self.get_fresh(key).await,
        }
    }

    async fn get_fresh(&self, key: &HraKey) -> Result<Hra, StoreError> {
        let api = self.api(&key.namespace);
        let object = self.call(Some(key), false, api.get(&key.name)).await?;
        Ok(object.into())
    }

    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
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

    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        let api = self.api(&write.key.namespace);
        let params = PatchParams {
            dry_run: write.dry_run,
            ..PatchParams::default()
        };
        let patch = merge_patch(&write);
        let written = self
            .call(
                Some(write.key),
                true,
                api.patch(&write.key.name, &params, &Patch::Merge(&patch)),
            )
            .await?;
        Ok(written.into())
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
            StoreError::Conflict(_)
        ));
        assert!(matches!(
            classify(api_error(403, "Forbidden"), Some(&key), false),
            StoreError::Forbidden(_)
        ));
        assert!(matches!(
            classify(api_error(422, "Invalid"), Some(&key), true),
            StoreError::Invalid(_)
        ));
        for code in [500, 503, 429, 401] {
            let e = classify(api_error(code, "x"), Some(&key), true);
            assert!(matches!(e, StoreError::Transient(_)), "{code}: {e:?}");
        }
    }

    #[test]
    fn the_patch_carries_only_version_reservations_and_batch_ids() {
        let key = HraKey::new("ns", "a");
        let t = chrono::DateTime::parse_from_rfc3339("2026-05-29T17:04:57.9Z")
            .unwrap()
            .to_utc();
        let list = [CapacityReservation {
            name: "42".into(),
            effective_time: t,
            expiration_time: t + chrono::TimeDelta::minutes(30),
            replicas: 1,
        }];
        let w = Write {
            key: &key,
            resource_version: "7",
            reservations: &list,
            applied_batches: "b1,b2",
            dry_run: false,
        };
        assert_eq!(
            merge_patch(&w),
            json!({
                "metadata": {"resourceVersion": "7", "annotations": {APPLIED_BATCHES_ANNOTATION: "b1,b2"}},
                "spec": {"capacityReservations": [{"name": "42", "effectiveTime": "2026-05-29T17:04:57Z",
                    "expirationTime": "2026-05-29T17:34:57Z", "replicas": 1}]}
            })
        );
        let empty = Write {
            reservations: &[],
            ..w
        };
        assert_eq!(
            merge_patch(&empty)["spec"]["capacityReservations"],
            serde_json::Value::Null
        );
    }
}
