//! In-process HRA store: whole objects kept as JSON ([`Objects`]) and written with the same
//! merge patch and resourceVersion precondition as the Kubernetes store sends. It also holds
//! RunnerDeployments and RunnerSets and feeds the routing model as they change (our own
//! reservation writes cannot change routing, so they are not fed).

use super::routing_model::RoutingModel;
use super::{
    HraStore, StoreError, Write,
    objects::{ObjectError, ObjectKey, Objects, SchemaViolation},
    resource::{HorizontalRunnerAutoscaler, hra_schema, merge_patch, parse_hra},
    runners::{RUNNER_DEPLOYMENT, RUNNER_SET, routable_hra, runner_target},
};
use crate::domain::{
    hra::{Hra, HraKey},
    routing::TargetKind,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;
use std::sync::Arc;

/// HRAs (and their RunnerDeployments and RunnerSets) held in memory.
pub struct MemoryStore {
    objects: Mutex<Objects>,
    deployments: Mutex<Objects>,
    sets: Mutex<Objects>,
    /// What routing sees of all of them (ready at once: nothing to list).
    routing: Arc<RoutingModel>,
}

fn runner_schema(object: &Value) -> Result<(), SchemaViolation> {
    let kind = match object["kind"].as_str() {
        Some(RUNNER_SET) => TargetKind::RunnerSet,
        _ => TargetKind::RunnerDeployment,
    };
    runner_target(kind, object)
        .map(drop)
        .map_err(|e| SchemaViolation(e.to_string()))
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            objects: Mutex::new(Objects::new(hra_schema)),
            deployments: Mutex::new(Objects::new(runner_schema)),
            sets: Mutex::new(Objects::new(runner_schema)),
            routing: Arc::new(RoutingModel::new(0)),
        }
    }
}

fn object_key(key: &HraKey) -> ObjectKey {
    (key.namespace.clone(), key.name.clone())
}

fn parse(object: &Value) -> Result<Hra, StoreError> {
    parse_hra(object).map_err(|e| StoreError::invalid(e.to_string()).caused_by(e))
}

/// Parses an object whose size is known (measured once when it was stored).
fn parse_sized((object, bytes): (&Value, usize)) -> Result<Hra, StoreError> {
    HorizontalRunnerAutoscaler::from_value_sized(object, bytes)
        .map(Hra::from)
        .map_err(|e| StoreError::invalid(e.to_string()).caused_by(e))
}

