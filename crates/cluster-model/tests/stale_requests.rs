//! Doomed stale requests (`anvil_cluster_model::model::stale`): which stale requests the
//! reductions forget because they can never succeed, and that each one forgotten really fails
//! without changing the API server, now and after any later write.

use anvil_cluster_model::model::{CrEnv, CreatePruning, EnvState, Msg, drop_doomed_stale};
use anvil_cluster_model::{Etcd, KindRegistry};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{KubeRequest, KubeResponse, Preconditions, Request};
use serde_json::json;

fn cm(name: &str) -> DynamicObject {
    DynamicObject::from_json(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": "v"}
    }))
    .unwrap()
}

fn svc(name: &str) -> DynamicObject {
    DynamicObject::from_json(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap()
}

fn msg(stale: bool, req: KubeRequest) -> Msg<()> {
    Msg {
        stale,
        from: ObjectRef::new(Kind::new("example.com/v1", "App"), "default", "a"),
        req: Request::Kube(req),
        basis: None,
    }
}

/// The requests of `reqs` (all stale) that survive the pruning, by index.
fn kept(kinds: &KindRegistry, etcd: &Etcd, reqs: &[KubeRequest], creates: bool) -> Vec<usize> {
    let mut net: Vec<Msg<()>> = reqs.iter().map(|r| msg(true, r.clone())).collect();
    drop_doomed_stale(kinds, etcd, &mut net, creates);
    net.iter()
        .map(|m| {
            reqs.iter()
                .position(|r| Request::Kube(r.clone()) == m.req)
                .unwrap()
        })
        .collect()
}

fn edited(o: &DynamicObject) -> DynamicObject {
    o.modify(|p| {
        p.body.insert("data".into(), json!({"k": "w"}));
    })
}

#[test]
fn stale_writes_with_an_outdated_precondition_are_forgotten_and_fail_forever() {
    let kinds = KindRegistry::builtin();
    let mut etcd = Etcd::new();
    let v1 = etcd.create(&kinds, &cm("c")).unwrap();
    let v2 = etcd.update(&kinds, &edited(&v1)).unwrap();
    let unconditional = edited(&v1).modify(|p| p.metadata.resource_version = None);
    let reqs = vec![
        KubeRequest::Update(edited(&v1)), // 0: outdated resourceVersion: doomed
        KubeRequest::Update(edited(&v2)), // 1: current: may succeed
        KubeRequest::Update(unconditional), // 2: no precondition: may succeed
        KubeRequest::Delete {
            key: v1.object_ref(),
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: v1.resource_version().map(str::to_string),
            }),
        }, // 3: outdated resourceVersion: doomed
        KubeRequest::Delete {
            key: v1.object_ref(),
            preconditions: Some(Preconditions {
                uid: v1.uid().map(str::to_string),
                resource_version: None,
            }),
        }, // 4: same uid: may succeed
        KubeRequest::Delete {
            key: v1.object_ref(),
            preconditions: None,
        }, // 5: may succeed
        KubeRequest::Create(cm("c")),     // 6: exists: doomed only while nothing is deleted
        KubeRequest::Create(cm("d")),     // 7: does not exist: may succeed
    ];
    assert_eq!(kept(&kinds, &etcd, &reqs, false), vec![1, 2, 4, 5, 6, 7]);
    assert_eq!(kept(&kinds, &etcd, &reqs, true), vec![1, 2, 4, 5, 7]);

    // the doomed ones fail and change nothing, and still do after a delete and re-create
    for round in 0..2 {
        for i in [0, 3] {
            let before = etcd.clone();
            assert!(
                matches!(
                    etcd.handle(&kinds, &reqs[i]),
                    KubeResponse::Update(Err(_)) | KubeResponse::Delete(Err(_))
                ),
                "round {round}, request {i}"
            );
            assert_eq!(etcd, before, "round {round}, request {i}");
        }
        etcd.delete(&kinds, &v1.object_ref(), None).unwrap();
        etcd.create(&kinds, &cm("c")).unwrap();
        // the re-created object is a new incarnation: the uid-guarded delete is doomed now
        assert_eq!(kept(&kinds, &etcd, &reqs[4..5], false), Vec::<usize>::new());
    }

    // a live request is never forgotten: its sender reads the answer
    let mut net = vec![msg(false, reqs[0].clone())];
    drop_doomed_stale(&kinds, &etcd, &mut net, true);
    assert_eq!(net.len(), 1);
}

