//! One test (at least) per API server rule of the cluster model.

use anvil_cluster_model::api::Etcd;
use anvil_cluster_model::kinds::{KindInfo, KindRegistry};
use anvil_cluster_model::tokens::{Space, token};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner};
use anvil_reconciler::{ErrorReason, KubeRequest, KubeResponse, Preconditions};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The model's resourceVersion token `n`.
fn rv(n: u64) -> String {
    token(Space::Rv, n)
}

/// The model's uid token `n`.
fn uid(n: u64) -> String {
    token(Space::Uid, n)
}

fn cr_kind() -> Kind {
    Kind::new("demo.anvil.dev/v1", "Thing")
}

fn kinds() -> KindRegistry {
    fn validate(o: &DynamicObject) -> Result<(), String> {
        match o.spec().and_then(|s| s.get("size")).and_then(Value::as_i64) {
            Some(n) if (0..=10).contains(&n) => Ok(()),
            _ => Err("spec.size: must be between 0 and 10".into()),
        }
    }
    fn transition(old: &DynamicObject, new: &DynamicObject) -> Result<(), String> {
        if old.spec().and_then(|s| s.get("image")) != new.spec().and_then(|s| s.get("image")) {
            return Err("spec.image: image is immutable".into());
        }
        Ok(())
    }
    KindRegistry::builtin().with(
        KindInfo::custom_resource(cr_kind())
            .with_validation(validate)
            .with_transition_validation(transition)
            .with_default_status(Some(json!({"ready": 0}))),
    )
}

fn obj(v: Value) -> DynamicObject {
    DynamicObject::from_json(v).unwrap()
}

fn cm(name: &str) -> DynamicObject {
    obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"a": "1"}}))
}

fn thing(name: &str, size: i64) -> DynamicObject {
    obj(json!({"apiVersion": "demo.anvil.dev/v1", "kind": "Thing",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"size": size, "image": "nginx"}, "status": {"ready": 7}}))
}

fn sts(name: &str, replicas: i64) -> DynamicObject {
    obj(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "serviceName": "svc", "selector": {"matchLabels": {"app": name}}}}))
}

fn reason<T: std::fmt::Debug>(r: Result<T, anvil_reconciler::ApiError>) -> ErrorReason {
    r.expect_err("expected an error").reason
}

fn setup() -> (Etcd, KindRegistry) {
    (Etcd::new(), kinds())
}

#[test]
fn objects_are_keyed_by_kind_namespace_name() {
    let (mut e, k) = setup();
    e.create(&k, &cm("a")).unwrap();
    let other_ns = cm("a").modify(|p| p.metadata.namespace = Some("other".into()));
    e.create(&k, &other_ns).unwrap();
    let secret = obj(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "namespace": "default"}}),
    );
    e.create(&k, &secret).unwrap();
    assert_eq!(e.objects.len(), 3);
    assert!(
        e.get_obj(&ObjectRef::new(Kind::new("v1", "ConfigMap"), "other", "a"))
            .is_ok()
    );
}

#[test]
fn resource_version_bumps_once_per_successful_write() {
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("a")).unwrap();
    assert_eq!(a.resource_version(), Some(rv(1).as_str()));
    let b = e
        .update(
            &k,
            &a.modify(|p| {
                p.body.insert("data".into(), json!({"a": "2"}));
            }),
        )
        .unwrap();
    assert_eq!(b.resource_version(), Some(rv(2).as_str()));
    // a failed write does not bump
    assert!(e.create(&k, &cm("a")).is_err());
    let c = e.create(&k, &cm("c")).unwrap();
    assert_eq!(c.resource_version(), Some(rv(3).as_str()));
}

#[test]
fn uid_is_assigned_on_create() {
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("a")).unwrap();
    let b = e.create(&k, &cm("b")).unwrap();
    assert!(a.uid().is_some() && b.uid().is_some());
    assert_ne!(a.uid(), b.uid());
}

#[test]
fn generate_name_picks_a_fresh_name() {
    let (mut e, k) = setup();
    let g = cm("").modify(|p| {
        p.metadata.name = None;
        p.metadata.generate_name = Some("gen-".into());
    });
    let a = e.create(&k, &g).unwrap();
    let b = e.create(&k, &g).unwrap();
    assert!(a.name().starts_with("gen-") && b.name().starts_with("gen-"));
    assert_ne!(a.name(), b.name());
}

