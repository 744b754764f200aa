//! A memory store that misbehaves on request, so tests can drive the engine through every
//! error path: queued write faults, another writer's edit right after a read, and counts of
//! reads and writes.

use async_trait::async_trait;
use batch_scaler::{
    domain::hra::{CapacityReservation, Hra, HraKey},
    store::{HraStore, MemoryStore, RoutingModel, StoreError, Write},
};
use parking_lot::Mutex;
use serde_json::Value;
use std::{
    collections::{HashMap, VecDeque},
    sync::atomic::{AtomicU64, Ordering},
};

/// A reservation-list edit made by "another writer".
pub type Edit = Box<dyn FnOnce(&mut Vec<CapacityReservation>) + Send>;

/// What the next write of an HRA does instead of succeeding normally.
#[derive(Clone, Debug)]
pub enum WriteFault {
    /// Fail with this error, changing nothing.
    Fail(StoreError),
    /// Apply the write, then answer with this error (a response lost on the way back).
    ApplyThenFail(StoreError),
}

#[derive(Default)]
struct Faults {
    writes: HashMap<HraKey, VecDeque<WriteFault>>,
    after_read: HashMap<HraKey, VecDeque<Edit>>,
    reads: HashMap<HraKey, VecDeque<StoreError>>,
}

/// Queues `items` for `key`.
fn queue<T>(
    map: &mut HashMap<HraKey, VecDeque<T>>,
    key: &HraKey,
    items: impl IntoIterator<Item = T>,
) {
    map.entry(key.clone()).or_default().extend(items);
}

/// The next item queued for `key`, if any.
fn take<T>(map: &mut HashMap<HraKey, VecDeque<T>>, key: &HraKey) -> Option<T> {
    map.get_mut(key).and_then(VecDeque::pop_front)
}

/// A [`MemoryStore`] with fault hooks.
#[derive(Default)]
pub struct FaultyStore {
    inner: MemoryStore,
    faults: Mutex<Faults>,
    reads: AtomicU64,
    writes: AtomicU64,
}

/// Applies `edit` to the reservation list inside a whole HRA object.
fn edit_reservations(object: &mut Value, edit: Edit) {
    let mut list: Vec<CapacityReservation> = object
        .pointer("/spec/capacityReservations")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    edit(&mut list);
    let spec = &mut object["spec"];
    if list.is_empty() {
        if let Some(map) = spec.as_object_mut() {
            map.remove("capacityReservations");
        }
    } else {
        spec["capacityReservations"] = serde_json::to_value(list).expect("serializable");
    }
}

impl FaultyStore {
    /// A store holding these HRA objects.
    pub fn with_objects(objects: impl IntoIterator<Item = Value>) -> Result<Self, StoreError> {
        Ok(Self {
            inner: MemoryStore::with_objects(objects)?,
            ..Self::default()
        })
    }

    /// The store underneath.
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    /// Adds or replaces a whole HRA object (as if someone applied it).
    pub fn insert(&self, object: Value) -> Result<HraKey, StoreError> {
        self.inner.insert(object)
    }

    /// The whole stored object.
    pub fn object(&self, key: &HraKey) -> Option<Value> {
        self.inner.object(key)
    }

    /// Changes an HRA's reservations as another writer would (bumping its resourceVersion).
    pub fn edit(&self, key: &HraKey, edit: Edit) -> Result<(), StoreError> {
        self.inner.modify(key, |o| edit_reservations(o, edit))
    }

    /// Makes the next write of `key` do `fault` (queued: several calls fault several writes).
    pub fn fault_next_write(&self, key: &HraKey, fault: WriteFault) {
        queue(&mut self.faults.lock().writes, key, [fault]);
    }

    /// Makes the next `times` writes of `key` fail with `error`, changing nothing.
    pub fn fail_next_writes(&self, key: &HraKey, times: usize, error: StoreError) {
        let fails = std::iter::repeat_n(WriteFault::Fail(error), times);
        queue(&mut self.faults.lock().writes, key, fails);
    }

    /// Runs `edit` as another writer right after the next read of `key` returns, so that
    /// the write planned from that read meets a conflict.
    pub fn edit_after_next_read(&self, key: &HraKey, edit: Edit) {
        queue(&mut self.faults.lock().after_read, key, [edit]);
    }

    /// Fails the next `times` reads of `key` with `error`.
    pub fn fail_next_reads(&self, key: &HraKey, times: usize, error: StoreError) {
        queue(
            &mut self.faults.lock().reads,
            key,
            std::iter::repeat_n(error, times),
        );
    }

    /// Reads served so far (get and list).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Writes attempted so far, dry runs included.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl HraStore for FaultyStore {
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let fault = take(&mut self.faults.lock().reads, key);
        if let Some(e) = fault {
            return Err(e);
        }
        let hra = self.inner.get(key).await?;
        let edit = take(&mut self.faults.lock().after_read, key);
        if let Some(edit) = edit {
            self.edit(key, edit)?;
        }
        Ok(hra)
    }

    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.list(namespace).await
    }

    fn routing(&self) -> Option<std::sync::Arc<RoutingModel>> {
        self.inner.routing()
    }

    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let fault = take(&mut self.faults.lock().writes, write.key);
        if let Some(WriteFault::Fail(e)) = fault {
            return Err(e);
        }
        let written = self.inner.write(write).await?;
        match fault {
            Some(WriteFault::ApplyThenFail(e)) => Err(e),
            _ => Ok(written),
        }
    }
}
