//! Property tests: typed <-> dynamic <-> JSON round trips and hash stability.

use anvil_objects::{DynamicObject, Kind, Owner, is_controlled_by, is_owned_only_by};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec, Secret, Service,
    ServiceAccount, ServicePort, ServiceSpec,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::CustomResource;
use proptest::prelude::*;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "test.anvil.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    derive = "PartialEq"
)]
pub struct WidgetSpec {
    pub size: i32,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WidgetStatus {
    pub ready: bool,
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z]{1,6}", "[a-z0-9]{0,6}", 0..4)
}

fn meta() -> impl Strategy<Value = ObjectMeta> {
    (
        name(),
        name(),
        labels(),
        prop::option::of("[0-9]{1,5}"),
        prop::option::of(name()),
    )
        .prop_map(|(name, namespace, labels, rv, owner)| ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: (!labels.is_empty()).then_some(labels),
            resource_version: rv,
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: "test.anvil.dev/v1".into(),
                    kind: "Widget".into(),
                    name: o.clone(),
                    uid: format!("uid-{o}"),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        })
}

fn config_map() -> impl Strategy<Value = ConfigMap> {
    (meta(), labels()).prop_map(|(metadata, data)| ConfigMap {
        metadata,
        data: Some(data),
        ..Default::default()
    })
}

fn secret() -> impl Strategy<Value = Secret> {
    (
        meta(),
        prop::collection::btree_map("[a-z]{1,5}", prop::collection::vec(any::<u8>(), 0..8), 0..3),
    )
        .prop_map(|(metadata, data)| Secret {
            metadata,
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            type_: Some("Opaque".into()),
            ..Default::default()
        })
}

fn service() -> impl Strategy<Value = Service> {
    (meta(), 1..65535i32, any::<bool>()).prop_map(|(metadata, port, headless)| Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_string()),
            ports: Some(vec![ServicePort {
                name: Some("client".into()),
                port,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn stateful_set() -> impl Strategy<Value = StatefulSet> {
    (meta(), 0..10i32, name(), labels()).prop_map(|(metadata, replicas, image, labels)| {
        StatefulSet {
            metadata,
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                service_name: Some("svc".into()),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            image: Some(image),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    })
}

fn widget() -> impl Strategy<Value = Widget> {
    (
        meta(),
        any::<i32>(),
        prop::collection::vec(name(), 0..3),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(metadata, size, tags, ready)| {
            let mut w = Widget::new(metadata.name.as_deref().unwrap(), WidgetSpec { size, tags });
            w.metadata = metadata;
            w.status = ready.map(|ready| WidgetStatus { ready });
            w
        })
}

/// typed -> dynamic -> typed, dynamic -> JSON -> dynamic, and the fingerprint survives all.
fn round_trip<K>(obj: &K) -> Result<(), TestCaseError>
where
    K: kube::Resource<DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + PartialEq
        + std::fmt::Debug,
{
    let dynamic = DynamicObject::from_typed(obj).unwrap();
    prop_assert_eq!(dynamic.kind(), &Kind::of::<K>());
    let back: K = dynamic.to_typed().unwrap();
    prop_assert_eq!(&back, obj);
    let json = dynamic.to_json();
    prop_assert_eq!(&json, &serde_json::to_value(obj).unwrap());
    let reparsed = DynamicObject::from_json(json).unwrap();
    prop_assert_eq!(&reparsed, &dynamic);
    prop_assert_eq!(reparsed.fingerprint(), dynamic.fingerprint());
    let via_serde: DynamicObject =
        serde_json::from_str(&serde_json::to_string(&dynamic).unwrap()).unwrap();
    prop_assert_eq!(via_serde, dynamic);
    Ok(())
}

proptest! {
    #[test]
    fn config_maps_round_trip(cm in config_map()) { round_trip(&cm)?; }
    #[test]
    fn secrets_round_trip(s in secret()) { round_trip(&s)?; }
    #[test]
    fn services_round_trip(s in service()) { round_trip(&s)?; }
    #[test]
    fn stateful_sets_round_trip(s in stateful_set()) { round_trip(&s)?; }
    #[test]
    fn custom_resources_round_trip(w in widget()) { round_trip(&w)?; }

    #[test]
    fn fingerprint_ignores_map_insertion_order(data in labels()) {
        let forward: serde_json::Map<String, serde_json::Value> =
            data.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        let backward: serde_json::Map<String, serde_json::Value> =
            data.iter().rev().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        let json = |m: serde_json::Map<String, serde_json::Value>| serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "ns"}, "data": m,
        });
        let a = DynamicObject::from_json(json(forward)).unwrap();
        let b = DynamicObject::from_json(json(backward)).unwrap();
        prop_assert_eq!(a.fingerprint(), b.fingerprint());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn different_content_gives_different_objects(a in config_map(), b in config_map()) {
        let (da, db) = (DynamicObject::from_typed(&a).unwrap(), DynamicObject::from_typed(&b).unwrap());
        prop_assert_eq!(a == b, da == db);
        if a == b { prop_assert_eq!(da.fingerprint(), db.fingerprint()); }
    }
}

#[test]
fn every_supported_builtin_kind_round_trips() {
    let m = ObjectMeta {
        name: Some("x".into()),
        namespace: Some("ns".into()),
        ..Default::default()
    };
    fn check<K>(obj: K)
    where
        K: kube::Resource<DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + PartialEq
            + std::fmt::Debug,
    {
        round_trip(&obj).unwrap();
    }
    check(ServiceAccount {
        metadata: m.clone(),
        ..Default::default()
    });
    check(Role {
        metadata: m.clone(),
        rules: Some(vec![PolicyRule {
            verbs: vec!["get".into()],
            resources: Some(vec!["pods".into()]),
            api_groups: Some(vec!["".into()]),
            ..Default::default()
        }]),
    });
    check(RoleBinding {
        metadata: m.clone(),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "r".into(),
        },
        subjects: None,
    });
    check(DaemonSet {
        metadata: m.clone(),
        ..Default::default()
    });
    check(Pod {
        metadata: m.clone(),
        ..Default::default()
    });
    check(PersistentVolumeClaim {
        metadata: m,
        ..Default::default()
    });
}

/// The fingerprint is the same in every run and on every machine: pinned to a literal.
#[test]
fn fingerprint_is_stable_across_runs() {
    let obj = DynamicObject::from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        "data": {"a": "1", "b": "2"},
    }))
    .unwrap();
    assert_eq!(
        obj.fingerprint(),
        0x493c_3d34_5b33_89fc,
        "fingerprint changed: {:#x}",
        obj.fingerprint()
    );
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    for bad in [
        serde_json::json!(42),
        serde_json::json!({"kind": "ConfigMap", "metadata": {}}),
        serde_json::json!({"apiVersion": "v1", "metadata": {}}),
        serde_json::json!({"apiVersion": "v1", "kind": "", "metadata": {}}),
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 7}}),
    ] {
        assert!(DynamicObject::from_json(bad.clone()).is_err(), "{bad}");
    }
    let cm = DynamicObject::from_typed(&ConfigMap::default()).unwrap();
    assert!(cm.to_typed::<Secret>().is_err());
}

