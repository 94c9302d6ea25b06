//! API server + etcd semantics: the stored objects, the global resourceVersion and uid
//! counters, and the handling of every [`KubeRequest`].
//!
//! resourceVersions and uids are *tokens* (decimal resourceVersions, UUID-shaped uids, see
//! [`crate::tokens`]): the
//! API server only creates fresh ones and compares them for equality, never computes with
//! them, which is what makes the canonical renaming of [`crate::tokens`] sound.

use crate::kinds::{KindInfo, KindRegistry};
use crate::store::ObjectStore;
use crate::tokens::{Space, token};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::{
    ApiError, ClusterView, ErrorReason, KubeRequest, KubeResponse, Preconditions,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;
use std::collections::BTreeMap;

/// The fixed timestamp the model writes into `deletionTimestamp` (only its presence matters).
pub const DELETION_TIME: &str = "2000-01-01T00:00:00Z";

/// The API server's storage: objects by key plus the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Etcd {
    /// Stored objects, keyed by (kind, namespace, name). Shared between states (copy on
    /// write), since most steps do not change the cluster.
    pub objects: ObjectStore,
    /// The last resourceVersion handed out (`rv-<n>`); bumped once per successful write.
    pub rv: u64,
    /// The last uid handed out (`uid-<n>`).
    pub uid: u64,
}

fn err(reason: ErrorReason, msg: impl Into<String>) -> ApiError {
    ApiError::new(reason, msg)
}

/// Only fields other than `status` and `metadata` (what bumps `metadata.generation`).
fn spec_part(o: &DynamicObject) -> impl Iterator<Item = (&String, &Value)> {
    o.body().iter().filter(|(k, _)| k.as_str() != "status")
}

fn spec_changed(a: &DynamicObject, b: &DynamicObject) -> bool {
    !spec_part(a).eq(spec_part(b))
}

fn controller_refs(o: &DynamicObject) -> usize {
    o.metadata()
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|r| r.controller == Some(true))
        .count()
}

fn finalizers(o: &DynamicObject) -> &[String] {
    o.metadata().finalizers.as_deref().unwrap_or_default()
}

impl ClusterView for Etcd {
    fn get(&self, key: &ObjectRef) -> Option<&DynamicObject> {
        self.objects.get(key)
    }
    fn list(&self, kind: &Kind, namespace: &str) -> Vec<&DynamicObject> {
        self.objects
            .iter()
            .filter(|(k, _)| &k.kind == kind && k.namespace == namespace)
            .map(|(_, v)| v)
            .collect()
    }
}

