//! Member names shared between the `Swim` instances of one process.

use alloc::sync::Arc;
use core::fmt;
use core::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

/// A fixed set of member names that many [`Swim`](crate::Swim) instances in one process
/// share, given to [`Builder::shared_names`](crate::Builder::shared_names).
///
/// Every node keeps a record of every member, each with the member's name. A process that
/// runs many nodes (a simulator, a test harness) holds the same names once per node; with
/// the names listed here, a record of a listed name holds this set's copy instead of
/// allocating its own, and lookups compare against names that stay in cache. Names not
/// listed are allocated per record as usual. The set never changes after it is built, so
/// instances on different threads read it without locking.
///
/// ```
/// # #[cfg(feature = "simulation")] {
/// use swim_core::{Config, Instant, SharedNames, Swim};
///
/// let names = SharedNames::new((0..3).map(|i| format!("node-{i}")));
/// assert_eq!(names.len(), 3);
/// let config = Config::lan("node-0", "10.0.0.1:7946".parse().unwrap());
/// let swim = Swim::builder(config, 1)
///     .shared_names(names.clone()) // cheap: the set itself is shared
///     .build(Instant::ZERO)
///     .unwrap();
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SharedNames {
    names: Arc<HashTable<Arc<str>>>,
}

fn hash(name: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x4e41_4d45).hash_one(name)
}

#[cfg_attr(not(feature = "simulation"), allow(dead_code))]
impl SharedNames {
    /// The set of `names` (duplicates are kept once).
    pub fn new<N: Into<Arc<str>>>(names: impl IntoIterator<Item = N>) -> SharedNames {
        let mut table = HashTable::new();
        for name in names {
            let name: Arc<str> = name.into();
            let same = |n: &Arc<str>| **n == *name;
            if let Entry::Vacant(slot) = table.entry(hash(&name), same, |n| hash(n)) {
                slot.insert(name);
            }
        }
        SharedNames {
            names: Arc::new(table),
        }
    }

    /// Number of names in the set.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the set is empty (the default: every record allocates its own name).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The shared copy of `name`, or a new one when it is not in the set.
    pub(crate) fn share(&self, name: &str) -> Arc<str> {
        if self.names.is_empty() {
            return Arc::from(name);
        }
        match self.names.find(hash(name), |n| **n == *name) {
            Some(shared) => shared.clone(),
            None => Arc::from(name),
        }
    }
}

impl fmt::Debug for SharedNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedNames")
            .field("len", &self.names.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn listed_names_are_shared_and_others_allocated() {
        let names = SharedNames::new(["a", "b", "a"]);
        assert_eq!(names.len(), 2);
        assert!(Arc::ptr_eq(&names.share("a"), &names.share("a")));
        assert_eq!(&*names.share("c"), "c");
        assert!(!Arc::ptr_eq(&names.share("c"), &names.share("c")));
        let empty = SharedNames::default();
        assert!(empty.is_empty());
        assert_eq!(&*empty.share("a"), "a");
        assert_eq!(format!("{names:?}"), "SharedNames { len: 2 }");
    }
}
