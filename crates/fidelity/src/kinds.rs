//! The kinds the differential tests use, their test CRD, the model's view of them, and the
//! objects the generated requests carry.

use anvil_cluster_model::{KindInfo, KindRegistry};
use anvil_objects::{DynamicObject, Kind};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use std::fmt;

/// Group of the test CRD.
pub const GROUP: &str = "fidelity.anvil.dev";
/// The finalizer the generated objects may carry.
pub const FINALIZER: &str = "fidelity.anvil.dev/hold";

/// A kind the generated sequences address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TestKind {
    /// v1 ConfigMap: no status, no generation.
    ConfigMap,
    /// v1 Secret: no status, `type` defaulted.
    Secret,
    /// v1 Service: status subresource, many server defaults, create-on-update.
    Service,
    /// apps/v1 StatefulSet: status subresource, generation, validation, immutable fields,
    /// and the real StatefulSet controller writing status.
    StatefulSet,
    /// The test CRD `Widget`: status subresource, CEL rules including a transition rule.
    Widget,
}

impl TestKind {
    /// All kinds.
    pub const ALL: [TestKind; 5] = [
        TestKind::ConfigMap,
        TestKind::Secret,
        TestKind::Service,
        TestKind::StatefulSet,
        TestKind::Widget,
    ];

    /// The object kind.
    pub fn kind(self) -> Kind {
        match self {
            TestKind::ConfigMap => Kind::new("v1", "ConfigMap"),
            TestKind::Secret => Kind::new("v1", "Secret"),
            TestKind::Service => Kind::new("v1", "Service"),
            TestKind::StatefulSet => Kind::new("apps/v1", "StatefulSet"),
            TestKind::Widget => widget_kind(),
        }
    }

    /// Whether the kind has a status subresource.
    pub fn has_status(self) -> bool {
        matches!(
            self,
            TestKind::Service | TestKind::StatefulSet | TestKind::Widget
        )
    }

    /// The body (everything but metadata and status) of content variant `v` (0..4).
    ///
    /// Variants are chosen so that equal variants give no-op updates, different ones spec
    /// changes, and some are invalid (StatefulSet replicas -1, Widget size 11) or change an
    /// immutable field (StatefulSet serviceName, Widget mode).
    pub fn body(self, v: u8) -> Vec<(&'static str, Value)> {
        match self {
            TestKind::ConfigMap => {
                let data = match v {
                    0 => json!({"k": "v0"}),
                    1 => json!({"k": "v1"}),
                    2 => json!({"k": "v2"}),
                    _ => json!({"k": "v0", "k2": "x"}),
                };
                vec![("data", data)]
            }
            TestKind::Secret => {
                // base64 of v0, v1, v2, v3.
                let enc = ["djA=", "djE=", "djI=", "djM="][v as usize % 4];
                vec![("data", json!({ "k": enc }))]
            }
            TestKind::Service => {
                let port = 80 + i64::from(v % 4);
                vec![(
                    "spec",
                    json!({"ports": [{"port": port}], "selector": {"app": "x"}}),
                )]
            }
            TestKind::StatefulSet => {
                let image = if v == 1 {
                    "busybox:1.37"
                } else {
                    "busybox:1.36"
                };
                let replicas = if v == 2 { -1 } else { 0 };
                let service = if v == 3 { "svc2" } else { "svc" };
                vec![(
                    "spec",
                    json!({
                        "replicas": replicas,
                        "serviceName": service,
                        "selector": {"matchLabels": {"app": "s"}},
                        "template": {
                            "metadata": {"labels": {"app": "s"}},
                            "spec": {"containers": [{"name": "c", "image": image}]}
                        }
                    }),
                )]
            }
            TestKind::Widget => {
                let (size, mode) = match v {
                    0 => (1, "fast"),
                    1 => (5, "fast"),
                    2 => (11, "fast"),
                    _ => (2, "slow"),
                };
                vec![("spec", json!({"size": size, "mode": mode}))]
            }
        }
    }

    /// Whether status variant `s` has the types its schema says (only the `Widget`'s `s2`,
    /// with a string `count`, does not). A main-resource write that carries an ill-typed
    /// status makes the real server drop the object's managedFields (its field manager cannot
    /// type the object), a change the model does not keep: FIDELITY.md, K2.
    pub fn status_is_well_typed(self, s: u8) -> bool {
        !(self == TestKind::Widget && s % 3 == 2)
    }

    /// Status variant `s` (0..3) for kinds with a status subresource.
    pub fn status(self, s: u8) -> Option<Value> {
        let s = s % 3;
        match self {
            TestKind::ConfigMap | TestKind::Secret => None,
            TestKind::Service => Some(match s {
                0 => json!({}),
                1 => json!({"loadBalancer": {"ingress": [{"ip": "10.1.1.1"}]}}),
                _ => json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}),
            }),
            TestKind::StatefulSet => Some(match s {
                // Drops collisionCount, which the real server refuses once the StatefulSet
                // controller has set it (FIDELITY.md D6).
                0 => json!({"replicas": 0, "availableReplicas": 0}),
                1 => {
                    json!({"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "collisionCount": 0})
                }
                _ => {
                    json!({"replicas": 1, "currentReplicas": 1, "availableReplicas": 0, "collisionCount": 0})
                }
            }),
            TestKind::Widget => Some(match s {
                0 => json!({"phase": "A"}),
                1 => json!({"phase": "B", "count": 1}),
                // Invalid: the schema says count is an integer.
                _ => json!({"phase": "C", "count": "many"}),
            }),
        }
    }
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The test CRD's kind.
pub fn widget_kind() -> Kind {
    Kind::new(&format!("{GROUP}/v1"), "Widget")
}

/// The test CRD: `Widget` with a status subresource; `spec.size` an integer >= 0 and (CEL)
/// <= 10; `spec.mode` immutable (CEL transition rule `self == oldSelf`); `status.phase` a
/// string and `status.count` an integer.
pub fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
      "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": format!("widgets.{GROUP}")},
      "spec": {"group": GROUP, "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{"name": "v1", "served": true, "storage": true,
          "subresources": {"status": {}},
          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size", "mode"],
              "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "size must be at most 10"}],
              "properties": {
                "size": {"type": "integer", "minimum": 0},
                "mode": {"type": "string",
                  "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "mode is immutable"}]}}},
            "status": {"type": "object", "properties": {
              "phase": {"type": "string"}, "count": {"type": "integer"}}}}}}}]}
    }))
    .expect("the test CRD is well formed")
}

/// The model's kinds: the built-ins plus `Widget`, registered exactly as a controller author
/// would: from the CRD, whose schema and CEL rules the model evaluates.
pub fn registry() -> KindRegistry {
    let crd = serde_json::to_value(widget_crd()).expect("the test CRD serialises");
    let widget =
        KindInfo::custom_resource_from_crd(&crd).unwrap_or_else(|e| panic!("the test CRD: {e}"));
    KindRegistry::builtin().with(widget)
}

/// A namespaced object of `kind` from JSON parts.
pub fn object(
    kind: &Kind,
    namespace: &str,
    meta: serde_json::Map<String, Value>,
    body: Vec<(&str, Value)>,
) -> DynamicObject {
    let mut m = meta;
    m.insert("namespace".into(), namespace.into());
    let mut j = serde_json::Map::new();
    j.insert("apiVersion".into(), kind.api_version().into());
    j.insert("kind".into(), kind.kind().into());
    j.insert("metadata".into(), Value::Object(m));
    for (k, v) in body {
        j.insert(k.into(), v);
    }
    DynamicObject::from_json(Value::Object(j)).expect("well-formed test object")
}
