//! The namespace allowlist (`--allowed-namespaces`): which HRAs the service may act on.

use std::{collections::BTreeSet, sync::Arc};

/// A namespace outside the allowlist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("namespace {0:?} is not among the allowed namespaces")]
pub struct NamespaceDenied(pub String);

/// Namespaces the service may act on; `None` means all.
#[derive(Clone, Debug, Default)]
pub struct Allowlist(pub Option<Arc<BTreeSet<String>>>);

impl Allowlist {
    /// From the `--allowed-namespaces` values (empty: all namespaces).
    pub fn new(namespaces: impl IntoIterator<Item = String>) -> Self {
        let set: BTreeSet<String> = namespaces.into_iter().filter(|n| !n.is_empty()).collect();
        Self((!set.is_empty()).then(|| Arc::new(set)))
    }

    /// True if `namespace` may be used.
    pub fn allows(&self, namespace: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(namespace))
    }

    /// An error for a namespace outside the list.
    pub fn check(&self, namespace: &str) -> Result<(), NamespaceDenied> {
        if self.allows(namespace) {
            Ok(())
        } else {
            Err(NamespaceDenied(namespace.to_owned()))
        }
    }

    /// The listed namespaces (empty when every namespace is allowed).
    pub fn namespaces(&self) -> Vec<String> {
        self.0
            .as_ref()
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_empty_means_everything() {
        assert!(Allowlist::new(Vec::<String>::new()).allows("any"));
        let list = Allowlist::new(["ci".to_owned(), "runners".to_owned()]);
        assert!(list.allows("ci") && !list.allows("prod"));
        assert_eq!(list.check("prod"), Err(NamespaceDenied("prod".into())));
        assert_eq!(list.namespaces(), ["ci", "runners"]);
    }
}
