//! HRA annotations holding many finished jobs, as the service would have written them.

use batch_scaler::{
    domain::tombstones::{FinishedJobs, TombstoneLimits, next},
    store::resource::finished_jobs_changes,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Finished-jobs annotations holding `n` GitHub-like job ids (11 digits, 1 to 800 apart, as
/// one HRA's jobs among everyone else's) that finished evenly over the hour before `now`,
/// written a second at a time as the service writes them.
pub fn finished_over_the_last_hour(
    n: usize,
    limits: TombstoneLimits,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let mut finished = FinishedJobs::default();
    let mut annotations = Map::new();
    let per_second = n.div_ceil(3600).max(1);
    let steps = (n / per_second).max(1) as i64;
    let mut id = 31_000_000_000u64;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut left = n;
    let mut step = 0;
    while left > 0 {
        let batch: Vec<Arc<str>> = (0..per_second.min(left))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                id += 1 + state % 800;
                Arc::from(id.to_string())
            })
            .collect();
        left -= batch.len();
        let at = now - TimeDelta::seconds(3600) + TimeDelta::seconds(step * 3600 / steps);
        let write = next(&finished, &batch, at, limits);
        finished = write.after.clone();
        for (name, value) in finished_jobs_changes(write) {
            match value {
                Some(v) => annotations.insert(name, Value::String(v)),
                None => annotations.remove(&name),
            };
        }
        step += 1;
    }
    annotations
}