impl Etcd {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        token(Space::Rv, self.rv)
    }

    fn next_uid(&mut self) -> String {
        self.uid += 1;
        token(Space::Uid, self.uid)
    }

    /// Handles one request atomically and returns the response.
    pub fn handle(&mut self, kinds: &KindRegistry, req: &KubeRequest) -> KubeResponse {
        match req {
            KubeRequest::Get(key) => KubeResponse::Get(self.get_obj(key)),
            KubeRequest::List {
                kind,
                namespace,
                label_selector,
            } => KubeResponse::List(Ok(self.list_objs(kind, namespace, label_selector))),
            KubeRequest::Create(obj) => KubeResponse::Create(self.create(kinds, obj)),
            KubeRequest::Delete { key, preconditions } => {
                KubeResponse::Delete(self.delete(kinds, key, preconditions.as_ref()))
            }
            KubeRequest::Update(obj) => KubeResponse::Update(self.update(kinds, obj)),
            KubeRequest::UpdateStatus(obj) => {
                KubeResponse::UpdateStatus(self.update_status(kinds, obj))
            }
            KubeRequest::GetThenUpdate { obj, owner } => {
                KubeResponse::GetThenUpdate(self.get_then(obj, owner).and_then(|cur| {
                    let o = with_rv(obj, cur.resource_version());
                    self.update(kinds, &o)
                }))
            }
            KubeRequest::GetThenUpdateStatus { obj, owner } => {
                KubeResponse::GetThenUpdateStatus(self.get_then(obj, owner).and_then(|cur| {
                    let o = with_rv(obj, cur.resource_version());
                    self.update_status(kinds, &o)
                }))
            }
            KubeRequest::GetThenDelete { key, owner } => {
                let r = match self.objects.get(key) {
                    None => Err(not_found(key)),
                    Some(cur) if !is_controlled_by(cur, owner) => Err(err(
                        ErrorReason::TransactionAbort,
                        format!("{key} is no longer controlled by {}", owner.name),
                    )),
                    Some(cur) => {
                        let pre = Preconditions {
                            uid: cur.uid().map(str::to_string),
                            resource_version: None,
                        };
                        self.delete(kinds, key, Some(&pre))
                    }
                };
                KubeResponse::GetThenDelete(r)
            }
        }
    }

    fn get_then(&self, obj: &DynamicObject, owner: &Owner) -> Result<DynamicObject, ApiError> {
        let key = obj.object_ref();
        match self.objects.get(&key) {
            None => Err(not_found(&key)),
            Some(cur) if !is_controlled_by(cur, owner) => Err(err(
                ErrorReason::TransactionAbort,
                format!("{key} is no longer controlled by {}", owner.name),
            )),
            Some(cur) => Ok(cur.clone()),
        }
    }

    /// Get: a consistent read.
    pub fn get_obj(&self, key: &ObjectRef) -> Result<DynamicObject, ApiError> {
        self.objects.get(key).cloned().ok_or_else(|| not_found(key))
    }

    /// List by kind and namespace with an equality label selector, ordered by (namespace,
    /// name). An empty `namespace` lists every namespace (and the cluster-scoped objects), as
    /// the shim's `Api::all` does (the runtime semantics of DESIGN §6).
    pub fn list_objs(
        &self,
        kind: &Kind,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<DynamicObject> {
        self.objects
            .iter()
            .filter(|(k, _)| &k.kind == kind && (namespace.is_empty() || k.namespace == namespace))
            .filter(|(_, o)| {
                let labels = o.metadata().labels.as_ref();
                selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .map(|(_, o)| o.clone())
            .collect()
    }

    fn check_namespace(info: &KindInfo, obj: &DynamicObject) -> Result<(), ApiError> {
        if info.namespaced && obj.namespace().is_empty() {
            return Err(err(
                ErrorReason::BadRequest,
                format!(
                    "the namespace of the object ({}) is required for namespaced kind {}",
                    obj.name(),
                    info.kind
                ),
            ));
        }
        if !info.namespaced && !obj.namespace().is_empty() {
            return Err(err(
                ErrorReason::BadRequest,
                format!(
                    "the namespace of the provided object does not match: {} is cluster-scoped",
                    info.kind
                ),
            ));
        }
        Ok(())
    }

    fn check_common(
        info: &KindInfo,
        old: Option<&DynamicObject>,
        obj: &DynamicObject,
    ) -> Result<(), ApiError> {
        if controller_refs(obj) > 1 {
            return Err(err(
                ErrorReason::Invalid,
                "metadata.ownerReferences: Invalid value: only one reference can have Controller set to true",
            ));
        }
        info.validate_write(old, obj)
            .map_err(|m| err(ErrorReason::Invalid, m))
    }

    /// Create.
    pub fn create(
        &mut self,
        kinds: &KindRegistry,
        obj: &DynamicObject,
    ) -> Result<DynamicObject, ApiError> {
        let info = kinds.info(obj.kind());
        let meta = obj.metadata();
        let generate = meta.generate_name.clone().unwrap_or_default();
        if obj.name().is_empty() && generate.is_empty() {
            return Err(err(
                ErrorReason::Invalid,
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        Self::check_namespace(info, obj)?;
        let name = if obj.name().is_empty() {
            // The smallest unused suffix: one of the names the real server could pick.
            (1u64..)
                .map(|n| format!("{generate}{n:05}"))
                .find(|n| {
                    !self.objects.contains_key(&ObjectRef::new(
                        obj.kind().clone(),
                        obj.namespace(),
                        n.clone(),
                    ))
                })
                .expect("a free name")
        } else {
            obj.name().to_string()
        };
        let key = ObjectRef::new(obj.kind().clone(), obj.namespace(), name.clone());
        let candidate = obj.modify(|p| {
            p.metadata.name = Some(name.clone());
            p.metadata.deletion_timestamp = None;
            p.metadata.generation = info.tracks_generation.then_some(1);
            if info.status_subresource {
                match &info.default_status {
                    Some(s) => {
                        p.body.insert("status".into(), s.clone());
                    }
                    None => {
                        p.body.remove("status");
                    }
                }
            }
        });
        // validated as it would be stored (a discarded status is not validated), and before
        // the existence check, as the real server does (validation runs in BeforeCreate)
        Self::check_common(info, None, &candidate)?;
        if self.objects.contains_key(&key) {
            return Err(err(
                ErrorReason::AlreadyExists,
                format!("{key} already exists"),
            ));
        }
        let uid = self.next_uid();
        let rv = self.next_rv();
        let stored = candidate.modify(|p| {
            p.metadata.uid = Some(uid);
            p.metadata.resource_version = Some(rv);
        });
        self.objects.insert(key, stored.clone());
        Ok(stored)
    }

    fn preconditions(
        cur: &DynamicObject,
        obj: &DynamicObject,
        info: &KindInfo,
    ) -> Result<(), ApiError> {
        if let Some(uid) = obj.uid()
            && Some(uid) != cur.uid()
        {
            return Err(err(
                ErrorReason::Conflict,
                format!(
                    "Precondition failed: UID in precondition does not match the UID of {}",
                    cur.object_ref()
                ),
            ));
        }
        match obj.resource_version() {
            Some(rv) if Some(rv) != cur.resource_version() => Err(err(
                ErrorReason::Conflict,
                format!(
                    "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again",
                    cur.object_ref()
                ),
            )),
            None if !info.unconditional_update => Err(err(
                ErrorReason::Invalid,
                "metadata.resourceVersion: Invalid value: 0: must be specified for an update",
            )),
            _ => Ok(()),
        }
    }

    /// Stores `new` replacing `cur` (same key): no-op detection, generation, rv bump, and
    /// removal of an object being deleted whose finalizers are gone.
    fn commit(
        &mut self,
        info: &KindInfo,
        cur: &DynamicObject,
        new: DynamicObject,
    ) -> DynamicObject {
        if &new == cur {
            return new;
        }
        let bump = info.tracks_generation && spec_changed(cur, &new);
        let rv = self.next_rv();
        let stored = new.modify(|p| {
            p.metadata.resource_version = Some(rv);
            if bump {
                p.metadata.generation = Some(p.metadata.generation.unwrap_or(0) + 1);
            }
        });
        let key = stored.object_ref();
        if stored.metadata().deletion_timestamp.is_some() && finalizers(&stored).is_empty() {
            self.objects.remove(&key);
            // the answer carries the last stored resourceVersion, as the real server's does
            let last = cur.resource_version().map(str::to_string);
            return stored.modify(|p| p.metadata.resource_version = last);
        } else {
            self.objects.insert(key, stored.clone());
        }
        stored
    }

    /// Update (spec and metadata; status is untouched on kinds with a status subresource).
    pub fn update(
        &mut self,
        kinds: &KindRegistry,
        obj: &DynamicObject,
    ) -> Result<DynamicObject, ApiError> {
        let info = kinds.info(obj.kind());
        if obj.name().is_empty() {
            return Err(err(
                ErrorReason::BadRequest,
                "metadata.name: Required value",
            ));
        }
        Self::check_namespace(info, obj)?;
        let key = obj.object_ref();
        if info.create_on_update && !self.objects.contains_key(&key) {
            // the uid precondition is checked against the (empty) missing object; a
            // resourceVersion is ignored
            // (The real message names the uid; a token is never embedded in a longer string
            // in the model, see `crate::tokens`.)
            if obj.uid().is_some() {
                return Err(err(
                    ErrorReason::Conflict,
                    "Precondition failed: UID in precondition differs from UID in object meta",
                ));
            }
            let fresh = obj.modify(|p| {
                p.metadata.resource_version = None;
                p.metadata.uid = None;
            });
            return self.create(kinds, &fresh);
        }
        let cur = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(&key))?;
        Self::preconditions(&cur, obj, info)?;
        if cur.metadata().deletion_timestamp.is_some()
            && finalizers(obj)
                .iter()
                .any(|f| !finalizers(&cur).contains(f))
        {
            return Err(err(
                ErrorReason::Invalid,
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
            ));
        }
        let new = obj.modify(|p| {
            let c = cur.metadata();
            p.metadata.uid = c.uid.clone();
            p.metadata.resource_version = c.resource_version.clone();
            p.metadata.creation_timestamp = c.creation_timestamp.clone();
            p.metadata.deletion_timestamp = c.deletion_timestamp.clone();
            p.metadata.generation = c.generation;
            if info.status_subresource {
                match cur.status() {
                    Some(s) => {
                        p.body.insert("status".into(), s.clone());
                    }
                    None => {
                        p.body.remove("status");
                    }
                }
            }
        });
        Self::check_common(info, Some(&cur), &new)?;
        Ok(self.commit(info, &cur, new))
    }

    /// UpdateStatus: only `status` changes.
    pub fn update_status(
        &mut self,
        kinds: &KindRegistry,
        obj: &DynamicObject,
    ) -> Result<DynamicObject, ApiError> {
        let info = kinds.info(obj.kind());
        let key = obj.object_ref();
        if !info.status_subresource {
            return Err(err(
                ErrorReason::NotFound,
                format!("{} has no status subresource", info.kind),
            ));
        }
        let cur = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(&key))?;
        Self::preconditions(&cur, obj, info)?;
        let set_status = |p: &mut anvil_objects::ObjectParts| match obj.status() {
            Some(s) => {
                p.body.insert("status".into(), s.clone());
            }
            None => {
                p.body.remove("status");
            }
        };
        let new = if info.status_update_takes_metadata {
            // metadata from the body (system fields kept), spec from the stored object
            let new = obj.modify(|p| {
                let c = cur.metadata();
                p.metadata.uid = c.uid.clone();
                p.metadata.resource_version = c.resource_version.clone();
                p.metadata.creation_timestamp = c.creation_timestamp.clone();
                p.metadata.deletion_timestamp = c.deletion_timestamp.clone();
                p.metadata.generation = c.generation;
                p.body = cur.body().clone();
                set_status(p);
            });
            if controller_refs(&new) > 1 {
                return Err(err(
                    ErrorReason::Invalid,
                    "metadata.ownerReferences: Invalid value: only one reference can have Controller set to true",
                ));
            }
            if cur.metadata().deletion_timestamp.is_some()
                && finalizers(&new)
                    .iter()
                    .any(|f| !finalizers(&cur).contains(f))
            {
                return Err(err(
                    ErrorReason::Invalid,
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
            new
        } else {
            cur.modify(set_status)
        };
        // the kind's rules apply to status writes too (e.g. a CRD's status schema), and so do
        // its transition rules (e.g. StatefulSet status.collisionCount cannot be decremented)
        info.validate_write(Some(&cur), &new)
            .map_err(|m| err(ErrorReason::Invalid, m))?;
        Ok(self.commit(info, &cur, new))
    }

    /// Delete with optional preconditions; objects with finalizers only get a
    /// deletionTimestamp.
    pub fn delete(
        &mut self,
        kinds: &KindRegistry,
        key: &ObjectRef,
        pre: Option<&Preconditions>,
    ) -> Result<(), ApiError> {
        let info = kinds.info(&key.kind);
        let cur = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| not_found(key))?;
        if let Some(p) = pre
            && (p.uid.as_deref().is_some_and(|u| Some(u) != cur.uid())
                || p.resource_version
                    .as_deref()
                    .is_some_and(|r| Some(r) != cur.resource_version()))
        {
            return Err(err(
                ErrorReason::Conflict,
                format!("Precondition failed for the deletion of {key}"),
            ));
        }
        if finalizers(&cur).is_empty() {
            self.objects.remove(key);
            self.rv += 1; // a delete is a write
        } else if cur.metadata().deletion_timestamp.is_none() {
            let new = cur.modify(|p| {
                p.metadata.deletion_timestamp = Some(deletion_time());
                if info.tracks_generation {
                    p.metadata.generation = Some(p.metadata.generation.unwrap_or(0) + 1);
                }
            });
            self.commit(info, &cur, new);
        }
        Ok(())
    }
}

/// Whether the owner reference `r` of `obj` resolves to a live owner: an object of the
/// referenced kind and name, in `obj`'s namespace, with the referenced uid.
/// (Asked for every owner reference of every object in every state: the owner is found by
/// comparing borrowed parts, in `ObjectRef`'s order, without building its key.)
pub fn owner_resolves(etcd: &Etcd, obj: &DynamicObject, r: &anvil_objects::OwnerReference) -> bool {
    let sought = (
        r.api_version.as_str(),
        r.kind.as_str(),
        obj.namespace(),
        r.name.as_str(),
    );
    etcd.objects
        .get_by(|k| {
            let key = (
                k.kind.api_version(),
                k.kind.kind(),
                k.namespace.as_str(),
                k.name.as_str(),
            );
            key.cmp(&sought)
        })
        .is_some_and(|o| o.uid() == Some(r.uid.as_str()))
}

/// The garbage collector's rule (DESIGN.md §5): an object is garbage once it has owner
/// references and none of them resolves to a live owner with the same uid
/// ([`owner_resolves`]). The model's garbage-collector action (`model::Action::Gc`) is enabled
/// exactly for these objects and runs [`Etcd::collect_garbage`]; `crates/fidelity/tests/gc.rs`
/// compares this rule with the real kube-controller-manager.
pub fn garbage_collectable(etcd: &Etcd, key: &ObjectRef) -> bool {
    etcd.objects.get(key).is_some_and(|o| {
        let refs = o.metadata().owner_references.as_deref().unwrap_or_default();
        !refs.is_empty() && !refs.iter().any(|r| owner_resolves(etcd, o, r))
    })
}

impl Etcd {
    /// The garbage collector's deletion of `key`: a Delete with a uid precondition (the uid
    /// of the object it judged to be garbage). An object with finalizers only gets its
    /// deletionTimestamp (a no-op when it already has one).
    pub fn collect_garbage(
        &mut self,
        kinds: &KindRegistry,
        key: &ObjectRef,
    ) -> Result<(), ApiError> {
        let o = self.objects.get(key).ok_or_else(|| not_found(key))?;
        let pre = Preconditions {
            uid: o.uid().map(str::to_string),
            resource_version: None,
        };
        self.delete(kinds, key, Some(&pre))
    }
}

/// The timestamp object for [`DELETION_TIME`].
pub fn deletion_time() -> Time {
    serde_json::from_value(Value::String(DELETION_TIME.into())).expect("valid time")
}

fn with_rv(obj: &DynamicObject, rv: Option<&str>) -> DynamicObject {
    let rv = rv.map(str::to_string);
    obj.modify(|p| p.metadata.resource_version = rv)
}

fn not_found(key: &ObjectRef) -> ApiError {
    err(ErrorReason::NotFound, format!("{key} not found"))
}
