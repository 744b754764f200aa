//! In-process HRA store: whole objects kept as JSON, a global resourceVersion counter like
//! the API server's, and fault hooks so tests can drive the applier through every error path.

use super::{HraStore, Write};
use crate::{
    error::StoreError,
    model::{APPLIED_BATCHES_ANNOTATION, CapacityReservation, Hra, HraKey},
};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// A reservation-list edit made by "another writer" between our read and our write.
pub type Edit = Box<dyn FnOnce(&mut Vec<CapacityReservation>) + Send>;

/// What the next write of an HRA does instead of succeeding normally.
#[derive(Clone, Debug)]
pub enum WriteFault {
    /// Fail with this error, changing nothing.
    Fail(StoreError),
    /// Apply the write, then answer with this error (a response lost on the way back).
    ApplyThenFail(StoreError),
}

/// HRAs held in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    gets: AtomicU64,
    writes: AtomicU64,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<HraKey, Value>,
    revision: u64,
}

#[derive(Default)]
struct Faults {
    writes: HashMap<HraKey, VecDeque<WriteFault>>,
    after_read: HashMap<HraKey, VecDeque<Edit>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding these HRA objects (a missing namespace means `default`).
    pub fn with_objects(objects: impl IntoIterator<Item = Value>) -> Result<Self, StoreError> {
        let store = Self::new();
        for object in objects {
            store.insert(object)?;
        }
        Ok(store)
    }

    /// Adds or replaces a whole HRA object, giving it a new resourceVersion.
    pub fn insert(&self, mut object: Value) -> Result<HraKey, StoreError> {
        let meta = object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| StoreError::Invalid("metadata must be an object".into()))?;
        if !meta.get("namespace").is_some_and(Value::is_string) {
            meta.insert("namespace".into(), "default".into());
        }
        let hra = Hra::from_object(&object).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut state = self.state.lock().expect("store lock");
        state.revision += 1;
        set_resource_version(&mut object, state.revision);
        state.objects.insert(hra.key.clone(), object);
        Ok(hra.key)
    }

    /// Removes an HRA (as if someone deleted it).
    pub fn remove(&self, key: &HraKey) -> bool {
        self.state
            .lock()
            .expect("store lock")
            .objects
            .remove(key)
            .is_some()
    }

    /// The whole stored object, for checks that fields we don't own are untouched.
    pub fn object(&self, key: &HraKey) -> Option<Value> {
        self.state
            .lock()
            .expect("store lock")
            .objects
            .get(key)
            .cloned()
    }

    /// Changes an HRA's reservations as another writer would (bumping its resourceVersion).
    pub fn edit(&self, key: &HraKey, edit: Edit) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("store lock");
        edit_locked(&mut state, key, edit)
    }

    /// Makes the next write of `key` do `fault` (queued: several calls fault several writes).
    pub fn fault_next_write(&self, key: &HraKey, fault: WriteFault) {
        let mut faults = self.faults.lock().expect("faults lock");
        faults
            .writes
            .entry(key.clone())
            .or_default()
            .push_back(fault);
    }

    /// Makes the next `times` writes of `key` fail with `error`, changing nothing.
    pub fn fail_next_writes(&self, key: &HraKey, times: usize, error: StoreError) {
        let mut faults = self.faults.lock().expect("faults lock");
        let queue = faults.writes.entry(key.clone()).or_default();
        queue.extend(std::iter::repeat_n(WriteFault::Fail(error), times));
    }

    /// Runs `edit` as another writer right after the next read of `key` returns, so that
    /// the write planned from that read meets a conflict.
    pub fn edit_after_next_read(&self, key: &HraKey, edit: Edit) {
        let mut faults = self.faults.lock().expect("faults lock");
        faults
            .after_read
            .entry(key.clone())
            .or_default()
            .push_back(edit);
    }

    /// Reads served so far (get and list).
    pub fn reads(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }

    /// Writes attempted so far, dry runs included.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn take_write_fault(&self, key: &HraKey) -> Option<WriteFault> {
        let mut faults = self.faults.lock().expect("faults lock");
        faults.writes.get_mut(key).and_then(VecDeque::pop_front)
    }

    fn take_read_edit(&self, key: &HraKey) -> Option<Edit> {
        let mut faults = self.faults.lock().expect("faults lock");
        faults.after_read.get_mut(key).and_then(VecDeque::pop_front)
    }
}

fn parse(object: &Value) -> Result<Hra, StoreError> {
    Hra::from_object(object).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn set_resource_version(object: &mut Value, revision: u64) {
    object["metadata"]["resourceVersion"] = Value::String(revision.to_string());
}

fn spec_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("spec").is_some_and(Value::is_object) {
        object["spec"] = Value::Object(Map::new());
    }
    object["spec"].as_object_mut().expect("spec is an object")
}