fn store_error(e: ObjectError, key: &HraKey) -> StoreError {
    match e {
        ObjectError::NotFound => StoreError::NotFound(key.clone()),
        ObjectError::Conflict { .. } => StoreError::conflict(e.to_string()).caused_by(e),
        ObjectError::AlreadyExists
        | ObjectError::Invalid(_)
        | ObjectError::Malformed(_)
        | ObjectError::TooLarge { .. } => StoreError::invalid(e.to_string()).caused_by(e),
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding these objects: HRAs, RunnerDeployments and RunnerSets by their
    /// `kind` (none means HRA; a missing namespace means `default`).
    pub fn with_objects(objects: impl IntoIterator<Item = Value>) -> Result<Self, StoreError> {
        let store = Self::new();
        for object in objects {
            match object["kind"].as_str() {
                Some(RUNNER_DEPLOYMENT | RUNNER_SET) => store.put_runner_unindexed(object)?,
                _ => drop(store.insert_unindexed(object)?),
            }
        }
        // Indexed once, not once per object: a seed of 20,000 HRAs loads in linear time.
        store.routing.rebuild();
        Ok(store)
    }

    /// Adds or replaces a whole HRA object, giving it a new resourceVersion.
    pub fn insert(&self, object: Value) -> Result<HraKey, StoreError> {
        let key = self.insert_unindexed(object)?;
        self.routing.rebuild();
        Ok(key)
    }

    /// [`Self::insert`], telling the routing model without rebuilding its index.
    fn insert_unindexed(&self, object: Value) -> Result<HraKey, StoreError> {
        let stored = self
            .objects
            .lock()
            .put(object)
            .map_err(|e| StoreError::invalid(e.to_string()).caused_by(e))?;
        if let Ok(hra) = HorizontalRunnerAutoscaler::from_value(&stored) {
            self.routing.hra_applied(routable_hra(&hra));
        }
        Ok(parse(&stored)?.key)
    }

    /// Adds or replaces a RunnerDeployment or RunnerSet (by its `kind`).
    pub fn put_runner(&self, object: Value) -> Result<(), StoreError> {
        self.put_runner_unindexed(object)?;
        self.routing.rebuild();
        Ok(())
    }

    /// [`Self::put_runner`], telling the routing model without rebuilding its index.
    fn put_runner_unindexed(&self, object: Value) -> Result<(), StoreError> {
        let (objects, kind) = match object["kind"].as_str() {
            Some(RUNNER_SET) => (&self.sets, TargetKind::RunnerSet),
            _ => (&self.deployments, TargetKind::RunnerDeployment),
        };
        let stored = objects
            .lock()
            .put(object)
            .map_err(|e| StoreError::invalid(e.to_string()).caused_by(e))?;
        if let Ok(target) = runner_target(kind, &stored) {
            self.routing.runner_applied(kind, target);
        }
        Ok(())
    }

    /// Removes a RunnerDeployment or RunnerSet.
    pub fn remove_runner(&self, kind: TargetKind, namespace: &str, name: &str) -> bool {
        let objects = match kind {
            TargetKind::RunnerSet => &self.sets,
            TargetKind::RunnerDeployment => &self.deployments,
        };
        let removed = objects
            .lock()
            .remove(&(namespace.to_owned(), name.to_owned()))
            .is_some();
        self.routing.runner_deleted(kind, namespace, name);
        self.routing.rebuild();
        removed
    }

    /// Removes an HRA (as if someone deleted it).
    pub fn remove(&self, key: &HraKey) -> bool {
        let removed = self.objects.lock().remove(&object_key(key)).is_some();
        self.routing.hra_deleted(key);
        self.routing.rebuild();
        removed
    }

    /// The routing model this store feeds.
    pub fn routing_model(&self) -> Arc<RoutingModel> {
        self.routing.clone()
    }

    /// The whole stored object, for checks that fields we don't own are untouched.
    pub fn object(&self, key: &HraKey) -> Option<Value> {
        self.objects.lock().get(&object_key(key)).cloned()
    }

    /// Changes a stored object as another writer would (bumping its resourceVersion).
    pub fn modify(&self, key: &HraKey, edit: impl FnOnce(&mut Value)) -> Result<(), StoreError> {
        let modified = self
            .objects
            .lock()
            .modify(&object_key(key), edit)
            .map_err(|e| store_error(e, key))?;
        if let Ok(hra) = HorizontalRunnerAutoscaler::from_value(&modified) {
            self.routing.hra_applied(routable_hra(&hra));
            self.routing.rebuild();
        }
        Ok(())
    }
}

#[async_trait]
impl HraStore for MemoryStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        let objects = self.objects.lock();
        let object = objects
            .get_sized(&object_key(key))
            .ok_or_else(|| StoreError::NotFound(key.clone()))?;
        parse_sized(object)
    }

    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        self.objects
            .lock()
            .list_sized(namespace)
            .map(parse_sized)
            .collect()
    }

    fn routing(&self) -> Option<Arc<RoutingModel>> {
        Some(self.routing.clone())
    }

    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        let patched = self
            .objects
            .lock()
            .patch(
                &object_key(write.key),
                &merge_patch(&write).to_value(),
                write.dry_run,
            )
            .map_err(|e| store_error(e, write.key))?;
        parse_sized((&patched.object, patched.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hra::CapacityReservation;
    use serde_json::json;

    #[test]
    fn a_seed_of_thousands_is_indexed_for_routing_once() {
        let hras = (0..2000).map(|i| {
            json!({"kind": "HorizontalRunnerAutoscaler",
                "metadata": {"name": format!("h{i}"), "namespace": format!("ns{}", i % 50)},
                "spec": {"scaleTargetRef": {"name": format!("h{i}")}}})
        });
        let empty = MemoryStore::with_objects([]).unwrap().routing.rebuilds();
        let store = MemoryStore::with_objects(hras).unwrap();
        let routing = store.routing.clone();
        assert_eq!(
            routing.rebuilds(),
            empty + 1,
            "one index for the whole seed"
        );
        assert_eq!(routing.index().unwrap().len(), 2000);
        // A change after the seed is indexed at once.
        store
            .insert(
                json!({"metadata": {"name": "late"}, "spec": {"scaleTargetRef": {"name": "x"}}}),
            )
            .unwrap();
        let after = (routing.rebuilds(), routing.index().unwrap().len());
        assert_eq!(after, (empty + 2, 2001));
    }

    fn store() -> (MemoryStore, HraKey) {
        let s = MemoryStore::with_objects([json!({
            "apiVersion": "actions.summerwind.dev/v1alpha1",
            "kind": "HorizontalRunnerAutoscaler",
            "metadata": {"name": "a", "labels": {"team": "x"}, "annotations": {"other": "keep"}},
            "spec": {"minReplicas": 1, "scaleTargetRef": {"name": "rd"}, "scaleUpTriggers": [{"duration": "30m"}]},
            "status": {"desiredReplicas": 2}
        })])
        .unwrap();
        (s, HraKey::new("default", "a"))
    }

    fn reservation() -> CapacityReservation {
        let t = chrono::Utc::now();
        CapacityReservation {
            name: String::new(),
            effective_time: t,
            expiration_time: t + chrono::TimeDelta::minutes(5),
            replicas: 1,
        }
    }

    fn write<'a>(key: &'a HraKey, rv: &'a str, list: &'a [CapacityReservation]) -> Write<'a> {
        Write {
            key,
            resource_version: rv,
            reservations: list,
            applied_batches: "b1",
            finished_jobs: &[],
            job_repositories: Default::default(),
            warm_profile: None,
            dry_run: false,
        }
    }

    fn add_reservation(object: &mut Value) {
        object["spec"]["capacityReservations"] = json!([reservation()]);
    }

    #[tokio::test]
    async fn write_bumps_version_and_keeps_other_fields() {
        let (s, key) = store();
        let before = s.object(&key).unwrap();
        let hra = s.get(&key).await.unwrap();
        let list = [reservation()];
        let written = s
            .write(write(&key, &hra.resource_version, &list))
            .await
            .unwrap();
        assert_ne!(written.resource_version, hra.resource_version);
        assert!(written.applied_batches.contains("b1"));
        let after = s.object(&key).unwrap();
        for field in ["minReplicas", "scaleTargetRef", "scaleUpTriggers"] {
            assert_eq!(after["spec"][field], before["spec"][field], "{field}");
        }
        assert_eq!(after["status"], before["status"]);
        assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
        assert_eq!(after["metadata"]["annotations"]["other"], "keep");
        assert_eq!(
            after["spec"]["capacityReservations"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // An empty list removes the field.
        s.write(write(&key, &written.resource_version, &[]))
            .await
            .unwrap();
        assert!(
            s.object(&key).unwrap()["spec"]
                .get("capacityReservations")
                .is_none()
        );
    }

    #[tokio::test]
    async fn stale_version_conflicts_and_missing_is_not_found() {
        let (s, key) = store();
        let hra = s.get(&key).await.unwrap();
        s.modify(&key, add_reservation).unwrap();
        let err = s
            .write(write(&key, &hra.resource_version, &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        let missing = HraKey::new("default", "nope");
        assert_eq!(
            s.get(&missing).await,
            Err(StoreError::NotFound(missing.clone()))
        );
        let err = s.write(write(&missing, "1", &[])).await.unwrap_err();
        assert_eq!(err, StoreError::NotFound(missing));
    }

    #[tokio::test]
    async fn dry_run_changes_nothing() {
        let (s, key) = store();
        let before = s.object(&key).unwrap();
        let hra = s.get(&key).await.unwrap();
        let list = [reservation()];
        let w = Write {
            dry_run: true,
            ..write(&key, &hra.resource_version, &list)
        };
        let would = s.write(w).await.unwrap();
        assert_eq!(would.capacity_reservations.len(), 1);
        assert_eq!(s.object(&key).unwrap(), before);
    }

    #[test]
    fn objects_that_do_not_parse_are_refused() {
        let bad = json!({"metadata": {"name": "a"}, "spec": {"capacityReservations": [
            {"effectiveTime": "yesterday"}]}});
        let err = MemoryStore::with_objects([bad]).err().unwrap();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("yesterday"), "{err}");
    }
}