#[test]
fn create_requires_name_or_generate_name() {
    let (mut e, k) = setup();
    let nameless = cm("").modify(|p| p.metadata.name = None);
    assert_eq!(reason(e.create(&k, &nameless)), ErrorReason::Invalid);
}

#[test]
fn create_checks_namespace_consistency() {
    let (mut e, k) = setup();
    let no_ns = cm("a").modify(|p| p.metadata.namespace = None);
    assert_eq!(reason(e.create(&k, &no_ns)), ErrorReason::BadRequest);
}

#[test]
fn create_sets_default_status_for_status_subresource_kinds() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    assert_eq!(t.status(), Some(&json!({"ready": 0})));
    assert_eq!(t.metadata().generation, Some(1));
    let c = e.create(&k, &cm("a")).unwrap();
    assert_eq!(c.status(), None);
}

#[test]
fn create_validates_with_the_kinds_rules() {
    let (mut e, k) = setup();
    assert_eq!(reason(e.create(&k, &thing("t", 11))), ErrorReason::Invalid);
    assert_eq!(reason(e.create(&k, &sts("s", -1))), ErrorReason::Invalid);
    assert!(e.objects.is_empty());
}

#[test]
fn create_rejects_existing_names() {
    let (mut e, k) = setup();
    e.create(&k, &cm("a")).unwrap();
    assert_eq!(reason(e.create(&k, &cm("a"))), ErrorReason::AlreadyExists);
}

#[test]
fn at_most_one_controller_owner_reference() {
    let (mut e, k) = setup();
    let o1 = Owner {
        api_version: "v1".into(),
        kind: "X".into(),
        name: "x".into(),
        uid: uid(9),
    };
    let o2 = Owner {
        name: "y".into(),
        ..o1.clone()
    };
    let two = cm("a").modify(|p| {
        p.metadata.owner_references =
            Some(vec![o1.controller_reference(), o2.controller_reference()])
    });
    assert_eq!(reason(e.create(&k, &two)), ErrorReason::Invalid);
    let a = e.create(&k, &cm("a")).unwrap();
    let two = a.modify(|p| {
        p.metadata.owner_references =
            Some(vec![o1.controller_reference(), o2.controller_reference()])
    });
    assert_eq!(reason(e.update(&k, &two)), ErrorReason::Invalid);
}

#[test]
fn get_and_list_are_consistent_reads_with_label_selectors() {
    let (mut e, k) = setup();
    assert_eq!(
        reason(e.get_obj(&cm("a").object_ref())),
        ErrorReason::NotFound
    );
    let a = e
        .create(
            &k,
            &cm("a").modify(|p| {
                p.metadata.labels = Some([("app".to_string(), "x".to_string())].into())
            }),
        )
        .unwrap();
    e.create(&k, &cm("b")).unwrap();
    assert_eq!(e.get_obj(&a.object_ref()).unwrap(), a);
    let kind = Kind::new("v1", "ConfigMap");
    assert_eq!(e.list_objs(&kind, "default", &BTreeMap::new()).len(), 2);
    let sel: BTreeMap<String, String> = [("app".to_string(), "x".to_string())].into();
    let l = e.list_objs(&kind, "default", &sel);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name(), "a");
    assert!(e.list_objs(&kind, "other", &BTreeMap::new()).is_empty());
}

#[test]
fn update_of_missing_object_is_not_found() {
    let (mut e, k) = setup();
    assert_eq!(reason(e.update(&k, &cm("a"))), ErrorReason::NotFound);
}

#[test]
fn update_checks_name_and_namespace() {
    let (mut e, k) = setup();
    e.create(&k, &cm("a")).unwrap();
    let nameless = cm("a").modify(|p| p.metadata.name = None);
    assert_eq!(reason(e.update(&k, &nameless)), ErrorReason::BadRequest);
    let no_ns = cm("a").modify(|p| p.metadata.namespace = None);
    assert_eq!(reason(e.update(&k, &no_ns)), ErrorReason::BadRequest);
}

#[test]
fn stale_resource_version_is_a_conflict() {
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("a")).unwrap();
    let b = e
        .update(
            &k,
            &a.modify(|p| {
                p.body.insert("data".into(), json!({"a": "2"}));
            }),
        )
        .unwrap();
    assert_ne!(a.resource_version(), b.resource_version());
    let stale = a.modify(|p| {
        p.body.insert("data".into(), json!({"a": "3"}));
    });
    assert_eq!(reason(e.update(&k, &stale)), ErrorReason::Conflict);
}

