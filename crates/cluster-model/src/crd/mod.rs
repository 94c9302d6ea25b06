//! Custom resources' rules from their CRD: the single source of truth is the CRD's
//! `openAPIV3Schema` and its CEL rules (`x-kubernetes-validations`), which the model's API
//! server evaluates with the [`cel`] interpreter crate, as the real API server does with
//! cel-go. Nothing is written twice.
//!
//! [`CrdValidator::from_crd`] parses the schema of one served version once (when the kind is
//! registered, [`crate::KindInfo::custom_resource_from_crd`]) and compiles every rule at
//! every schema node (object properties, `items` of arrays, `additionalProperties` of maps);
//! a rule that does not parse, or names an identifier other than `self`, `oldSelf`, its
//! comprehension variables and CEL's type and library names, is a [`CrdError`] then.
//!
//! On every create and update of the kind, [`CrdValidator::validate`] (memoised per thread
//! by the objects' fingerprints) does what the API server's custom resource strategy does:
//!
//! 1. **defaulting**: `default`s of missing (or null and not `nullable`) properties are
//!    applied, recursively, to the value that is validated (the stored object is not
//!    changed: the model stores what was written);
//! 2. **schema validation** of `type` (`integer`, `number`, `string`, `boolean`, `object`,
//!    `array`, `x-kubernetes-int-or-string`, `nullable`), `required`, `enum`,
//!    `minimum`/`maximum` (and `exclusiveMinimum`/`exclusiveMaximum`), `multipleOf`,
//!    `minLength`/`maxLength` (in characters), `pattern` (the `regex` crate's syntax, close to
//!    Go's RE2), `minItems`/`maxItems`, `minProperties`/`maxProperties`, and the uniqueness
//!    of `x-kubernetes-list-type: set` items and `map` keys;
//! 3. if there is no type error (as the API server, which otherwise skips them), the **CEL
//!    rules**, with `self` bound to the value at the rule's node, typed by the schema
//!    (integers as `int`, numbers as `double`, objects with properties as objects whose field
//!    names are escaped as the API server escapes them, maps, lists), and for a rule that
//!    mentions `oldSelf` (a transition rule) `oldSelf` bound to the old value at the same path
//!    (array items correlate only in `x-kubernetes-list-type: map` lists, by their keys); a
//!    transition rule is evaluated on updates where the old value exists, or always with
//!    `optionalOldSelf` (then `oldSelf` is an optional). `message`, `messageExpression`,
//!    `reason` and `fieldPath` are honoured.
//!
//! Errors read like the API server's field errors (`spec.replicas: Invalid value: "integer":
//! replicas must be at least 3`), several joined as `[e1, e2]`.
//!
//! Not enforced: string `format`s, `allOf`/`anyOf`/`oneOf`/`not`, pruning of unknown fields
//! (they are ignored, not removed), metadata validation beyond what [`crate::api`] does,
//! `x-kubernetes-embedded-resource` contents, CEL cost limits, validation ratcheting (which
//! only matters for objects that were already invalid), CEL type checking at registration (a
//! type error in a rule shows as an evaluation error when it runs), set semantics for the
//! equality of `set`/`map` lists in CEL, and the Kubernetes CEL libraries (quantity, URL, IP,
//! CIDR, semver, format, regex `find`); the `cel` crate's standard library with its strings
//! and lists extensions is what rules can call.

mod check;
mod rules;
mod schema;

pub use check::FieldError;

use anvil_objects::{DynamicObject, Kind, StableHasher, stable_hash_json};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schema::Node;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hasher;

/// A CRD that cannot be used: malformed, or a rule that does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrdError(String);

impl CrdError {
    pub(crate) fn new(path: &str, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        CrdError(if path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        })
    }
}

impl std::fmt::Display for CrdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid CRD: {}", self.0)
    }
}

impl std::error::Error for CrdError {}

/// The validation of one version of a custom resource kind, from its CRD.
pub struct CrdValidator {
    kind: Kind,
    namespaced: bool,
    status_subresource: bool,
    root: Node,
    /// Rules at the root or under `metadata` need the whole object as JSON.
    needs_metadata: bool,
    id: u64,
}

impl std::fmt::Debug for CrdValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CrdValidator({:?})", self.kind)
    }
}

impl CrdValidator {
    /// The validator of the storage version of `crd` (the JSON of a
    /// `apiextensions.k8s.io/v1` `CustomResourceDefinition`, e.g.
    /// `serde_json::to_value(K::crd())` for a kube `CustomResourceExt` type).
    pub fn from_crd(crd: &Value) -> Result<Self, CrdError> {
        Self::from_crd_version(crd, None)
    }

    /// [`CrdValidator::from_crd`] for the typed CRD.
    pub fn from_typed_crd(crd: &CustomResourceDefinition) -> Result<Self, CrdError> {
        let json = serde_json::to_value(crd).map_err(|e| CrdError::new("", e.to_string()))?;
        Self::from_crd(&json)
    }

