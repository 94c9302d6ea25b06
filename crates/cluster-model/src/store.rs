//! [`ObjectStore`]: the API server's objects by key, shared between states, with a hash that
//! is maintained incrementally.

use crate::small_map::SmallMap;
use anvil_objects::{DynamicObject, ObjectRef, StableHasher};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// Stored objects, keyed by (kind, namespace, name), in a sorted vector ([`SmallMap`]: a
/// state holds a few dozen objects at most). Cloning shares the map (copy on write:
/// most steps do not change the cluster). Its `Hash` writes a sum of per-entry hashes kept up
/// to date by [`ObjectStore::insert`] and [`ObjectStore::remove`], so hashing a state (the
/// checker's fingerprint, the model's memo keys) does not walk the objects. Read access is
/// the map's own API (`Deref`); equality compares content by a 128-bit sum of 128-bit entry
/// hashes (see `DynamicObject`'s equality), without walking the maps.
#[derive(Clone, Default)]
pub struct ObjectStore {
    map: Arc<Objects>,
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

    /// Makes this store share its map with any equal store that [`ObjectStore::share`] saw
    /// and that is still alive, anywhere in the process (hash-consing). The states waiting in
    /// a search's frontier mostly hold maps equal to others' (the same objects reached along
    /// different interleavings); shared, each is stored once. The table holds its maps weakly.
    pub fn share(&mut self) {
        let key = (self.sum, self.map.len());
        let shard = &SHARED[(self.sum.1 as usize) % SHARDS];
        let mut t = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = t.maps.get(&key).and_then(Weak::upgrade) {
            self.map = m;
            return;
        }
        t.maps.insert(key, Arc::downgrade(&self.map));
        if t.maps.len() > 2 * t.live.max(4096) {
            t.maps.retain(|_, m| m.strong_count() > 0);
            t.live = t.maps.len();
        }
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

/// Shards of the table of shared maps ([`ObjectStore::share`]).
const SHARDS: usize = 16;

/// One shard: maps by (content sum, length), weakly held, and how many were alive at the last
/// sweep (the dead are swept when the shard has doubled since).
#[derive(Default)]
struct Shard {
    maps: HashMap<((u64, u64), usize), Weak<Objects>>,
    live: usize,
}

/// The map a store holds.
type Objects = SmallMap<ObjectRef, DynamicObject>;

static SHARED: LazyLock<Vec<Mutex<Shard>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::default()).collect());

impl Deref for ObjectStore {
    type Target = Objects;
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

    #[test]
    fn equal_stores_share_one_map_once_shared() {
        let (a, oa) = obj("shared-a", "1");
        let (b, ob) = obj("shared-b", "2");
        let mut x: ObjectStore = [(a.clone(), oa.clone()), (b.clone(), ob.clone())]
            .into_iter()
            .collect();
        let mut y: ObjectStore = [(b.clone(), ob), (a.clone(), oa)].into_iter().collect();
        let mut other: ObjectStore = [(a, obj("shared-a", "changed").1)].into_iter().collect();
        assert!(!x.shares(&y));
        x.share();
        y.share();
        other.share();
        assert!(x.shares(&y));
        assert!(!x.shares(&other));
        assert_eq!((fp(&x), &x), (fp(&y), &y));
        // a change copies the map again (copy on write): the shared one is not touched
        y.remove(&b);
        assert!(!x.shares(&y));
        assert_eq!(x.len(), 2);
    }
}
