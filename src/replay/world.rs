//! The world a trace is replayed in: the HRAs and runner targets of a seed file, read by the
//! store's own parsers, and the routing index built from them as the service builds it.

use crate::{
    domain::{
        hra::{Hra, HraKey},
        routing::{RoutingIndex, TargetKind},
    },
    store::{
        resource::{HorizontalRunnerAutoscaler, parse_hra},
        runners::{RUNNER_DEPLOYMENT, RUNNER_SET, routable_hra, runner_target},
        seed,
    },
};
use serde_json::Value;
use std::path::Path;

/// HRAs (ordered by namespace and name) and how jobs find them.
pub struct World {
    /// Every HRA of the seed, in key order.
    pub hras: Vec<Hra>,
    /// Routing over them.
    pub index: RoutingIndex,
}

impl World {
    /// Reads the world from a seed file (the memory backend's `--seed` format).
    pub fn read(path: &Path) -> Result<Self, String> {
        let objects = seed::read_file(path).map_err(|e| e.to_string())?;
        Self::from_objects(&objects).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The world of seed objects.
    pub fn from_objects(objects: &[Value]) -> Result<Self, String> {
        let mut hras = Vec::new();
        let mut routable = Vec::new();
        let mut targets = Vec::new();
        for object in objects {
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            match kind {
                RUNNER_DEPLOYMENT | RUNNER_SET => {
                    let kind = TargetKind::parse(kind).unwrap_or(TargetKind::RunnerDeployment);
                    let target =
                        runner_target(kind, object).map_err(|e| format!("{kind:?} {name}: {e}"))?;
                    targets.push((kind, target));
                }
                _ => {
                    let resource = HorizontalRunnerAutoscaler::from_value(object)
                        .map_err(|e| format!("HRA {name}: {e}"))?;
                    routable.push(routable_hra(&resource));
                    hras.push(parse_hra(object).map_err(|e| format!("HRA {name}: {e}"))?);
                }
            }
        }
        if hras.is_empty() {
            return Err("no HorizontalRunnerAutoscaler in the seed".into());
        }
        hras.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            hras,
            index: RoutingIndex::build(routable, targets),
        })
    }

    /// Where `key` is in [`World::hras`].
    pub fn position(&self, key: &HraKey) -> Option<usize> {
        self.hras.binary_search_by(|h| h.key.cmp(key)).ok()
    }
}