#[test]
fn uid_mismatch_is_a_conflict() {
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("a")).unwrap();
    let wrong = a.modify(|p| p.metadata.uid = Some(uid(77)));
    assert_eq!(reason(e.update(&k, &wrong)), ErrorReason::Conflict);
}

#[test]
fn unconditional_update_only_for_builtin_kinds() {
    let (mut e, k) = setup();
    e.create(&k, &cm("a")).unwrap();
    let uncond = cm("a").modify(|p| {
        p.body.insert("data".into(), json!({"a": "9"}));
    });
    assert!(e.update(&k, &uncond).is_ok());
    e.create(&k, &thing("t", 1)).unwrap();
    assert_eq!(reason(e.update(&k, &thing("t", 2))), ErrorReason::Invalid);
}

#[test]
fn update_does_not_change_status() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let u = e
        .update(
            &k,
            &t.modify(|p| {
                p.body.insert("status".into(), json!({"ready": 5}));
            }),
        )
        .unwrap();
    assert_eq!(u.status(), Some(&json!({"ready": 0})));
    // and a write that only touches status through Update is a no-op
    assert_eq!(u.resource_version(), t.resource_version());
}

#[test]
fn no_op_write_does_not_bump_resource_version() {
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("a")).unwrap();
    let b = e.update(&k, &a).unwrap();
    assert_eq!(a.resource_version(), b.resource_version());
    assert_eq!(e.rv, 1);
    let s = e.create(&k, &sts("s", 1)).unwrap();
    let s2 = e.update_status(&k, &s).unwrap();
    assert_eq!(s.resource_version(), s2.resource_version());
}

#[test]
fn generation_bumps_on_spec_change_only() {
    let (mut e, k) = setup();
    let s = e.create(&k, &sts("s", 1)).unwrap();
    assert_eq!(s.metadata().generation, Some(1));
    let s2 = e
        .update(
            &k,
            &s.modify(|p| {
                p.body
                    .insert("spec".into(), sts("s", 2).spec().unwrap().clone());
            }),
        )
        .unwrap();
    assert_eq!(s2.metadata().generation, Some(2));
    let s3 = e
        .update(
            &k,
            &s2.modify(|p| p.metadata.labels = Some([("a".to_string(), "b".to_string())].into())),
        )
        .unwrap();
    assert_eq!(s3.metadata().generation, Some(2));
    assert_ne!(s3.resource_version(), s2.resource_version());
    let s4 = e
        .update_status(
            &k,
            &s3.modify(|p| {
                p.body.insert("status".into(), json!({"replicas": 2}));
            }),
        )
        .unwrap();
    assert_eq!(s4.metadata().generation, Some(2));
}

#[test]
fn transition_validation_rejects_immutable_field_changes() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let changed = t.modify(|p| {
        p.body
            .insert("spec".into(), json!({"size": 1, "image": "other"}));
    });
    assert_eq!(reason(e.update(&k, &changed)), ErrorReason::Invalid);
    let s = e.create(&k, &sts("s", 1)).unwrap();
    let changed = s.modify(|p| { p.body.insert("spec".into(), json!({"replicas": 1, "serviceName": "other", "selector": {"matchLabels": {"app": "s"}}})); });
    assert_eq!(reason(e.update(&k, &changed)), ErrorReason::Invalid);
    let invalid = t.modify(|p| {
        p.body
            .insert("spec".into(), json!({"size": 12, "image": "nginx"}));
    });
    assert_eq!(reason(e.update(&k, &invalid)), ErrorReason::Invalid);
}

fn with_finalizer(o: DynamicObject) -> DynamicObject {
    o.modify(|p| p.metadata.finalizers = Some(vec!["keep".into()]))
}

#[test]
fn delete_with_finalizers_sets_deletion_timestamp() {
    let (mut e, k) = setup();
    let a = e.create(&k, &with_finalizer(cm("a"))).unwrap();
    e.delete(&k, &a.object_ref(), None).unwrap();
    let d = e.get_obj(&a.object_ref()).unwrap();
    assert!(d.metadata().deletion_timestamp.is_some());
    assert_ne!(d.resource_version(), a.resource_version());
}

