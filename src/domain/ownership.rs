//! Which replica owns an HRA: rendezvous (highest random weight) hashing over the live
//! members, so every replica that sees the same members picks the same owner, and a member
//! joining or leaving moves only its own share of the HRAs. The hash is our own (FNV-1a with
//! a 64-bit finalizer), stable across processes, versions and platforms.

use super::hra::HraKey;

/// A live replica: its identity (the pod name) and where its gRPC port answers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    /// Unique and stable for the replica's life (`POD_NAME`).
    pub id: String,
    /// `host:port` of its gRPC listener.
    pub address: String,
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>, mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The weight of `member` for `key` (splitmix64's finalizer over FNV-1a, for an even spread).
fn weight(member: &str, key: &HraKey) -> u64 {
    let mut h = fnv1a(member.bytes(), 0xcbf2_9ce4_8422_2325);
    h = fnv1a([0u8], h);
    h = fnv1a(key.namespace.bytes(), h);
    h = fnv1a([b'/'], h);
    h = fnv1a(key.name.bytes(), h);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The owner of `key` among `members` (ties broken by id); `None` without members.
pub fn owner<'a>(key: &HraKey, members: &'a [Member]) -> Option<&'a Member> {
    members
        .iter()
        .max_by(|a, b| (weight(&a.id, key), &a.id).cmp(&(weight(&b.id, key), &b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn members(ids: &[&str]) -> Vec<Member> {
        ids.iter()
            .map(|id| Member {
                id: id.to_string(),
                address: format!("{id}:50051"),
            })
            .collect()
    }

    fn keys(n: usize) -> Vec<HraKey> {
        (0..n)
            .map(|i| HraKey::new(format!("ns{}", i % 7), format!("hra-{i}")))
            .collect()
    }

    fn owners(members: &[Member], keys: &[HraKey]) -> Vec<String> {
        keys.iter()
            .map(|k| owner(k, members).unwrap().id.clone())
            .collect()
    }

    #[test]
    fn every_replica_agrees_whatever_the_order_it_lists_members_in() {
        let a = members(&["pod-a", "pod-b", "pod-c"]);
        let mut b = a.clone();
        b.reverse();
        let keys = keys(500);
        assert_eq!(owners(&a, &keys), owners(&b, &keys));
        assert_eq!(owner(&keys[0], &[]), None);
    }

    #[test]
    fn hras_spread_evenly_and_a_leaving_member_moves_only_its_share() {
        let three = members(&[
            "batch-scaler-7d9f-abcde",
            "batch-scaler-7d9f-fghij",
            "batch-scaler-7d9f-klmno",
        ]);
        let keys = keys(3000);
        let before = owners(&three, &keys);
        let mut count: HashMap<&str, usize> = HashMap::new();
        for o in &before {
            *count.entry(o).or_default() += 1;
        }
        for (id, n) in &count {
            assert!((800..1200).contains(n), "{id} owns {n} of 3000");
        }
        let two = &three[..2];
        let after = owners(two, &keys);
        for (b, a) in before.iter().zip(&after) {
            if b != &three[2].id {
                assert_eq!(a, b, "an HRA moved although its owner stayed");
            }
        }
        // A member joining takes about a quarter, all from the others.
        let four = members(&[
            "batch-scaler-7d9f-abcde",
            "batch-scaler-7d9f-fghij",
            "batch-scaler-7d9f-klmno",
            "batch-scaler-7d9f-pqrst",
        ]);
        let joined = owners(&four, &keys);
        let moved = before.iter().zip(&joined).filter(|(b, j)| b != j).count();
        assert!((600..900).contains(&moved), "{moved} of 3000 moved");
        assert!(
            before
                .iter()
                .zip(&joined)
                .all(|(b, j)| b == j || j == "batch-scaler-7d9f-pqrst")
        );
    }
}
