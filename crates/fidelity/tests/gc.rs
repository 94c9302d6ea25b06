//! Garbage collection and finalizers against the real kube-controller-manager: owner deleted
//! -> dependents deleted (unless another owner still resolves); finalizer removed -> object
//! gone. The model side applies the model's own garbage-collector rule and action
//! (`anvil_cluster_model::api::garbage_collectable` / `Etcd::collect_garbage`, exactly what
//! `model::Action::Gc` runs: delete, with a uid precondition, an object none of whose owner
//! references resolves to a live object with the same uid) until nothing changes; the real
//! side is polled until it reaches the same store contents.

use anvil_cluster_model::Etcd;
use anvil_cluster_model::api::garbage_collectable;
use anvil_fidelity::Harness;
use anvil_fidelity::kinds::{FINALIZER, TestKind, object, registry};
use anvil_objects::{DynamicObject, ObjectRef};
use anvil_reconciler::{KubeRequest, KubeResponse};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The model's garbage collector (`anvil_cluster_model::api::garbage_collectable`, the rule
/// that enables `model::Action::Gc`, and `Etcd::collect_garbage`, its effect) run until
/// nothing changes.
fn gc_fixpoint(etcd: &mut Etcd) {
    let kinds = registry();
    loop {
        let before = etcd.clone();
        let keys: Vec<ObjectRef> = etcd.objects.keys().cloned().collect();
        for key in keys {
            if garbage_collectable(etcd, &key) {
                etcd.collect_garbage(&kinds, &key)
                    .expect("the GC's delete succeeds");
            }
        }
        if *etcd == before {
            return;
        }
    }
}

fn names(objs: &[DynamicObject]) -> BTreeSet<(String, String, bool)> {
    objs.iter()
        .map(|o| {
            (
                o.kind().kind().to_string(),
                o.name().to_string(),
                o.metadata().deletion_timestamp.is_some(),
            )
        })
        .collect()
}

#[test]
fn garbage_collection_and_finalizers_match_the_real_controller_manager() {
    let h = Harness::get();
    let ns = h.namespace("fidelity-gc");
    let kinds = registry();
    let mut etcd = Etcd::new();
    let kinds_used = [TestKind::ConfigMap, TestKind::Secret, TestKind::Widget];
    h.runtime.block_on(async {
        let c = &h.client;
        let mut uids: std::collections::BTreeMap<String, (String, String)> = Default::default();
        let mk = |kind: TestKind, name: &str, owners: &[(&str, &(String, String))], fin: bool| {
            let mut meta = serde_json::Map::new();
            meta.insert("name".into(), name.into());
            if fin {
                meta.insert("finalizers".into(), json!([FINALIZER]));
            }
            (kind, name.to_string(), meta, owners.iter().map(|(n, (mu, ru))| (n.to_string(), mu.clone(), ru.clone())).collect::<Vec<_>>())
        };
        // owners: o1 (deleted), o2 (kept)
        for name in ["o1", "o2"] {
            let o = object(&TestKind::ConfigMap.kind(), &ns, [("name".to_string(), Value::from(name))].into_iter().collect(), vec![]);
            let m = etcd.create(&kinds, &o).unwrap();
            let r = anvil_shim::execute(c, &KubeRequest::Create(o)).await;
            uids.insert(name.into(), (m.uid().unwrap().into(), r.object().unwrap().uid().unwrap().into()));
        }
        let o1 = uids["o1"].clone();
        let o2 = uids["o2"].clone();
        let specs = vec![
            mk(TestKind::ConfigMap, "d1", &[("o1", &o1)], false),
            mk(TestKind::Secret, "d2", &[("o1", &o1)], true),
            mk(TestKind::Widget, "d3", &[("o1", &o1), ("o2", &o2)], false),
            mk(TestKind::Widget, "d4", &[("o1", &o1)], false),
            mk(TestKind::ConfigMap, "d5", &[("o2", &o2)], false),
        ];
        for (kind, _name, meta, owners) in specs {
            let build = |model: bool| {
                let mut meta = meta.clone();
                let refs: Vec<Value> = owners.iter().map(|(n, mu, ru)| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": if model { mu } else { ru }})).collect();
                meta.insert("ownerReferences".into(), Value::Array(refs));
                object(&kind.kind(), &ns, meta, kind.body(0))
            };
            etcd.create(&kinds, &build(true)).unwrap();
            let r = anvil_shim::execute(c, &KubeRequest::Create(build(false))).await;
            assert!(r.error().is_none(), "{r:?}");
        }
        // Delete owner o1 on both sides.
        let key = ObjectRef::new(TestKind::ConfigMap.kind(), &ns, "o1");
        etcd.delete(&kinds, &key, None).unwrap();
        anvil_shim::execute(c, &KubeRequest::Delete { key, preconditions: None }).await;
        gc_fixpoint(&mut etcd);
        compare_eventually(h, &ns, &etcd, &kinds_used, "after deleting owner o1").await;
        // Remove d2's finalizer on both sides: it must be gone.
        let key = ObjectRef::new(TestKind::Secret.kind(), &ns, "d2");
        let m = etcd.get_obj(&key).unwrap().modify(|p| p.metadata.finalizers = None);
        etcd.update(&kinds, &m).unwrap();
        let KubeResponse::Get(Ok(r)) = anvil_shim::execute(c, &KubeRequest::Get(key.clone())).await else { panic!("d2 missing on the real side") };
        let r = r.modify(|p| p.metadata.finalizers = None);
        let resp = anvil_shim::execute(c, &KubeRequest::Update(r)).await;
        assert!(resp.error().is_none(), "{resp:?}");
        gc_fixpoint(&mut etcd);
        compare_eventually(h, &ns, &etcd, &kinds_used, "after removing d2's finalizer").await;
        assert!(etcd.get_obj(&key).is_err());
    });
}

async fn compare_eventually(h: &Harness, ns: &str, etcd: &Etcd, kinds: &[TestKind], when: &str) {
    let model: Vec<DynamicObject> = kinds
        .iter()
        .flat_map(|k| etcd.list_objs(&k.kind(), ns, &Default::default()))
        .collect();
    let want = names(&model);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut real = Vec::new();
        for k in kinds {
            let req = KubeRequest::List {
                kind: k.kind(),
                namespace: ns.to_string(),
                label_selector: Default::default(),
            };
            if let KubeResponse::List(Ok(items)) = anvil_shim::execute(&h.client, &req).await {
                real.extend(
                    items
                        .into_iter()
                        .filter(|o| !anvil_fidelity::run::is_system_object(*k, o.name())),
                );
            }
        }
        let got = names(&real);
        if got == want {
            // Must stay there.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{when}: the real store never matched the model's GC fixpoint\n  model: {want:?}\n  real:  {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