#[test]
fn no_new_finalizers_once_deleting() {
    let (mut e, k) = setup();
    let a = e.create(&k, &with_finalizer(cm("a"))).unwrap();
    e.delete(&k, &a.object_ref(), None).unwrap();
    let d = e.get_obj(&a.object_ref()).unwrap();
    let more = d.modify(|p| p.metadata.finalizers = Some(vec!["keep".into(), "more".into()]));
    assert_eq!(reason(e.update(&k, &more)), ErrorReason::Invalid);
}

#[test]
fn removing_the_last_finalizer_of_a_deleting_object_deletes_it() {
    let (mut e, k) = setup();
    let a = e.create(&k, &with_finalizer(cm("a"))).unwrap();
    e.delete(&k, &a.object_ref(), None).unwrap();
    let d = e.get_obj(&a.object_ref()).unwrap();
    e.update(&k, &d.modify(|p| p.metadata.finalizers = None))
        .unwrap();
    assert_eq!(reason(e.get_obj(&a.object_ref())), ErrorReason::NotFound);
}

#[test]
fn delete_without_finalizers_removes_and_checks_preconditions() {
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("a")).unwrap();
    let bad_uid = Preconditions {
        uid: Some(uid(42)),
        resource_version: None,
    };
    assert_eq!(
        reason(e.delete(&k, &a.object_ref(), Some(&bad_uid))),
        ErrorReason::Conflict
    );
    let bad_rv = Preconditions {
        uid: None,
        resource_version: Some(rv(42)),
    };
    assert_eq!(
        reason(e.delete(&k, &a.object_ref(), Some(&bad_rv))),
        ErrorReason::Conflict
    );
    let good = Preconditions {
        uid: a.uid().map(String::from),
        resource_version: a.resource_version().map(String::from),
    };
    e.delete(&k, &a.object_ref(), Some(&good)).unwrap();
    assert_eq!(
        reason(e.delete(&k, &a.object_ref(), None)),
        ErrorReason::NotFound
    );
}

#[test]
fn update_status_changes_only_status() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let w = t.modify(|p| {
        p.body.insert("status".into(), json!({"ready": 3}));
        p.body
            .insert("spec".into(), json!({"size": 9, "image": "nginx"}));
        p.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    });
    let u = e.update_status(&k, &w).unwrap();
    assert_eq!(u.status(), Some(&json!({"ready": 3})));
    assert_eq!(u.spec(), t.spec());
    assert_eq!(u.metadata().labels, None);
    // stale status writes conflict too
    assert_eq!(reason(e.update_status(&k, &w)), ErrorReason::Conflict);
    // kinds without a status subresource have no status endpoint
    let c = e.create(&k, &cm("c")).unwrap();
    assert_eq!(reason(e.update_status(&k, &c)), ErrorReason::NotFound);
}

fn owner_of(o: &DynamicObject) -> Owner {
    Owner::of_object(o).unwrap()
}

#[test]
fn get_then_update_is_atomic_and_aborts_without_the_owner() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let owner = owner_of(&t);
    let a = e
        .create(
            &k,
            &cm("a")
                .modify(|p| p.metadata.owner_references = Some(vec![owner.controller_reference()])),
        )
        .unwrap();
    // changed in between: GetThenUpdate still succeeds with the current resourceVersion
    e.update(
        &k,
        &a.modify(|p| {
            p.body.insert("data".into(), json!({"a": "x"}));
        }),
    )
    .unwrap();
    let w = a.modify(|p| {
        p.body.insert("data".into(), json!({"a": "y"}));
    });
    let r = e.handle(
        &k,
        &KubeRequest::GetThenUpdate {
            obj: w.clone(),
            owner: owner.clone(),
        },
    );
    let KubeResponse::GetThenUpdate(Ok(stored)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(stored.body()["data"], json!({"a": "y"}));
    // a different owner (same name, new uid): TransactionAbort
    let other = Owner {
        uid: uid(99),
        ..owner.clone()
    };
    let r = e.handle(
        &k,
        &KubeRequest::GetThenUpdate {
            obj: w.clone(),
            owner: other.clone(),
        },
    );
    assert_eq!(r.error().unwrap().reason, ErrorReason::TransactionAbort);
    let r = e.handle(
        &k,
        &KubeRequest::GetThenDelete {
            key: a.object_ref(),
            owner: other,
        },
    );
    assert_eq!(r.error().unwrap().reason, ErrorReason::TransactionAbort);
    let r = e.handle(
        &k,
        &KubeRequest::GetThenDelete {
            key: a.object_ref(),
            owner: owner.clone(),
        },
    );
    assert!(r.error().is_none());
    assert!(e.get_obj(&a.object_ref()).is_err());
}

