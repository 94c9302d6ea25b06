//! The model evaluates a CRD's own schema and CEL rules (`x-kubernetes-validations`):
//! `self`, `oldSelf` transition rules, nested properties, arrays, maps, messages, defaults,
//! schema keywords, compile errors, and the API server's `Invalid` answers.

use anvil_cluster_model::{CrdValidator, Etcd, KindInfo, KindRegistry};
use anvil_objects::DynamicObject;
use anvil_reconciler::{ErrorReason, KubeRequest, KubeResponse};
use serde_json::{Value, json};

fn crd(schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.test.anvil.dev"},
        "spec": {"group": "test.anvil.dev", "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": schema}}]}
    })
}

fn object(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec, "status": {"type": "object"}}})
}

fn thing(spec: Value) -> DynamicObject {
    DynamicObject::from_json(json!({
        "apiVersion": "test.anvil.dev/v1", "kind": "Thing",
        "metadata": {"name": "t", "namespace": "default"},
        "spec": spec
    }))
    .unwrap()
}

fn validator(spec_schema: Value) -> CrdValidator {
    CrdValidator::from_crd(&crd(object(spec_schema))).unwrap()
}

#[test]
fn self_rules_with_messages() {
    let v = validator(json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "self >= 0 && self <= 10", "message": "replicas must be between 0 and 10"}]},
        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('a')"}]}
    }}));
    assert_eq!(
        v.validate(&thing(json!({"replicas": 3, "name": "ab"})), None),
        Ok(())
    );
    assert_eq!(
        v.validate(&thing(json!({"replicas": 11})), None),
        Err("spec.replicas: Invalid value: \"integer\": replicas must be between 0 and 10".into())
    );
    // no message: the rule itself; two errors are listed
    assert_eq!(
        v.validate(&thing(json!({"replicas": -1, "name": "b"})), None),
        Err(
            "[spec.name: Invalid value: \"string\": failed rule: self.startsWith('a'), \
             spec.replicas: Invalid value: \"integer\": replicas must be between 0 and 10]"
                .into()
        )
    );
}

#[test]
fn object_rules_see_nested_properties_and_message_expressions() {
    let v = validator(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.min <= self.max",
            "messageExpression": "'min ' + string(self.min) + ' exceeds max ' + string(self.max)"}],
        "properties": {
            "min": {"type": "integer"}, "max": {"type": "integer"},
            "inner": {"type": "object", "properties": {"deep": {"type": "object",
                "properties": {"x": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "has(self.x) && self.x % 2 == 0",
                    "message": "x must be even", "reason": "FieldValueForbidden"}]}}}
    }}));
    assert!(
        v.validate(&thing(json!({"min": 1, "max": 2})), None)
            .is_ok()
    );
    assert_eq!(
        v.validate(&thing(json!({"min": 3, "max": 2})), None),
        Err("spec: Invalid value: \"object\": min 3 exceeds max 2".into())
    );
    assert_eq!(
        v.validate(
            &thing(json!({"min": 1, "max": 2, "inner": {"deep": {"x": 3}}})),
            None
        ),
        Err("spec.inner.deep: Forbidden: x must be even".into())
    );
    assert!(
        v.validate(
            &thing(json!({"min": 1, "max": 2, "inner": {"deep": {}}})),
            None
        )
        .is_err()
    );
}

#[test]
fn transition_rules_only_on_updates_with_an_old_value() {
    let v = validator(json!({"type": "object", "properties": {
        "image": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "image is immutable"}]},
        "size": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "self >= oldSelf", "message": "size cannot shrink"}]},
        "once": {"type": "string", "x-kubernetes-validations": [
            {"rule": "!oldSelf.hasValue() || oldSelf.value() == self",
             "optionalOldSelf": true, "message": "once set, fixed"}]}
    }}));
    let old = thing(json!({"image": "a", "size": 2}));
    // creates: transition rules are not evaluated
    assert!(
        v.validate(&thing(json!({"image": "b", "size": 0})), None)
            .is_ok()
    );
    assert!(
        v.validate(&thing(json!({"image": "a", "size": 3})), Some(&old))
            .is_ok()
    );
    assert_eq!(
        v.validate(&thing(json!({"image": "b", "size": 2})), Some(&old)),
        Err("spec.image: Invalid value: \"string\": image is immutable".into())
    );
    assert!(
        v.validate(&thing(json!({"image": "a", "size": 1})), Some(&old))
            .unwrap_err()
            .contains("size cannot shrink")
    );
    // no old value at the path (the field is new): not evaluated
    assert!(
        v.validate(&thing(json!({"size": 2})), Some(&thing(json!({}))))
            .is_ok()
    );
    // optionalOldSelf: evaluated on creates too, with oldSelf an optional
    assert!(v.validate(&thing(json!({"once": "x"})), None).is_ok());
    let set = thing(json!({"once": "x"}));
    assert!(v.validate(&thing(json!({"once": "x"})), Some(&set)).is_ok());
    assert!(
        v.validate(&thing(json!({"once": "y"})), Some(&set))
            .unwrap_err()
            .contains("once set, fixed")
    );
}

