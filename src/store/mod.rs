//! Where HRAs live: the one trait seam between the engine and a backend, its implementations
//! (memory, Kubernetes with a watch cache), the one HRA resource type and the seed loader.

use crate::domain::hra::{CapacityReservation, Hra, HraKey};
use async_trait::async_trait;
use std::sync::Arc;

mod error;
pub mod kubernetes;
pub mod membership;
pub mod memory;
pub mod objects;
pub mod remembered;
pub mod resource;
pub mod routing_cache;
pub mod routing_model;
pub mod runners;
pub mod seed;
pub mod watch_cache;

pub use error::{Cause, StoreError};
pub use memory::MemoryStore;
pub use routing_model::RoutingModel;

/// A conditional write of one HRA's capacity reservations.
#[derive(Clone, Debug)]
pub struct Write<'a> {
    /// The HRA to write.
    pub key: &'a HraKey,
    /// The resourceVersion the plan was made from; the write fails with
    /// [`StoreError::Conflict`] if the object has moved on since.
    pub resource_version: &'a str,
    /// The whole new `spec.capacityReservations` (empty: the field is removed).
    pub reservations: &'a [CapacityReservation],
    /// New value of the applied-batches annotation, this batch's id last.
    pub applied_batches: &'a str,
    /// Finished-jobs annotations to set (`Some(value)`) or remove (`None`), by name
    /// ([`resource::finished_jobs_changes`]); the others are left as they are.
    pub finished_jobs: &'a [(String, Option<String>)],
    /// New value of the job-repositories annotation (empty: removed; `None`: left as it is).
    pub job_repositories: Option<&'a str>,
    /// New value of the warm-profile annotation (`None`: left as it is).
    pub warm_profile: Option<&'a str>,
    /// Validate only, change nothing.
    pub dry_run: bool,
}

/// A backend holding HRAs. Implementations must honour resourceVersion and answer
/// conflicts and missing objects with the same [`StoreError`] variants.
#[async_trait]
pub trait HraStore: Send + Sync + 'static {
    /// Reads one HRA, possibly from a cache that may lag behind (a write planned from it
    /// then meets a conflict).
    async fn get(&self, key: &HraKey) -> Result<Hra, StoreError>;

    /// Reads one HRA from the backend itself, bypassing any cache.
    async fn get_fresh(&self, key: &HraKey) -> Result<Hra, StoreError> {
        self.get(key).await
    }

    /// Reads every HRA, or those of one namespace, ordered by namespace then name.
    async fn list(&self, namespace: Option<&str>) -> Result<Vec<Hra>, StoreError>;

    /// Writes reservations and our annotations if the resourceVersion still
    /// matches; returns the HRA as written.
    async fn write(&self, write: Write<'_>) -> Result<Hra, StoreError>;

    /// True once the store can serve: every watch cache (HRAs, and each runner kind
    /// routing reads) has its first full list.
    fn is_ready(&self) -> bool {
        true
    }

    /// Waits until [`HraStore::is_ready`].
    async fn ready(&self) {}

    /// The routing read model this store feeds, or `None` where this backend cannot route
    /// jobs. (The model is its own type: the store only tells it what changed.)
    fn routing(&self) -> Option<Arc<RoutingModel>> {
        None
    }
}