#[test]
fn get_then_update_status_writes_only_status_of_owned_objects() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let owner = owner_of(&t);
    let s = e
        .create(
            &k,
            &sts("s", 1)
                .modify(|p| p.metadata.owner_references = Some(vec![owner.controller_reference()])),
        )
        .unwrap();
    let w = s.modify(|p| {
        p.body.insert("status".into(), json!({"replicas": 1}));
        p.body.insert("spec".into(), json!({}));
    });
    let r = e.handle(&k, &KubeRequest::GetThenUpdateStatus { obj: w, owner });
    let KubeResponse::GetThenUpdateStatus(Ok(stored)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(stored.status(), Some(&json!({"replicas": 1})));
    assert_eq!(stored.spec(), s.spec());
}

// Fixes found by the differential test against a real kube-apiserver (FIDELITY.md).

#[test]
fn services_have_no_generation() {
    let (mut e, k) = setup();
    let svc = obj(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}));
    let s = e.create(&k, &svc).unwrap();
    assert_eq!(s.metadata().generation, None);
}

#[test]
fn deletion_with_finalizers_bumps_generation() {
    let (mut e, k) = setup();
    let s = e.create(&k, &with_finalizer(sts("s", 1))).unwrap();
    e.delete(&k, &s.object_ref(), None).unwrap();
    assert_eq!(
        e.get_obj(&s.object_ref()).unwrap().metadata().generation,
        Some(2)
    );
}

#[test]
fn custom_resources_are_created_without_status() {
    let (mut e, _) = setup();
    let k = KindRegistry::builtin().with(KindInfo::custom_resource(cr_kind()));
    let t = e.create(&k, &thing("t", 1)).unwrap();
    assert_eq!(t.status(), None);
}

#[test]
fn discarded_status_is_not_validated_and_existence_comes_first() {
    fn validate(o: &DynamicObject) -> Result<(), String> {
        match o.status().and_then(|s| s.get("ready")) {
            Some(v) if !v.is_i64() => Err("status.ready: must be an integer".into()),
            _ => Ok(()),
        }
    }
    let (mut e, _) = setup();
    let k = KindRegistry::builtin()
        .with(KindInfo::custom_resource(cr_kind()).with_validation(validate));
    let bad_status = thing("t", 1).modify(|p| {
        p.body.insert("status".into(), json!({"ready": "many"}));
    });
    let t = e.create(&k, &bad_status).unwrap();
    assert_eq!(
        reason(e.create(&k, &bad_status)),
        ErrorReason::AlreadyExists
    );
    let upd = t.modify(|p| {
        p.body.insert("status".into(), json!({"ready": "many"}));
    });
    assert!(e.update(&k, &upd).is_ok());
}

#[test]
fn update_takes_generate_name_from_the_body() {
    let (mut e, k) = setup();
    let g = cm("").modify(|p| {
        p.metadata.name = None;
        p.metadata.generate_name = Some("gen-".into());
    });
    let a = e.create(&k, &g).unwrap();
    let b = e
        .update(&k, &a.modify(|p| p.metadata.generate_name = None))
        .unwrap();
    assert_eq!(b.metadata().generate_name, None);
    assert_ne!(a.resource_version(), b.resource_version());
}

#[test]
fn finalizer_removal_answers_with_the_last_stored_resource_version() {
    let (mut e, k) = setup();
    let a = e.create(&k, &with_finalizer(cm("a"))).unwrap();
    e.delete(&k, &a.object_ref(), None).unwrap();
    let d = e.get_obj(&a.object_ref()).unwrap();
    let gone = e
        .update(&k, &d.modify(|p| p.metadata.finalizers = None))
        .unwrap();
    assert_eq!(gone.resource_version(), d.resource_version());
}

#[test]
fn uid_precondition_is_checked_before_requiring_a_resource_version() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let wrong = t.modify(|p| {
        p.metadata.uid = Some(uid(77));
        p.metadata.resource_version = None;
    });
    assert_eq!(reason(e.update(&k, &wrong)), ErrorReason::Conflict);
}

