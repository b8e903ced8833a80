//! [`Interner`]: each distinct value stored once, named by a small id.
//!
//! A profile refers to the same locations, stacks and command names from
//! many counted entries; interning makes each entry a few integers, so a
//! long run through many threads costs tens of bytes per (thread, stack)
//! rather than a copy of the stack and the name.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

/// Distinct values, ids 1, 2, … in the order they were first seen (1-based,
/// as pprof numbers locations).
#[derive(Debug)]
pub(super) struct Interner<T: ?Sized + Eq + Hash> {
    ids: HashMap<Arc<T>, u32>,
    items: Vec<Arc<T>>,
}

impl<T: ?Sized + Eq + Hash> Default for Interner<T> {
    fn default() -> Self {
        Interner { ids: HashMap::new(), items: Vec::new() }
    }
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    /// The id of a value already interned.
    pub fn get(&self, value: &T) -> Option<u32> {
        self.ids.get(value).copied()
    }

    /// The id of `value`, interning it if it is new.
    pub fn intern(&mut self, value: &T) -> u32
    where
        Arc<T>: for<'a> From<&'a T>,
    {
        if let Some(id) = self.get(value) {
            return id;
        }
        self.insert(Arc::from(value))
    }

    /// The id of a value handed over whole (no copy when it is new).
    pub fn intern_arc(&mut self, value: Arc<T>) -> u32 {
        if let Some(id) = self.get(&value) {
            return id;
        }
        self.insert(value)
    }

    fn insert(&mut self, value: Arc<T>) -> u32 {
        self.items.push(value.clone());
        let id = u32::try_from(self.items.len()).expect("fewer than 2^32 interned values");
        self.ids.insert(value, id);
        id
    }

    /// The value of an id this interner gave.
    pub fn resolve(&self, id: u32) -> &T {
        &self.items[id as usize - 1]
    }

    /// How many distinct values are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The values, in id order (value `i` has id `i + 1`).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.items.iter().map(|item| &**item)
    }
}

#[cfg(test)]
mod tests {
    use super::Interner;
    use proptest::prelude::*;
    use std::sync::Arc;

    proptest! {
        /// Equal values share an id, distinct values get distinct ids, and
        /// every id resolves to the value it was given for.
        #[test]
        fn ids_round_trip(values in proptest::collection::vec(proptest::collection::vec(0u32..4, 0..3), 0..40)) {
            let mut interner: Interner<[u32]> = Interner::default();
            let ids: Vec<u32> = values.iter().map(|v| interner.intern(v.as_slice())).collect();
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(interner.resolve(ids[i]), v.as_slice());
                for (j, w) in values.iter().enumerate() {
                    prop_assert_eq!(ids[i] == ids[j], v == w);
                }
            }
            let distinct: std::collections::HashSet<&Vec<u32>> = values.iter().collect();
            prop_assert_eq!(interner.len(), distinct.len());
            prop_assert_eq!(interner.iter().count(), distinct.len());
        }
    }

    #[test]
    fn arcs_are_kept_without_a_copy() {
        let mut interner: Interner<str> = Interner::default();
        let name: Arc<str> = Arc::from("prog");
        let id = interner.intern_arc(name.clone());
        assert_eq!(interner.intern("prog"), id);
        assert_eq!(Arc::strong_count(&name), 3, "the caller's, the map key's and the list's");
    }
}
