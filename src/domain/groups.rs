//! Grouped reservations: how an HRA holds a backlog of any size.
//!
//! actions-runner-controller scales an HRA to `min(maxReplicas, minReplicas + Σ replicas)`
//! over unexpired reservations; only the sum matters to it. So the oldest jobs (at least
//! `maxReplicas`, at least [`NAMED_AT_LEAST`]) keep one reservation each, named after the
//! job, and the jobs waiting behind them share reservations of `replicas: N` whose `name`
//! holds their ids compactly ([`Members`]). A job's capacity is one unit of the sum wherever
//! it is held, and the object grows by a few bytes per waiting job, not ~120.

use super::codec::{MEMBERS_PREFIX, Members};
use std::{collections::HashMap, sync::Arc};

/// Fewest jobs that keep a reservation of their own before any is grouped (more when
/// `maxReplicas` is larger: every job ARC can give a runner is named).
pub const NAMED_AT_LEAST: usize = 100;

/// Most named jobs one grouped reservation holds: a write re-encodes only the groups it
/// changes, so this bounds the cost of a change, whatever the backlog.
pub const GROUP_SIZE: usize = 1024;

/// How a plan lays the list out: how many jobs stay named, how large a group grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Jobs named before any is grouped (raised to `maxReplicas`).
    pub named: usize,
    /// Most named jobs in one group.
    pub group_size: usize,
}

impl Shape {
    /// The layout every writer uses.
    pub const DEFAULT: Self = Self {
        named: NAMED_AT_LEAST,
        group_size: GROUP_SIZE,
    };

    /// How many entries stay named on an HRA with this `maxReplicas`.
    pub fn named_for(&self, max_replicas: Option<i32>) -> usize {
        let max = max_replicas.map_or(0, |m| usize::try_from(m.max(0)).unwrap_or(usize::MAX));
        self.named.max(max)
    }
}

/// True when a reservation name is a group's (it may still fail to decode).
pub fn is_group_name(name: &str) -> bool {
    name.starts_with(MEMBERS_PREFIX)
}

/// The decoded members of an HRA's grouped reservations, by name, as the store read them (a
/// store keeps them between reads, so an unchanged group is not decoded again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups(HashMap<Arc<str>, Arc<Members>>);

impl Groups {
    /// Adds the members decoded from `name`.
    pub fn insert(&mut self, name: Arc<str>, members: Arc<Members>) {
        self.0.insert(name, members);
    }

    /// The members a reservation named `name` groups: decoded already, or now; `None` when
    /// it is no group's name or cannot be read (it then counts as an ordinary reservation).
    pub fn members(&self, name: &str) -> Option<Arc<Members>> {
        if !is_group_name(name) {
            return None;
        }
        if let Some(members) = self.0.get(name) {
            return Some(members.clone());
        }
        Members::decode(name).ok().map(Arc::new)
    }

    /// The members decoded from `name`, if they are.
    pub fn cached(&self, name: &str) -> Option<Arc<Members>> {
        self.0.get(name).cloned()
    }

    /// How many groups are decoded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no group is decoded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