#[test]
fn a_missing_object_dooms_updates_except_where_an_update_re_creates_it() {
    let kinds = KindRegistry::builtin();
    let mut etcd = Etcd::new();
    let c = etcd.create(&kinds, &cm("c")).unwrap();
    let s = etcd.create(&kinds, &svc("s")).unwrap();
    let without_uid = s.modify(|p| p.metadata.uid = None);
    let reqs = vec![
        KubeRequest::Update(edited(&c)), // 0: ConfigMap gone: NotFound forever
        KubeRequest::Update(without_uid.clone()), // 1: Service: an update of a missing one creates it
        KubeRequest::UpdateStatus(s.clone()),     // 2: status of a missing Service: doomed
        KubeRequest::Update(s.clone()),           // 3: names the old uid: Conflict forever
    ];
    etcd.delete(&kinds, &c.object_ref(), None).unwrap();
    etcd.delete(&kinds, &s.object_ref(), None).unwrap();
    assert_eq!(kept(&kinds, &etcd, &reqs, false), vec![1]);
    // (the Service update indeed re-creates it, resourceVersion notwithstanding)
    assert!(etcd.update(&kinds, &without_uid).is_ok());
}

#[test]
fn the_monitor_sees_removals_and_deletion_marks_of_objects_that_are_not_garbage() {
    let kinds = KindRegistry::builtin();
    let mut etcd = Etcd::new();
    let c = etcd.create(&kinds, &cm("c")).unwrap();
    let with_finalizer = cm("f").modify(|p| p.metadata.finalizers = Some(vec!["x/y".into()]));
    let f = etcd.create(&kinds, &with_finalizer).unwrap();
    // handles `req` on `etcd` and tells whether a fresh monitor saw a deletion
    let step = |etcd: &mut Etcd, req: KubeRequest| {
        let monitor = CreatePruning::new(true);
        let before = etcd.clone();
        etcd.handle(&kinds, &req);
        monitor.observe_request::<()>(&before, etcd, &Request::Kube(req), &EnvState::default());
        monitor.must_repeat()
    };
    let delete = |key: ObjectRef, uid: Option<&str>| KubeRequest::Delete {
        key,
        preconditions: Some(Preconditions {
            uid: uid.map(str::to_string),
            resource_version: None,
        }),
    };
    assert!(
        !step(&mut etcd, KubeRequest::Update(edited(&c))),
        "an update"
    );
    assert!(
        !step(&mut etcd, delete(c.object_ref(), Some("another-uid"))),
        "a delete that fails"
    );
    assert!(
        step(&mut etcd, delete(f.object_ref(), None)),
        "a deletion mark"
    );
    let marked = etcd.objects[&f.object_ref()].clone();
    assert!(marked.metadata().deletion_timestamp.is_some());
    assert!(
        !step(&mut etcd, delete(f.object_ref(), None)),
        "marked already"
    );
    let released = marked.modify(|p| p.metadata.finalizers = None);
    assert!(
        step(&mut etcd, KubeRequest::Update(released)),
        "an update that removes the last finalizer removes the object"
    );
    assert!(!etcd.objects.contains_key(&f.object_ref()));
    assert!(step(&mut etcd, delete(c.object_ref(), None)), "a removal");

    // off: nothing is recorded
    let off = CreatePruning::new(false);
    off.observe(&etcd.clone(), &Etcd::new(), &EnvState::default());
    assert!(!off.must_repeat());
}