#[test]
fn statefulset_status_update_takes_metadata_from_the_body() {
    let (mut e, k) = setup();
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let owner = owner_of(&t);
    let s = e
        .create(
            &k,
            &sts("s", 1)
                .modify(|p| p.metadata.owner_references = Some(vec![owner.controller_reference()])),
        )
        .unwrap();
    let w = s.modify(|p| {
        p.metadata.owner_references = None;
        p.body.insert("status".into(), json!({"replicas": 1}));
        p.body.insert("spec".into(), json!({"replicas": 5}));
    });
    let u = e.update_status(&k, &w).unwrap();
    assert_eq!(u.metadata().owner_references, None);
    assert_eq!(u.spec(), s.spec());
    assert_eq!(u.status(), Some(&json!({"replicas": 1})));
}

#[test]
fn service_update_creates_a_missing_service() {
    let (mut e, k) = setup();
    let svc = obj(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "default", "resourceVersion": rv(9)},
        "spec": {"ports": [{"port": 80}]}}));
    let s = e.update(&k, &svc).unwrap();
    assert!(s.uid().is_some());
    assert!(e.get_obj(&svc.object_ref()).is_ok());
    // other kinds: NotFound
    assert_eq!(reason(e.update(&k, &cm("zz"))), ErrorReason::NotFound);
}

#[test]
fn service_create_on_update_checks_a_uid_precondition() {
    // FIDELITY.md D13: the uid precondition is checked against the missing (empty) object.
    let (mut e, k) = setup();
    let svc = obj(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "default", "uid": uid(9)},
        "spec": {"ports": [{"port": 80}]}}));
    assert_eq!(reason(e.update(&k, &svc)), ErrorReason::Conflict);
    assert!(e.get_obj(&svc.object_ref()).is_err());
}

#[test]
fn status_writes_are_validated() {
    fn validate(o: &DynamicObject) -> Result<(), String> {
        match o.status().and_then(|s| s.get("ready")) {
            Some(v) if !v.is_i64() => Err("status.ready: must be an integer".into()),
            _ => Ok(()),
        }
    }
    let (mut e, _) = setup();
    let k = KindRegistry::builtin()
        .with(KindInfo::custom_resource(cr_kind()).with_validation(validate));
    let t = e.create(&k, &thing("t", 1)).unwrap();
    let bad = t.modify(|p| {
        p.body.insert("status".into(), json!({"ready": "many"}));
    });
    assert_eq!(reason(e.update_status(&k, &bad)), ErrorReason::Invalid);
}

#[test]
fn create_validates_before_checking_existence() {
    // FIDELITY.md D11: the real server validates in BeforeCreate, before the storage
    // answers AlreadyExists.
    let (mut e, k) = setup();
    e.create(&k, &thing("t", 1)).unwrap();
    assert_eq!(reason(e.create(&k, &thing("t", 11))), ErrorReason::Invalid);
    assert_eq!(
        reason(e.create(&k, &thing("t", 2))),
        ErrorReason::AlreadyExists
    );
}

#[test]
fn statefulset_collision_count_cannot_be_decremented() {
    // FIDELITY.md D12: status writes are checked by the kind's transition rules; the
    // StatefulSet status strategy refuses to decrement (or drop) status.collisionCount.
    let (mut e, k) = setup();
    let s = e.create(&k, &sts("s", 1)).unwrap();
    let with = |c: Option<i64>| {
        move |p: &mut anvil_objects::ObjectParts| {
            let mut st = json!({"replicas": 0});
            if let Some(c) = c {
                st["collisionCount"] = json!(c);
            }
            p.body.insert("status".into(), st);
        }
    };
    let s = e.update_status(&k, &s.modify(with(Some(1)))).unwrap();
    assert_eq!(
        reason(e.update_status(&k, &s.modify(with(Some(0))))),
        ErrorReason::Invalid
    );
    assert_eq!(
        reason(e.update_status(&k, &s.modify(with(None)))),
        ErrorReason::Invalid
    );
    assert!(e.update_status(&k, &s.modify(with(Some(2)))).is_ok());
}

