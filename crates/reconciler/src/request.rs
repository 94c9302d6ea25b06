use crate::{ApiError, Tokens};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

/// What an external request or response type must offer: it lives in model states (so it is
/// hashed and compared) and crosses threads in the shim.
pub trait ExternalType: Clone + Eq + Hash + Debug + Send + Sync + 'static {}
impl<T: Clone + Eq + Hash + Debug + Send + Sync + 'static> ExternalType for T {}

/// The external request/response type of controllers that talk to no external system.
/// It has no values, so such a controller can never issue an external request.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens,
)]
pub enum NoExternal {}

/// Optional preconditions of a delete: the object is deleted only if its uid and/or
/// resourceVersion still match (otherwise `Conflict`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub struct Preconditions {
    /// Required `metadata.uid`.
    pub uid: Option<String>,
    /// Required `metadata.resourceVersion`.
    pub resource_version: Option<String>,
}

/// A request to the Kubernetes API server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub enum KubeRequest {
    /// Read one object (a quorum read).
    Get(ObjectRef),
    /// List the objects of a kind in a namespace, optionally filtered by labels (all must match).
    List {
        /// Kind to list.
        kind: Kind,
        /// Namespace to list.
        namespace: String,
        /// Equality label selector; empty selects everything.
        label_selector: BTreeMap<String, String>,
    },
    /// Create the object (its namespace comes from its metadata; it needs `name` or
    /// `generateName`).
    Create(DynamicObject),
    /// Delete the object, optionally only if the preconditions hold.
    Delete {
        /// The object to delete.
        key: ObjectRef,
        /// uid / resourceVersion preconditions.
        preconditions: Option<Preconditions>,
    },
    /// Replace the object (spec and metadata; `status` is ignored when the kind has a status
    /// subresource). A resourceVersion in the object is a precondition.
    Update(DynamicObject),
    /// Replace only the `status` of the object.
    UpdateStatus(DynamicObject),
    /// Atomically: read the current object; if its controller owner reference points at
    /// `owner`, update it with `obj` (taking the current resourceVersion), otherwise fail with
    /// `TransactionAbort`.
    GetThenUpdate {
        /// The new content.
        obj: DynamicObject,
        /// The owner the object must still have.
        owner: Owner,
    },
    /// As [`KubeRequest::GetThenUpdate`], writing only `status`.
    GetThenUpdateStatus {
        /// The new content (only its status is used).
        obj: DynamicObject,
        /// The owner the object must still have.
        owner: Owner,
    },
    /// Atomically: delete the object only if its controller owner reference points at `owner`
    /// (otherwise `TransactionAbort`).
    GetThenDelete {
        /// The object to delete.
        key: ObjectRef,
        /// The owner the object must still have.
        owner: Owner,
    },
}

impl KubeRequest {
    /// The request's name as used in logs and counterexamples, e.g. `Get`.
    pub fn verb(&self) -> &'static str {
        match self {
            KubeRequest::Get(_) => "Get",
            KubeRequest::List { .. } => "List",
            KubeRequest::Create(_) => "Create",
            KubeRequest::Delete { .. } => "Delete",
            KubeRequest::Update(_) => "Update",
            KubeRequest::UpdateStatus(_) => "UpdateStatus",
            KubeRequest::GetThenUpdate { .. } => "GetThenUpdate",
            KubeRequest::GetThenUpdateStatus { .. } => "GetThenUpdateStatus",
            KubeRequest::GetThenDelete { .. } => "GetThenDelete",
        }
    }

    /// True for requests that may change the cluster state.
    pub fn is_mutating(&self) -> bool {
        !matches!(self, KubeRequest::Get(_) | KubeRequest::List { .. })
    }

    /// The key of the object the request addresses (`None` for List).
    pub fn key(&self) -> Option<ObjectRef> {
        match self {
            KubeRequest::Get(key)
            | KubeRequest::Delete { key, .. }
            | KubeRequest::GetThenDelete { key, .. } => Some(key.clone()),
            KubeRequest::List { .. } => None,
            KubeRequest::Create(obj)
            | KubeRequest::Update(obj)
            | KubeRequest::UpdateStatus(obj)
            | KubeRequest::GetThenUpdate { obj, .. }
            | KubeRequest::GetThenUpdateStatus { obj, .. } => Some(obj.object_ref()),
        }
    }

    /// The response of this request's kind carrying `err`: what a dropped or failed request
    /// answers.
    pub fn error_response(&self, err: ApiError) -> KubeResponse {
        match self {
            KubeRequest::Get(_) => KubeResponse::Get(Err(err)),
            KubeRequest::List { .. } => KubeResponse::List(Err(err)),
            KubeRequest::Create(_) => KubeResponse::Create(Err(err)),
            KubeRequest::Delete { .. } => KubeResponse::Delete(Err(err)),
            KubeRequest::Update(_) => KubeResponse::Update(Err(err)),
            KubeRequest::UpdateStatus(_) => KubeResponse::UpdateStatus(Err(err)),
            KubeRequest::GetThenUpdate { .. } => KubeResponse::GetThenUpdate(Err(err)),
            KubeRequest::GetThenUpdateStatus { .. } => KubeResponse::GetThenUpdateStatus(Err(err)),
            KubeRequest::GetThenDelete { .. } => KubeResponse::GetThenDelete(Err(err)),
        }
    }
}

