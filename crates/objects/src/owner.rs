//! Owner-reference helpers.

use crate::DynamicObject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::{Deserialize, Serialize};

/// The controller owner reference (`controller: true`, `blockOwnerDeletion: true`) that points
/// at `owner`: what a controller puts on every object it creates for a custom resource.
/// `None` when the owner has no name or uid yet (it was never stored by the API server).
pub fn controller_owner_ref<K: kube_core::Resource<DynamicType = ()>>(
    owner: &K,
) -> Option<OwnerReference> {
    owner.controller_owner_ref(&())
}

/// [`controller_owner_ref`] for an object in dynamic form.
pub fn controller_owner_ref_of(owner: &DynamicObject) -> Option<OwnerReference> {
    let meta = owner.metadata();
    Some(OwnerReference {
        api_version: owner.kind().api_version().to_string(),
        kind: owner.kind().kind().to_string(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// True when `obj` has exactly one owner reference and it points at `owner` (same kind, name
/// and uid). This is the check that keeps a controller from adopting an object left behind by
/// a deleted custom resource of the same name.
pub fn is_owned_only_by(obj: &DynamicObject, owner: &Owner) -> bool {
    match obj.metadata().owner_references.as_deref() {
        Some([only]) => owner.matches(only),
        _ => false,
    }
}

/// True when `obj`'s controller owner reference points at `owner`.
pub fn is_controlled_by(obj: &DynamicObject, owner: &Owner) -> bool {
    obj.controller_ref().is_some_and(|r| owner.matches(r))
}

/// The identity of an owner (kind, name, uid): a hashable stand-in for an [`OwnerReference`],
/// used in requests such as `GetThenUpdate` ("only if still owned by this owner").
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// The owner's `apiVersion`.
    pub api_version: String,
    /// The owner's `kind`.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's uid.
    pub uid: String,
}

impl Owner {
    /// The owner an owner reference points at.
    pub fn of_reference(r: &OwnerReference) -> Self {
        Owner {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        }
    }

    /// The owner identity of a stored object (`None` without name or uid).
    pub fn of_object(obj: &DynamicObject) -> Option<Self> {
        controller_owner_ref_of(obj).map(|r| Owner::of_reference(&r))
    }

    /// The controller owner reference pointing at this owner.
    pub fn controller_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// True when `r` points at this owner (same apiVersion, kind, name and uid).
    pub fn matches(&self, r: &OwnerReference) -> bool {
        r.uid == self.uid
            && r.name == self.name
            && r.kind == self.kind
            && r.api_version == self.api_version
    }
}
