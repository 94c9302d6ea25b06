//! [`ObjectStore`]: the API server's objects by key, shared between states, with a hash that
//! is maintained incrementally.

use crate::small_map::SmallMap;
use anvil_objects::{DynamicObject, ObjectRef, StableHasher};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Stored objects, keyed by (kind, namespace, name), in a sorted vector ([`SmallMap`]: a
/// state holds a few dozen objects at most). Cloning shares the map (copy on write:
/// most steps do not change the cluster). Its `Hash` writes a sum of per-entry hashes kept up
/// to date by [`ObjectStore::insert`] and [`ObjectStore::remove`], so hashing a state (the
/// checker's fingerprint, the model's memo keys) does not walk the objects. Read access is
/// the map's own API (`Deref`); equality compares content by a 128-bit sum of 128-bit entry
/// hashes (see `DynamicObject`'s equality), without walking the maps.
#[derive(Clone, Default)]
pub struct ObjectStore {
    map: Arc<SmallMap<ObjectRef, DynamicObject>>,
    /// Sums of the entries' 128-bit hashes, one per lane.
    sum: (u64, u64),
}

/// The 128-bit hash of one entry: the key's stable hash mixed with the object's content hash.
fn entry_hash(k: &ObjectRef, o: &DynamicObject) -> (u64, u64) {
    let mut h = StableHasher::new();
    k.hash(&mut h);
    let (a, b) = o.content_hash();
    h.write_u64(a);
    h.write_u64(b);
    h.finish128()
}

fn add(s: (u64, u64), e: (u64, u64)) -> (u64, u64) {
    (s.0.wrapping_add(e.0), s.1.wrapping_add(e.1))
}

fn sub(s: (u64, u64), e: (u64, u64)) -> (u64, u64) {
    (s.0.wrapping_sub(e.0), s.1.wrapping_sub(e.1))
}

impl ObjectStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `o` under `k`; returns the object it replaces.
    pub fn insert(&mut self, k: ObjectRef, o: DynamicObject) -> Option<DynamicObject> {
        self.sum = add(self.sum, entry_hash(&k, &o));
        let old = Arc::make_mut(&mut self.map).insert(k.clone(), o);
        if let Some(old) = &old {
            self.sum = sub(self.sum, entry_hash(&k, old));
        }
        old
    }

    /// True when both share one map (then they are equal; a cheap test before a deep one).
    pub fn shares(&self, other: &ObjectStore) -> bool {
        Arc::ptr_eq(&self.map, &other.map)
    }

    /// Removes the object stored under `k`.
    pub fn remove(&mut self, k: &ObjectRef) -> Option<DynamicObject> {
        if !self.map.contains_key(k) {
            return None;
        }
        let old = Arc::make_mut(&mut self.map).remove(k);
        if let Some(old) = &old {
            self.sum = sub(self.sum, entry_hash(k, old));
        }
        old
    }
}

impl Deref for ObjectStore {
    type Target = SmallMap<ObjectRef, DynamicObject>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl FromIterator<(ObjectRef, DynamicObject)> for ObjectStore {
    fn from_iter<I: IntoIterator<Item = (ObjectRef, DynamicObject)>>(iter: I) -> Self {
        let mut s = ObjectStore::new();
        for (k, o) in iter {
            s.insert(k, o);
        }
        s
    }
}

impl PartialEq for ObjectStore {
    fn eq(&self, other: &Self) -> bool {
        // equal 128-bit sums of 128-bit entry hashes: equal content (up to a collision of
        // probability about 2^-128, see `DynamicObject`'s equality)
        Arc::ptr_eq(&self.map, &other.map)
            || (self.sum == other.sum && self.map.len() == other.map.len())
    }
}

impl Eq for ObjectStore {}

impl Hash for ObjectStore {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.map.len());
        state.write_u64(self.sum.0);
    }
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anvil_objects::Kind;

    fn obj(name: &str, data: &str) -> (ObjectRef, DynamicObject) {
        let o = DynamicObject::named(Kind::new("v1", "ConfigMap"), "default", name).modify(|p| {
            p.body
                .insert("data".into(), serde_json::json!({ "k": data }));
        });
        (o.object_ref(), o)
    }

    fn fp(s: &ObjectStore) -> u64 {
        let mut h = StableHasher::new();
        s.hash(&mut h);
        h.finish()
    }

    #[test]
    fn the_hash_depends_on_content_only_not_on_history() {
        let (a, oa) = obj("a", "1");
        let (b, ob) = obj("b", "2");
        let (_, oa2) = obj("a", "changed");
        let mut x = ObjectStore::new();
        x.insert(a.clone(), oa.clone());
        x.insert(b.clone(), ob.clone());
        let mut y = ObjectStore::new();
        y.insert(b.clone(), ob.clone());
        y.insert(a.clone(), oa2.clone());
        assert_ne!(fp(&x), fp(&y));
        assert_ne!(x, y);
        y.insert(a.clone(), oa.clone());
        assert_eq!(fp(&x), fp(&y));
        assert_eq!(x, y);
        y.remove(&b);
        assert_ne!(x, y);
        assert_eq!(y.remove(&b), None);
        y.insert(b.clone(), ob);
        assert_eq!((fp(&x), x.clone()), (fp(&y), y.clone()));
        let z: ObjectStore = x.iter().map(|(k, o)| (k.clone(), o.clone())).collect();
        assert_eq!((fp(&z), &z), (fp(&x), &x));
    }
}