#[test]
fn modify_copies_on_write() {
    let a = DynamicObject::named(Kind::of::<ConfigMap>(), "ns", "a");
    let b = a.modify(|p| {
        p.body.insert("data".into(), serde_json::json!({"k": "v"}));
    });
    assert_ne!(a, b);
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert!(a.body().is_empty());
}

#[test]
fn owner_helpers() {
    let mut w = Widget::new(
        "w",
        WidgetSpec {
            size: 1,
            tags: vec![],
        },
    );
    w.metadata.namespace = Some("ns".into());
    w.metadata.uid = Some("uid-1".into());
    let owner_ref = anvil_objects::controller_owner_ref(&w).unwrap();
    let owner = Owner::of_reference(&owner_ref);
    let child = DynamicObject::named(Kind::of::<ConfigMap>(), "ns", "c")
        .modify(|p| p.metadata.owner_references = Some(vec![owner_ref.clone()]));
    assert!(is_controlled_by(&child, &owner));
    assert!(is_owned_only_by(&child, &owner));
    let other = Owner {
        uid: "uid-2".into(),
        ..owner.clone()
    };
    assert!(
        !is_controlled_by(&child, &other),
        "same name, new uid: not the same owner"
    );
    let two = child.modify(|p| {
        p.metadata
            .owner_references
            .as_mut()
            .unwrap()
            .push(OwnerReference {
                controller: None,
                ..other.controller_reference()
            });
    });
    assert!(is_controlled_by(&two, &owner));
    assert!(!is_owned_only_by(&two, &owner));
    let dynamic_w = DynamicObject::from_typed(&w).unwrap();
    assert_eq!(Owner::of_object(&dynamic_w), Some(owner));
}

/// Equality compares the 128-bit content hash: equal content in distinct allocations is
/// equal, and many near-identical objects (one character apart, key order changed) have
/// distinct hashes in both lanes exactly when their content differs.
#[test]
fn equality_follows_content_through_the_128_bit_hash() {
    let base = || DynamicObject::named(Kind::of::<ConfigMap>(), "ns", "a");
    let with = |k: &str, v: &str| {
        base().modify(|p| {
            p.body.insert("data".into(), serde_json::json!({ k: v }));
        })
    };
    assert_eq!(
        with("k", "v"),
        with("k", "v"),
        "distinct allocations, same content"
    );
    let mut seen = std::collections::HashMap::new();
    for i in 0..20_000u32 {
        let o = with("k", &format!("value-{i}"));
        let (a, b) = o.content_hash();
        assert!(seen.insert(a, i).is_none(), "first lane collides at {i}");
        assert_ne!(o, with("k", &format!("value-{}", i + 1)));
        assert_eq!(o, with("k", &format!("value-{i}")));
        assert_ne!(a, b, "the lanes differ");
    }
    let two = |first: &str| {
        base().modify(|p| {
            let mut m = serde_json::Map::new();
            for k in [first, if first == "x" { "y" } else { "x" }] {
                m.insert(k.into(), serde_json::json!(k));
            }
            p.body.insert("data".into(), serde_json::Value::Object(m));
        })
    };
    assert_eq!(two("x"), two("y"), "key order does not matter");
}