#[test]
fn arrays_maps_and_list_map_correlation() {
    let v = validator(json!({"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-validations": [{"rule": "self.all(p, p.port > 0)", "message": "ports must be positive"}],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "port": {"type": "integer", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "port is immutable"}]}}}},
        "tags": {"type": "array", "items": {"type": "string",
            "x-kubernetes-validations": [{"rule": "size(self) <= 3", "message": "tag too long"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self != ''", "message": "empty label"}]}}
    }}));
    let old = thing(json!({"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}));
    assert!(v.validate(&old, None).is_ok());
    assert_eq!(
        v.validate(&thing(json!({"ports": [{"name": "a", "port": 0}]})), None),
        Err("spec.ports: Invalid value: \"array\": ports must be positive".into())
    );
    // items correlate by key: reordering is fine, changing b's port is not, a new item is new
    let reordered = thing(
        json!({"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1},
        {"name": "c", "port": 9}]}),
    );
    assert!(v.validate(&reordered, Some(&old)).is_ok());
    assert_eq!(
        v.validate(
            &thing(json!({"ports": [{"name": "b", "port": 3}]})),
            Some(&old)
        ),
        Err("spec.ports[0].port: Invalid value: \"integer\": port is immutable".into())
    );
    assert_eq!(
        v.validate(&thing(json!({"tags": ["ok", "toolong"]})), None),
        Err("spec.tags[1]: Invalid value: \"string\": tag too long".into())
    );
    assert_eq!(
        v.validate(&thing(json!({"labels": {"a": "x", "b": ""}})), None),
        Err("spec.labels[b]: Invalid value: \"string\": empty label".into())
    );
    // duplicate keys of a map list
    assert!(
        v.validate(
            &thing(json!({"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]})),
            None
        )
        .unwrap_err()
        .contains("spec.ports[1]: Duplicate value")
    );
}

#[test]
fn schema_keywords_and_type_errors_skip_the_rules() {
    let v = validator(json!({"type": "object", "required": ["size"],
        "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "size must be at most 10"}],
        "properties": {
            "size": {"type": "integer", "minimum": 0, "maximum": 100},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
            "ratio": {"type": "number"},
            "items": {"type": "array", "maxItems": 2, "items": {"type": "integer"}}
    }}));
    let e = |spec: Value| v.validate(&thing(spec), None).unwrap_err();
    assert!(
        v.validate(&thing(json!({"size": 1, "ratio": 1, "mode": "fast"})), None)
            .is_ok()
    );
    // a missing required field: the rules are not evaluated either
    assert_eq!(
        e(json!({})),
        "[spec.size: Required value, <nil>: Invalid value: null: some validation rules were \
         not checked because the object was invalid; correct the existing errors to complete \
         validation]"
    );
    assert_eq!(
        e(json!({"size": -1})),
        "spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0"
    );
    assert_eq!(
        e(json!({"size": 11})),
        "spec: Invalid value: \"object\": size must be at most 10"
    );
    assert!(
        e(json!({"size": 1, "mode": "medium"}))
            .starts_with("[spec.mode: Unsupported value: \"medium\": supported values: \"fast\", \"slow\", <nil>: Invalid value: null: some validation rules were not checked")
    );
    assert!(e(json!({"size": 1, "name": ""})).contains("should be at least 1 chars long"));
    assert!(e(json!({"size": 1, "name": "abcdef"})).contains("spec.name: Too long"));
    assert!(e(json!({"size": 1, "name": "A"})).contains("should match '^[a-z]+$'"));
    assert!(e(json!({"size": 1, "items": [1, 2, 3]})).contains("spec.items: Too many"));
    // a type error: the rules are skipped, as by the API server
    let t = e(json!({"size": "11"}));
    assert!(
        t.contains("spec.size in body must be of type integer"),
        "{t}"
    );
    assert!(t.contains("some validation rules were not checked"), "{t}");
    assert!(!t.contains("at most 10"), "{t}");
    assert!(e(json!({"size": 1.5})).contains("must be of type integer"));
    assert!(
        e(json!({"size": 1, "items": ["x"]}))
            .contains("spec.items[0] in body must be of type integer")
    );
}

#[test]
fn defaults_apply_before_validation() {
    let v = validator(json!({"type": "object", "properties": {
        "conf": {"type": "object", "default": {},
            "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min > max"}],
            "properties": {
                "min": {"type": "integer", "default": 4},
                "max": {"type": "integer", "default": 40}}},
        "ports": {"type": "object", "default": {"client": 2181},
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "ports are immutable"}],
            "properties": {"client": {"type": "integer", "default": 2181}}}
    }}));
    assert!(
        v.validate(&thing(json!({"conf": {"min": 10}})), None)
            .is_ok()
    );
    assert!(
        v.validate(&thing(json!({"conf": {"min": 41}})), None)
            .is_err()
    );
    // the old object had no ports: it defaults to the same ports
    assert!(
        v.validate(
            &thing(json!({"ports": {"client": 2181}})),
            Some(&thing(json!({})))
        )
        .is_ok()
    );
    assert!(
        v.validate(
            &thing(json!({"ports": {"client": 1}})),
            Some(&thing(json!({})))
        )
        .is_err()
    );
}

