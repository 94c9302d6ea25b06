use crate::fingerprint::{HashWriter, StableHasher, stable_hash_json};
use crate::{Kind, ObjectError, ObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The editable parts of a [`DynamicObject`]: its kind, typed metadata, and every other
/// top-level field (`spec`, `status`, `data`, ...) as JSON.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ObjectParts {
    /// `apiVersion` and `kind`.
    pub kind: Kind,
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// All other top-level fields.
    pub body: Map<String, Value>,
}

impl Default for Kind {
    fn default() -> Self {
        Kind::new("v1", "Unknown")
    }
}

struct Stored {
    fingerprint: u64,
    /// The second 64 bits of the 128-bit content hash ([`StableHasher::finish128`]).
    check: u64,
    parts: ObjectParts,
}

/// An object of any kind, immutable and shared: `clone` is a reference-count bump, `Hash`
/// writes a fingerprint computed once at construction, and `Eq` compares content by its
/// 128-bit hash, also computed once (two different contents compare equal with probability
/// about 2^-128 per pair: the model compares objects millions of times, mostly equal ones in
/// different allocations, which a deep comparison walks in full).
///
/// Change an object with [`DynamicObject::modify`], which copies on write.
#[derive(Clone)]
pub struct DynamicObject(Arc<Stored>);

impl DynamicObject {
    /// An object from its parts.
    pub fn new(parts: ObjectParts) -> Self {
        let (fingerprint, check) = fingerprint_of(&parts);
        DynamicObject(Arc::new(Stored {
            fingerprint,
            check,
            parts,
        }))
    }

    /// An object with the given kind, namespace and name, and no other content.
    pub fn named(kind: Kind, namespace: &str, name: &str) -> Self {
        let metadata = ObjectMeta {
            name: Some(name.to_string()),
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
            ..ObjectMeta::default()
        };
        DynamicObject::new(ObjectParts {
            kind,
            metadata,
            body: Map::new(),
        })
    }

    /// Converts a typed object (any `k8s-openapi` type or kube `CustomResource`).
    pub fn from_typed<K>(obj: &K) -> Result<Self, ObjectError>
    where
        K: kube_core::Resource<DynamicType = ()> + Serialize,
    {
        let mut json = serde_json::to_value(obj)?;
        // Typed values serialise apiVersion/kind themselves; make sure, in case a type skips them.
        if let Value::Object(map) = &mut json {
            map.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
            map.insert("kind".into(), K::kind(&()).into_owned().into());
        }
        Self::from_json(json)
    }

    /// Converts to a typed object, checking that the kind matches.
    pub fn to_typed<K>(&self) -> Result<K, ObjectError>
    where
        K: kube_core::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let expected = Kind::of::<K>();
        if &expected != self.kind() {
            return Err(ObjectError::KindMismatch {
                expected: format!("{expected:?}"),
                found: format!("{:?}", self.kind()),
            });
        }
        Ok(serde_json::from_value(self.to_json())?)
    }

    /// Parses the JSON form (`apiVersion`, `kind`, `metadata`, and the rest).
    pub fn from_json(json: Value) -> Result<Self, ObjectError> {
        let Value::Object(mut body) = json else {
            return Err(ObjectError::Malformed(
                "an object must be a JSON object".into(),
            ));
        };
        let api_version = take_string(&mut body, "apiVersion")?;
        let kind = take_string(&mut body, "kind")?;
        let metadata = match body.remove("metadata") {
            None | Some(Value::Null) => ObjectMeta::default(),
            Some(m) => serde_json::from_value(m)
                .map_err(|e| ObjectError::Malformed(format!("metadata: {e}")))?,
        };
        Ok(DynamicObject::new(ObjectParts {
            kind: Kind::new(&api_version, &kind),
            metadata,
            body,
        }))
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let parts = &self.0.parts;
        let mut map = Map::new();
        map.insert("apiVersion".into(), parts.kind.api_version().into());
        map.insert("kind".into(), parts.kind.kind().into());
        map.insert(
            "metadata".into(),
            serde_json::to_value(&parts.metadata).expect("ObjectMeta always serialises"),
        );
        for (k, v) in &parts.body {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }

    /// Returns a copy changed by `f` (copy on write; the fingerprint is recomputed).
    pub fn modify(&self, f: impl FnOnce(&mut ObjectParts)) -> Self {
        let mut parts = self.0.parts.clone();
        f(&mut parts);
        DynamicObject::new(parts)
    }

    /// All parts, read-only.
    pub fn parts(&self) -> &ObjectParts {
        &self.0.parts
    }

    /// The stable 64-bit content fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.0.fingerprint
    }

    /// The stable 128-bit content hash (the fingerprint and a second lane): equal objects have
    /// equal hashes, and `==` compares them.
    pub fn content_hash(&self) -> (u64, u64) {
        (self.0.fingerprint, self.0.check)
    }

    /// `apiVersion` and `kind`.
    pub fn kind(&self) -> &Kind {
        &self.0.parts.kind
    }

    /// `metadata`.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.0.parts.metadata
    }

    /// Top-level fields other than apiVersion, kind, metadata.
    pub fn body(&self) -> &Map<String, Value> {
        &self.0.parts.body
    }

    /// `spec`, if any.
    pub fn spec(&self) -> Option<&Value> {
        self.0.parts.body.get("spec")
    }

    /// `status`, if any.
    pub fn status(&self) -> Option<&Value> {
        self.0.parts.body.get("status")
    }

    /// `metadata.name` (empty when unset).
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// `metadata.namespace` (empty when unset).
    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or("")
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.metadata().resource_version.as_deref()
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.metadata().uid.as_deref()
    }

    /// The key of this object.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.kind().clone(), self.namespace(), self.name())
    }

    /// The owner reference with `controller: true`, if any.
    pub fn controller_ref(&self) -> Option<&OwnerReference> {
        self.metadata()
            .owner_references
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|r| r.controller == Some(true))
    }
}

fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<String, ObjectError> {
    match map.remove(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(ObjectError::Malformed(format!(
            "`{field}` must be a non-empty string, found {other}"
        ))),
        None => Err(ObjectError::Malformed(format!("missing `{field}`"))),
    }
}

fn fingerprint_of(parts: &ObjectParts) -> (u64, u64) {
    let mut h = StableHasher::new();
    h.write(parts.kind.api_version().as_bytes());
    h.write_u8(0xff);
    h.write(parts.kind.kind().as_bytes());
    h.write_u8(0xff);
    // ObjectMeta serialises deterministically (fields in declaration order, maps sorted), so
    // its JSON bytes are a canonical encoding; streaming them avoids building a JSON value.
    let mut w = HashWriter::new(&mut h);
    serde_json::to_writer(&mut w, &parts.metadata).expect("ObjectMeta always serialises");
    w.finish();
    h.write_u8(0xff);
    // The body is hashed as a JSON object, so its key order does not matter either.
    let mut keys: Vec<&String> = parts.body.keys().collect();
    keys.sort_unstable();
    h.write_usize(keys.len());
    for k in keys {
        h.write(k.as_bytes());
        h.write_u8(0xff);
        stable_hash_json(&parts.body[k], &mut h);
    }
    h.finish128()
}

impl PartialEq for DynamicObject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.fingerprint == other.0.fingerprint && self.0.check == other.0.check)
    }
}

impl Eq for DynamicObject {}

impl Hash for DynamicObject {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.fingerprint);
    }
}

impl fmt::Debug for DynamicObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind().kind(), self.to_json())
    }
}

impl Serialize for DynamicObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for DynamicObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        DynamicObject::from_json(v).map_err(serde::de::Error::custom)
    }
}
