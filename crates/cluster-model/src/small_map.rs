//! [`SmallMap`]: a map kept as a sorted vector, for the few entries a model state holds per
//! map (ongoing reconciles: one per custom resource).
//!
//! A `BTreeMap` node reserves room for eleven entries however few it holds, and the checker
//! keeps every state of the breadth-first frontier in memory: with an entry of a few hundred
//! bytes (a reconcile's snapshot, local state and pending response) an almost empty node costs
//! kilobytes per state. A sorted vector holds exactly its entries; lookups are binary searches.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Index;

/// A map over a vector of entries sorted by key (at most one entry per key).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn position<Q: Ord + ?Sized>(&self, k: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(e, _)| e.borrow().cmp(k))
    }

    /// The value under `k`.
    pub fn get<Q: Ord + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.position(k).ok().map(|i| &self.entries[i].1)
    }

    /// The value whose key `probe` finds: `probe(key)` orders a key against the one sought
    /// (as `Ord::cmp(key, sought)` would), so a key need not be built to look it up.
    pub fn get_by(&self, probe: impl Fn(&K) -> std::cmp::Ordering) -> Option<&V> {
        self.entries
            .binary_search_by(|(e, _)| probe(e))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The value under `k`, mutably.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = self.position(k).ok()?;
        Some(&mut self.entries[i].1)
    }

    /// Whether there is a value under `k`.
    pub fn contains_key<Q: Ord + ?Sized>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.position(k).is_ok()
    }

    /// Stores `v` under `k`; returns the value it replaces.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.position(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, v)),
            Err(i) => {
                self.entries.insert(i, (k, v));
                None
            }
        }
    }

    /// Removes the value under `k`.
    pub fn remove<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.position(k).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Keeps the entries for which `f` holds.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| f(k, v));
    }
}

impl<K, V> SmallMap<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in key order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<'a, K, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = SmallMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> Index<&Q> for SmallMap<K, V> {
    type Output = V;
    fn index(&self, k: &Q) -> &V {
        self.get(k).expect("no entry for the key")
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_as_a_btree_map() {
        let ops: [(u8, Option<u32>); 9] = [
            (3, Some(30)),
            (1, Some(10)),
            (3, Some(31)),
            (2, None),
            (5, Some(50)),
            (1, None),
            (4, Some(40)),
            (2, Some(20)),
            (5, None),
        ];
        let mut small = SmallMap::new();
        let mut btree = BTreeMap::new();
        for (k, v) in ops {
            match v {
                Some(v) => assert_eq!(small.insert(k, v), btree.insert(k, v)),
                None => assert_eq!(small.remove(&k), btree.remove(&k)),
            }
            assert_eq!(
                small.iter().collect::<Vec<_>>(),
                btree.iter().collect::<Vec<_>>()
            );
            assert_eq!(small.len(), btree.len());
            for q in 0..7 {
                assert_eq!(small.get(&q), btree.get(&q));
                assert_eq!(small.get_by(|k: &u8| k.cmp(&q)), btree.get(&q));
                assert_eq!(small.contains_key(&q), btree.contains_key(&q));
            }
        }
        assert_eq!(small[&3], 31);
        *small.get_mut(&4).unwrap() += 1;
        small.retain(|k, _| *k != 2);
        assert_eq!(small.keys().copied().collect::<Vec<_>>(), [3, 4]);
        assert_eq!(small.values().copied().collect::<Vec<_>>(), [31, 41]);
        assert_eq!(format!("{small:?}"), "{3: 31, 4: 41}");
        let rebuilt: SmallMap<u8, u32> = [(4, 41), (3, 31)].into_iter().collect();
        assert_eq!(rebuilt, small);
        small.clear();
        assert!(small.is_empty());
    }
}