    /// The validator of version `version` of `crd` (`None`: the storage version).
    pub fn from_crd_version(crd: &Value, version: Option<&str>) -> Result<Self, CrdError> {
        let spec = crd
            .get("spec")
            .ok_or_else(|| CrdError::new("", "no spec"))?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        let group = text(spec, "group").ok_or_else(|| CrdError::new("spec", "no group"))?;
        let kind = spec
            .get("names")
            .and_then(|n| text(n, "kind"))
            .ok_or_else(|| CrdError::new("spec.names", "no kind"))?;
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .ok_or_else(|| CrdError::new("spec", "no versions"))?;
        let v = versions
            .iter()
            .find(|v| match version {
                Some(want) => text(v, "name").as_deref() == Some(want),
                None => v.get("storage").and_then(Value::as_bool) == Some(true),
            })
            .ok_or_else(|| CrdError::new("spec.versions", format!("no version {version:?}")))?;
        let name = text(v, "name").unwrap_or_default();
        let schema = v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .ok_or_else(|| CrdError::new(&kind, "no openAPIV3Schema"))?;
        let mut root =
            Node::parse(schema, "").map_err(|e| CrdError(format!("{kind} {name}: {}", e.0)))?;
        // rules at the root see `apiVersion`, `kind` and `metadata.name`/`generateName`
        for (k, s) in [
            ("apiVersion", json!({"type": "string"})),
            ("kind", json!({"type": "string"})),
            (
                "metadata",
                json!({"type": "object", "properties": {
                    "name": {"type": "string"}, "generateName": {"type": "string"}}}),
            ),
        ] {
            if root.property(k).is_none() {
                root.add_property(k, Node::parse(&s, k)?);
            }
        }
        let needs_metadata =
            !root.rules.is_empty() || root.property("metadata").is_some_and(|m| m.has_rules);
        let mut h = StableHasher::new();
        stable_hash_json(crd, &mut h);
        h.write(name.as_bytes());
        Ok(CrdValidator {
            kind: Kind::new(&format!("{group}/{name}"), &kind),
            namespaced: text(spec, "scope").as_deref() != Some("Cluster"),
            status_subresource: v
                .get("subresources")
                .and_then(|s| s.get("status"))
                .is_some(),
            root,
            needs_metadata,
            id: h.finish(),
        })
    }

    /// The kind (`group/version`, `kind`).
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Namespaced (`scope: Namespaced`).
    pub fn namespaced(&self) -> bool {
        self.namespaced
    }

    /// Has a status subresource.
    pub fn status_subresource(&self) -> bool {
        self.status_subresource
    }

    /// A fingerprint of the CRD (memoisation key).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn view(&self, o: &DynamicObject) -> Value {
        let mut v = o.body().clone();
        if self.needs_metadata {
            // what CEL sees of the metadata (the API server validates the rest itself)
            let m = o.metadata();
            let mut meta = serde_json::Map::new();
            for (k, x) in [("name", &m.name), ("generateName", &m.generate_name)] {
                if let Some(x) = x {
                    meta.insert(k.into(), x.clone().into());
                }
            }
            v.insert("apiVersion".into(), o.kind().api_version().into());
            v.insert("kind".into(), o.kind().kind().into());
            v.insert("metadata".into(), Value::Object(meta));
        }
        Value::Object(v)
    }

    /// Every error of `new` (written over `old` on an update), unmemoised.
    pub fn errors(&self, new: &DynamicObject, old: Option<&DynamicObject>) -> Vec<FieldError> {
        let new = self.view(new);
        let new = self.root.defaulted(&new);
        let mut errs = Vec::new();
        self.root.check(&check::Path::ROOT, &new, &mut errs);
        if self.status_subresource {
            // the status subresource's schema validator names fields relative to `status`
            for e in &mut errs {
                if let Some(rel) = e.field.strip_prefix("status.") {
                    let from = format!(": {} in body ", e.field);
                    e.detail = e.detail.replacen(&from, &format!(": {rel} in body "), 1);
                }
            }
        }
        if errs.iter().any(|e| e.blocking) {
            errs.push(FieldError {
                field: String::new(),
                detail: "Invalid value: null: some validation rules were not checked because \
                         the object was invalid; correct the existing errors to complete \
                         validation"
                    .into(),
                blocking: false,
            });
            return errs;
        }
        let old = old.map(|o| self.view(o));
        let old = old.as_ref().map(|o| self.root.defaulted(o));
        rules::eval(&self.root, "", &new, old.as_deref(), &mut errs);
        errs
    }

    /// `Err` with the API server's message when `new` (written over `old` on an update) is
    /// invalid. Memoised per thread on the objects (hashed by their content fingerprints; a hit
    /// also compares the objects, so a fingerprint collision cannot return another pair's
    /// verdict).
    pub fn validate(&self, new: &DynamicObject, old: Option<&DynamicObject>) -> Result<(), String> {
        type Entry = (DynamicObject, Option<DynamicObject>, Result<(), String>);
        type Memo = HashMap<(u64, u64, u64), Vec<Entry>>;
        thread_local! {
            static MEMO: RefCell<Memo> = RefCell::new(HashMap::new());
        }
        let key = (
            self.id,
            new.fingerprint(),
            old.map_or(0, |o| o.fingerprint().wrapping_add(1)),
        );
        let hit = MEMO.with(|m| {
            m.borrow().get(&key).and_then(|v| {
                v.iter()
                    .find(|(n, o, _)| n == new && o.as_ref() == old)
                    .map(|(_, _, r)| r.clone())
            })
        });
        if let Some(r) = hit {
            return r;
        }
        let errs = self.errors(new, old);
        let r = match errs.len() {
            0 => Ok(()),
            1 => Err(errs[0].to_string()),
            _ => Err(format!(
                "[{}]",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        MEMO.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() > 200_000 {
                m.clear();
            }
            m.entry(key)
                .or_default()
                .push((new.clone(), old.cloned(), r.clone()));
        });
        r
    }
}
