//! Kubernetes API objects shared by the cluster model and the runtime shim.
//!
//! The central type is [`DynamicObject`]: an object of any kind held as `apiVersion`/`kind`
//! ([`Kind`]), typed [`ObjectMeta`] and the rest of the body as JSON. It is cheap to clone
//! (shared storage), compares by content, and carries a **stable** 64-bit fingerprint computed
//! once when the object is built: the same content gives the same hash in every run, on every
//! machine, whatever the insertion order of JSON maps. Typed objects (any `k8s-openapi` type and
//! any custom resource made with kube's `CustomResource` derive) convert to and from it without
//! loss.
//!
//! ```
//! use anvil_objects::{DynamicObject, Kind};
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! cm.metadata.namespace = Some("default".into());
//! cm.data = Some([("mode".to_string(), "fast".to_string())].into());
//!
//! let obj = DynamicObject::from_typed(&cm).unwrap();
//! assert_eq!(obj.kind(), &Kind::of::<ConfigMap>());
//! assert_eq!(obj.name(), "settings");
//! let back: ConfigMap = obj.to_typed().unwrap();
//! assert_eq!(back, cm);
//! // Cloning shares storage; equal content hashes equally.
//! assert_eq!(obj.clone().fingerprint(), DynamicObject::from_typed(&cm).unwrap().fingerprint());
//! ```

mod dynamic;
mod error;
mod fingerprint;
mod kind;
mod object_ref;
mod owner;

pub use dynamic::{DynamicObject, ObjectParts};
pub use error::ObjectError;
pub use fingerprint::{StableHasher, stable_hash_json};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
pub use kind::Kind;
pub use object_ref::ObjectRef;
pub use owner::{
    Owner, controller_owner_ref, controller_owner_ref_of, is_controlled_by, is_owned_only_by,
};