#[test]
fn the_monitor_watches_garbage_in_the_making_and_only_once_deletions_are_spent() {
    let kinds = KindRegistry::builtin();
    let mut etcd = Etcd::new();
    let owner = etcd.create(&kinds, &cm("owner")).unwrap();
    let owned = |name: &str, uid: &str| {
        cm(name).modify(|p| {
            p.metadata.owner_references = Some(vec![anvil_objects::OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            }])
        })
    };
    let child = etcd
        .create(&kinds, &owned("child", owner.uid().unwrap()))
        .unwrap();
    let orphan = etcd.create(&kinds, &owned("orphan", "gone")).unwrap();
    let spent = EnvState::default();
    let budget = EnvState {
        crs: vec![CrEnv {
            deletes_left: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(spent.deletions_spent() && !budget.deletions_spent());
    // whether a fresh monitor records the step from `before` to `after` under `env`
    let watched = |before: &Etcd, after: &Etcd, env: &EnvState| {
        let monitor = CreatePruning::new(true);
        monitor.observe(before, after, env);
        monitor.must_repeat()
    };
    let without = |key: ObjectRef| {
        let mut e = etcd.clone();
        e.delete(&kinds, &key, None).unwrap();
        e
    };
    // collecting garbage is not watched; deleting the owner (and so making its child
    // garbage) is, but not while the environment may still delete
    assert!(!watched(&etcd, &without(orphan.object_ref()), &spent));
    assert!(watched(&etcd, &without(owner.object_ref()), &spent));
    assert!(!watched(&etcd, &without(owner.object_ref()), &budget));
    // rewriting owner references to a missing owner makes garbage
    let mut rewritten = etcd.clone();
    let disowned = rewritten.objects[&child.object_ref()]
        .modify(|p| p.metadata.owner_references.as_mut().unwrap()[0].uid = "gone".into());
    rewritten.update(&kinds, &disowned).unwrap();
    assert!(watched(&etcd, &rewritten, &spent));

    // which stale Creates are doomed once deletions are spent: of objects that exist and are
    // not garbage (not of the orphan, which the collector may delete)
    let reqs = vec![
        KubeRequest::Create(cm("owner")),
        KubeRequest::Create(owned("child", "x")),
        KubeRequest::Create(owned("orphan", "gone")),
        KubeRequest::Create(cm("new")),
    ];
    assert_eq!(kept(&kinds, &etcd, &reqs, true), vec![2, 3]);
    // a marked object may go: its Create is kept
    let with_finalizer = cm("f").modify(|p| p.metadata.finalizers = Some(vec!["x/y".into()]));
    etcd.create(&kinds, &with_finalizer).unwrap();
    etcd.delete(&kinds, &with_finalizer.object_ref(), None)
        .unwrap();
    let create_f = [KubeRequest::Create(cm("f"))];
    assert_eq!(kept(&kinds, &etcd, &create_f, true), vec![0]);
}

mod support;

/// On a scope with crashes, edits and a stale request, the machine forgets doomed stale
/// requests in some steps, and the rendered trace step says so (and only there).
#[test]
fn a_rendered_step_names_the_stale_requests_it_forgets() {
    use anvil_checker::Machine;
    use anvil_cluster_model::render::render_step;
    use support::*;

    let f = anvil_cluster_model::Faults {
        crash: true,
        ..Default::default()
    };
    let m = machine(scope(f, 1, 0));
    let stale = |s: &S| s.network.iter().filter(|x| x.stale).count();
    let (mut said, mut forgot) = (0, 0);
    let mut acts = Vec::new();
    for s in reachable(&m, 20_000) {
        acts.clear();
        m.actions(&s, &mut acts);
        for a in &acts {
            let Some(n) = m.next_state(&s, a) else {
                continue;
            };
            let n = m.representative(n);
            let step = render_step(&m, 1, Some(&s), Some(a), &n);
            let mentions = step.action.contains("can no longer succeed");
            let taken = matches!(a, anvil_cluster_model::Action::Handle(i) if s.network[*i].stale);
            let crash = matches!(
                a,
                anvil_cluster_model::Action::Crash | anvil_cluster_model::Action::CrashUnsent(..)
            );
            let dropped = !crash && stale(&n) + usize::from(taken) < stale(&s);
            assert_eq!(mentions, dropped, "{a:?}: {}", step.action);
            said += usize::from(mentions);
            forgot += usize::from(dropped);
        }
    }
    assert!(forgot > 0, "no step forgot a stale request");
    assert_eq!(said, forgot);
}
