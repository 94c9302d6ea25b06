use anvil_objects::{DynamicObject, Kind, ObjectRef};
use std::collections::BTreeMap;

/// A read-only view of the objects in a cluster: what desired-state predicates
/// (`current_state_matches`) look at. The cluster model implements it on its states and the
/// end-to-end tests on a snapshot read from a real API server, so each controller writes its
/// predicate once.
pub trait ClusterView {
    /// The object with this key, if it exists.
    fn get(&self, key: &ObjectRef) -> Option<&DynamicObject>;
    /// Every object of `kind` in `namespace`.
    fn list(&self, kind: &Kind, namespace: &str) -> Vec<&DynamicObject>;
}

impl ClusterView for BTreeMap<ObjectRef, DynamicObject> {
    fn get(&self, key: &ObjectRef) -> Option<&DynamicObject> {
        BTreeMap::get(self, key)
    }

    fn list(&self, kind: &Kind, namespace: &str) -> Vec<&DynamicObject> {
        self.iter()
            .filter(|(k, _)| &k.kind == kind && k.namespace == namespace)
            .map(|(_, v)| v)
            .collect()
    }
}