#[test]
fn escaped_property_names_and_root_rules() {
    let schema = json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('t')", "message": "bad name"}],
        "properties": {"spec": {"type": "object", "properties": {
            "x-y": {"type": "integer"}, "namespace": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.x__dash__y > 0 && self.__namespace__ != ''"}]}}});
    let v = CrdValidator::from_crd(&crd(schema)).unwrap();
    assert!(
        v.validate(&thing(json!({"x-y": 1, "namespace": "n"})), None)
            .is_ok()
    );
    assert!(
        v.validate(&thing(json!({"x-y": 0, "namespace": "n"})), None)
            .is_err()
    );
    let renamed = thing(json!({"x-y": 1, "namespace": "n"})).modify(|p| {
        p.metadata.name = Some("other".into());
    });
    assert_eq!(
        v.validate(&renamed, None),
        Err("<nil>: Invalid value: \"object\": bad name".into())
    );
}

#[test]
fn rules_that_do_not_compile_are_registration_errors() {
    for bad in ["self >", "self == unknownVariable", "foo(self"] {
        let c = crd(object(json!({"type": "object",
            "x-kubernetes-validations": [{"rule": bad}]})));
        let e = KindInfo::custom_resource_from_crd(&c).unwrap_err();
        assert!(e.to_string().contains("spec: rule"), "{bad}: {e}");
    }
    assert!(CrdValidator::from_crd(&json!({"spec": {}})).is_err());
    // comprehension variables, type names and library namespaces are fine
    let ok = crd(object(
        json!({"type": "object", "properties": {"xs": {"type": "array",
        "items": {"type": "integer"}}},
        "x-kubernetes-validations": [{"rule": "!has(self.xs) || self.xs.all(x, type(x) == int)"}]}),
    ));
    let v = CrdValidator::from_crd(&ok).unwrap();
    assert!(v.validate(&thing(json!({"xs": [1, 2]})), None).is_ok());
}

fn reason(r: KubeResponse) -> Option<ErrorReason> {
    r.error().map(|e| e.reason)
}

#[test]
fn the_api_server_model_answers_invalid() {
    let c = crd(object(
        json!({"type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "self <= 10", "message": "size must be at most 10"}]},
        "mode": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "mode is immutable"}]}}}),
    ));
    let info = KindInfo::custom_resource_from_crd(&c).unwrap();
    assert!(info.namespaced && info.status_subresource && info.custom);
    let kinds = KindRegistry::builtin().with(info);
    let mut etcd = Etcd::new();
    let big = etcd.handle(&kinds, &KubeRequest::Create(thing(json!({"size": 11}))));
    assert_eq!(reason(big), Some(ErrorReason::Invalid));
    let created = etcd.handle(
        &kinds,
        &KubeRequest::Create(thing(json!({"size": 1, "mode": "a"}))),
    );
    let stored = created.object().expect("created").clone();
    let with = |spec: Value| {
        stored.modify(|p| {
            p.body.insert("spec".into(), spec);
        })
    };
    let moded = etcd.handle(
        &kinds,
        &KubeRequest::Update(with(json!({"size": 2, "mode": "b"}))),
    );
    let e = moded.error().expect("mode is immutable");
    assert_eq!(e.reason, ErrorReason::Invalid);
    assert!(
        e.message
            .contains("spec.mode: Invalid value: \"string\": mode is immutable")
    );
    let scaled = etcd.handle(
        &kinds,
        &KubeRequest::Update(with(json!({"size": 2, "mode": "a"}))),
    );
    assert!(scaled.object().is_some(), "{scaled:?}");
    // the registry's id tells CRDs apart
    let other = crd(object(json!({"type": "object"})));
    let k2 = KindRegistry::builtin().with(KindInfo::custom_resource_from_crd(&other).unwrap());
    assert_ne!(kinds.id(), k2.id());
}