/// The API server's answer to a [`KubeRequest`]; one variant per request kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub enum KubeResponse {
    /// Answer to Get.
    Get(Result<DynamicObject, ApiError>),
    /// Answer to List (ordered by name).
    List(Result<Vec<DynamicObject>, ApiError>),
    /// Answer to Create: the stored object.
    Create(Result<DynamicObject, ApiError>),
    /// Answer to Delete (success also when the delete only set deletionTimestamp).
    Delete(Result<(), ApiError>),
    /// Answer to Update: the stored object.
    Update(Result<DynamicObject, ApiError>),
    /// Answer to UpdateStatus: the stored object.
    UpdateStatus(Result<DynamicObject, ApiError>),
    /// Answer to GetThenUpdate.
    GetThenUpdate(Result<DynamicObject, ApiError>),
    /// Answer to GetThenUpdateStatus.
    GetThenUpdateStatus(Result<DynamicObject, ApiError>),
    /// Answer to GetThenDelete.
    GetThenDelete(Result<(), ApiError>),
}

impl KubeResponse {
    /// The error, if the request failed.
    pub fn error(&self) -> Option<&ApiError> {
        match self {
            KubeResponse::Get(r)
            | KubeResponse::Create(r)
            | KubeResponse::Update(r)
            | KubeResponse::UpdateStatus(r)
            | KubeResponse::GetThenUpdate(r)
            | KubeResponse::GetThenUpdateStatus(r) => r.as_ref().err(),
            KubeResponse::List(r) => r.as_ref().err(),
            KubeResponse::Delete(r) | KubeResponse::GetThenDelete(r) => r.as_ref().err(),
        }
    }

    /// The returned object of a successful Get, Create, Update, UpdateStatus or
    /// GetThenUpdate(Status).
    pub fn object(&self) -> Option<&DynamicObject> {
        match self {
            KubeResponse::Get(Ok(o))
            | KubeResponse::Create(Ok(o))
            | KubeResponse::Update(Ok(o))
            | KubeResponse::UpdateStatus(Ok(o))
            | KubeResponse::GetThenUpdate(Ok(o))
            | KubeResponse::GetThenUpdateStatus(Ok(o)) => Some(o),
            _ => None,
        }
    }
}

/// A request a reconcile step sends: to the API server, or to the controller's external
/// system (e.g. ZooKeeper's API).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub enum Request<E> {
    /// To the Kubernetes API server.
    Kube(KubeRequest),
    /// To the external system.
    External(E),
}

/// The response fed to the next reconcile step.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub enum Response<E> {
    /// From the Kubernetes API server.
    Kube(KubeResponse),
    /// From the external system.
    External(E),
}

impl<E> Response<E> {
    /// The Kubernetes response, if this is one.
    pub fn kube(&self) -> Option<&KubeResponse> {
        match self {
            Response::Kube(r) => Some(r),
            Response::External(_) => None,
        }
    }
}