#[test]
fn garbage_is_an_object_none_of_whose_owners_resolves() {
    use anvil_cluster_model::api::garbage_collectable;
    let (mut e, k) = setup();
    let a = e.create(&k, &cm("owner-a")).unwrap();
    let b = e.create(&k, &cm("owner-b")).unwrap();
    let owned = |name: &str, owners: &[&DynamicObject]| {
        let refs = owners.iter().map(|o| owner_of(o).controller_reference());
        with_finalizer(cm(name)).modify(|p| {
            p.metadata.owner_references = Some(refs.collect());
            p.metadata.finalizers = None;
        })
    };
    let plain = e.create(&k, &cm("plain")).unwrap();
    let d1 = e.create(&k, &owned("d1", &[&a])).unwrap();
    // two controller references are invalid: use a non-controller second reference
    let d2 = e
        .create(
            &k,
            &owned("d2", &[&a]).modify(|p| {
                let mut r = owner_of(&b).controller_reference();
                r.controller = None;
                p.metadata.owner_references.as_mut().unwrap().push(r);
            }),
        )
        .unwrap();
    // a reference naming another kind (or apiVersion) than the owner's does not resolve
    fn wrong_kind(r: &mut anvil_objects::OwnerReference) {
        r.kind = "Secret".into();
    }
    fn wrong_version(r: &mut anvil_objects::OwnerReference) {
        r.api_version = "v2".into();
    }
    let wrong = [("d3", wrong_kind as fn(&mut _)), ("d4", wrong_version)];
    for (name, spoil) in wrong {
        let o = e
            .create(
                &k,
                &owned(name, &[&b])
                    .modify(|p| spoil(&mut p.metadata.owner_references.as_mut().unwrap()[0])),
            )
            .unwrap();
        assert!(garbage_collectable(&e, &o.object_ref()), "{o:?}");
    }
    for o in [&a, &b, &plain, &d1, &d2] {
        assert!(!garbage_collectable(&e, &o.object_ref()));
    }
    e.delete(&k, &a.object_ref(), None).unwrap();
    assert!(garbage_collectable(&e, &d1.object_ref()));
    assert!(
        !garbage_collectable(&e, &d2.object_ref()),
        "owner b still resolves"
    );
    // an owner recreated under the same name has a new uid: it does not resolve
    e.create(&k, &cm("owner-a")).unwrap();
    assert!(garbage_collectable(&e, &d1.object_ref()));
    e.collect_garbage(&k, &d1.object_ref()).unwrap();
    assert!(e.get_obj(&d1.object_ref()).is_err());
    assert!(!garbage_collectable(&e, &d1.object_ref()));
}

#[test]
fn service_load_balancer_ingress_needs_type_load_balancer() {
    // FIDELITY.md D14: ValidateLoadBalancerStatus.
    let (mut e, k) = setup();
    let svc = |ty: &str| {
        obj(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": ty.to_lowercase(), "namespace": "default"},
            "spec": {"type": ty, "ports": [{"port": 80}]}}))
    };
    let ingress = |o: DynamicObject| {
        o.modify(|p| {
            p.body.insert(
                "status".into(),
                json!({"loadBalancer": {"ingress": [{"ip": "10.1.1.1"}]}}),
            );
        })
    };
    let c = e.create(&k, &svc("ClusterIP")).unwrap();
    assert_eq!(
        reason(e.update_status(&k, &ingress(c))),
        ErrorReason::Invalid
    );
    let l = e.create(&k, &svc("LoadBalancer")).unwrap();
    assert!(e.update_status(&k, &ingress(l)).is_ok());
}

#[test]
fn service_status_update_takes_metadata_from_the_body() {
    // FIDELITY.md D15: like StatefulSet's, the Service status strategy keeps only the old spec.
    let (mut e, k) = setup();
    let owner = owner_of(&e.create(&k, &cm("o")).unwrap());
    let svc = obj(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}))
    .modify(|p| p.metadata.owner_references = Some(vec![owner.controller_reference()]));
    let s = e.create(&k, &svc).unwrap();
    let w = s.modify(|p| {
        p.metadata.owner_references = None;
        p.body
            .insert("spec".into(), json!({"ports": [{"port": 81}]}));
    });
    let u = e.update_status(&k, &w).unwrap();
    assert_eq!(u.metadata().owner_references, None);
    assert_eq!(u.spec(), s.spec());
    assert_ne!(u.resource_version(), s.resource_version());
}