fn set_reservations(object: &mut Value, list: &[CapacityReservation]) {
    let spec = spec_mut(object);
    if list.is_empty() {
        spec.remove("capacityReservations");
    } else {
        let value = serde_json::to_value(list).expect("reservations serialize");
        spec.insert("capacityReservations".into(), value);
    }
}

fn edit_locked(state: &mut State, key: &HraKey, edit: Edit) -> Result<(), StoreError> {
    let revision = state.revision + 1;
    let object = state
        .objects
        .get_mut(key)
        .ok_or_else(|| StoreError::NotFound(key.clone()))?;
    let mut list = parse(object)?.capacity_reservations;
    edit(&mut list);
    set_reservations(object, &list);
    set_resource_version(object, revision);
    state.revision = revision;
    Ok(())
}

fn write_locked(state: &mut State, w: &Write<'_>) -> Result<Hra, StoreError> {
    let revision = state.revision + 1;
    let stored = state
        .objects
        .get(w.key)
        .ok_or_else(|| StoreError::NotFound(w.key.clone()))?;
    let current = parse(stored)?;
    if current.resource_version != w.resource_version {
        return Err(StoreError::Conflict(format!(
            "the object has been modified: resourceVersion is {}, the write was planned from {}",
            current.resource_version, w.resource_version
        )));
    }
    let mut object = stored.clone();
    set_reservations(&mut object, w.reservations);
    let meta = object["metadata"]
        .as_object_mut()
        .expect("metadata checked on insert");
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations[APPLIED_BATCHES_ANNOTATION] = Value::String(w.applied_batches.to_owned());
    if w.dry_run {
        return parse(&object);
    }
    set_resource_version(&mut object, revision);
    state.revision = revision;
    let hra = parse(&object)?;
    state.objects.insert(w.key.clone(), object);
    Ok(hra)
}

#[async_trait]
impl HraStore for MemoryStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().expect("store lock");
        let object = state
            .objects
            .get(key)
            .ok_or_else(|| StoreError::NotFound(key.clone()))?;
        let hra = parse(object)?;
        if let Some(edit) = self.take_read_edit(key) {
            edit_locked(&mut state, key, edit)?;
        }
        Ok(hra)
    }

    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let state = self.state.lock().expect("store lock");
        state
            .objects
            .iter()
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, object)| parse(object))
            .collect()
    }

    async fn write(&self, w: Write<'_>) -> Result<Hra, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let fault = self.take_write_fault(w.key);
        if let Some(WriteFault::Fail(e)) = fault {
            return Err(e);
        }
        let written = write_locked(&mut self.state.lock().expect("store lock"), &w)?;
        match fault {
            Some(WriteFault::ApplyThenFail(e)) => Err(e),
            _ => Ok(written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            dry_run: false,
        }
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
        assert_eq!(written.applied_batches, vec!["b1"]);
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
        s.edit(&key, Box::new(|l| l.push(reservation()))).unwrap();
        let err = s
            .write(write(&key, &hra.resource_version, &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
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

    #[tokio::test]
    async fn faults_fire_once_each() {
        let (s, key) = store();
        s.fault_next_write(&key, WriteFault::Fail(StoreError::Transient("boom".into())));
        s.fault_next_write(
            &key,
            WriteFault::ApplyThenFail(StoreError::Unknown("lost".into())),
        );
        let hra = s.get(&key).await.unwrap();
        let list = [reservation()];
        let w = || write(&key, &hra.resource_version, &list);
        assert!(matches!(s.write(w()).await, Err(StoreError::Transient(_))));
        assert!(matches!(s.write(w()).await, Err(StoreError::Unknown(_))));
        // The second one landed: the stored object moved on and carries the batch id.
        let now = s.get(&key).await.unwrap();
        assert_eq!(now.capacity_reservations.len(), 1);
        assert_eq!(now.applied_batches, vec!["b1"]);
        assert!(matches!(s.write(w()).await, Err(StoreError::Conflict(_))));
        assert_eq!(s.writes(), 3);
    }

    #[tokio::test]
    async fn edit_after_read_makes_the_planned_write_conflict() {
        let (s, key) = store();
        s.edit_after_next_read(&key, Box::new(|l| l.push(reservation())));
        let hra = s.get(&key).await.unwrap();
        assert!(hra.capacity_reservations.is_empty());
        let err = s
            .write(write(&key, &hra.resource_version, &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
        assert_eq!(s.get(&key).await.unwrap().capacity_reservations.len(), 1);
    }
}
