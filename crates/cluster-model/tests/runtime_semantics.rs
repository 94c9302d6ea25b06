//! The runtime rules R1-R5 shared by the model and the shim (see `model/mod.rs` and the shim's
//! crate docs), the failure model (transient failures, applied-then-failed), the garbage
//! collector's delayed delete, structural fairness keys and the built-in invariants.

mod support;

use anvil_checker::{Fairness, Machine};
use anvil_cluster_model::model::{
    Action, ClusterMachine, Key, Msg, Pending, foreign_write_in, kinds_over_bound,
};
use anvil_cluster_model::tokens::{Renaming, Tokens};
use anvil_cluster_model::{Etcd, Faults, KindInfo, KindRegistry, NoExternalModel};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner};
use anvil_reconciler::{
    ErrorReason, KubeRequest, KubeResponse, NoExternal, Reconciler, Request, Response,
};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use std::collections::BTreeMap;
use support::*;

/// Local state of the one-shot reconcilers below.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Init,
    Done,
}

impl Tokens for Phase {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

fn config_map_named(name: &str) -> DynamicObject {
    DynamicObject::from_json(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}))
    .unwrap()
}

/// Creates a ConfigMap in the same step that ends the reconcile (rule R1).
struct CreateAndFinish;
impl Reconciler for CreateAndFinish {
    type R = Greeting;
    type T = Phase;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn reconcile_init_state() -> Phase {
        Phase::Init
    }
    fn reconcile_core(
        _: &Greeting,
        _: Option<Response<NoExternal>>,
        _: Phase,
    ) -> (Phase, Option<Request<NoExternal>>) {
        (
            Phase::Done,
            Some(Request::Kube(KubeRequest::Create(config_map_named("cm")))),
        )
    }
    fn reconcile_done(t: &Phase) -> bool {
        *t == Phase::Done
    }
    fn reconcile_error(_: &Phase) -> bool {
        false
    }
}

/// Its initial state is already done: `reconcile_core` must never be called (rule R2).
struct DoneFromTheStart;
impl Reconciler for DoneFromTheStart {
    type R = Greeting;
    type T = Phase;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn reconcile_init_state() -> Phase {
        Phase::Done
    }
    fn reconcile_core(
        _: &Greeting,
        _: Option<Response<NoExternal>>,
        _: Phase,
    ) -> (Phase, Option<Request<NoExternal>>) {
        panic!("reconcile_core called on a state that is already done (rule R2)")
    }
    fn reconcile_done(t: &Phase) -> bool {
        *t == Phase::Done
    }
    fn reconcile_error(_: &Phase) -> bool {
        false
    }
}

fn created<Rc>() -> ClusterMachine<Rc, NoExternalModel>
where
    Rc: anvil_cluster_model::ModelReconciler<
            R = Greeting,
            ExternalRequest = NoExternal,
            ExternalResponse = NoExternal,
        >,
{
    ClusterMachine::new(kinds(), scope(Faults::default(), 0, 0), NoExternalModel)
}

#[test]
fn r1_a_request_sent_with_done_is_executed_and_its_response_discarded() {
    let m = created::<CreateAndFinish>();
    let key = m.cr_key();
    let s = m
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
        .unwrap();
    let s = m.next_state(&s, &Action::Start(key.clone())).unwrap();
    assert_eq!(s.network.len(), 1, "the request is sent, not dropped");
    assert_eq!(s.ongoing[&key].pending, Pending::Waiting);
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    assert!(
        !acts.contains(&Action::Start(key.clone())),
        "no new reconcile before the request is answered (the shim executes it first)"
    );
    let s = m.next_state(&s, &Action::Handle(0)).unwrap();
    let cm = ObjectRef::new(Kind::of::<ConfigMap>(), "default", "cm");
    assert!(s.etcd.objects.contains_key(&cm), "executed");
    assert!(
        s.ongoing.is_empty(),
        "the reconcile ended, its response discarded"
    );
}

#[test]
fn r2_done_is_checked_on_the_initial_state() {
    let m = created::<DoneFromTheStart>();
    let key = m.cr_key();
    let s = m
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
        .unwrap();
    let s = m.next_state(&s, &Action::Start(key)).unwrap();
    assert!(s.ongoing.is_empty() && s.network.is_empty());
}

#[test]
fn r3_list_with_an_empty_namespace_lists_every_namespace() {
    let kinds = KindRegistry::builtin();
    let mut etcd = Etcd::new();
    for ns in ["b", "a"] {
        let o = config_map_named("x").modify(|p| p.metadata.namespace = Some(ns.into()));
        etcd.create(&kinds, &o).unwrap();
    }
    let all = etcd.list_objs(&Kind::of::<ConfigMap>(), "", &BTreeMap::new());
    let got: Vec<_> = all.iter().map(|o| o.namespace().to_string()).collect();
    assert_eq!(
        got,
        ["a", "b"],
        "every namespace, sorted by (namespace, name)"
    );
    let one = etcd.list_objs(&Kind::of::<ConfigMap>(), "b", &BTreeMap::new());
    assert_eq!(one.len(), 1);
}

/// Step by step (reductions off): the tests below look at the answer delivered to the
/// reconcile before it processes it, which the eager steps of the reductions fold into the
/// delivery (`tests/eager_steps.rs`).
fn first_request_state(faults: Faults) -> (M, S) {
    let m = machine(scope(faults, 0, 0)).with_reductions(false);
    let s = m
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
        .unwrap();
    let s = m.next_state(&s, &Action::Start(m.cr_key())).unwrap();
    (m, s)
}

#[test]
fn transient_failures_answer_every_error_the_shim_can_surface() {
    let f = Faults {
        transient: true,
        ..Default::default()
    };
    let (m, s) = first_request_state(f);
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    let reasons: Vec<ErrorReason> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Drop(0, r) => Some(*r),
            _ => None,
        })
        .collect();
    for r in [
        ErrorReason::Timeout,
        ErrorReason::ServerTimeout,
        ErrorReason::InternalError,
        ErrorReason::TooManyRequests,
        ErrorReason::Other,
    ] {
        assert!(reasons.contains(&r), "{r:?} missing from {reasons:?}");
        let n = m.next_state(&s, &Action::Drop(0, r)).unwrap();
        assert_eq!(n.etcd, s.etcd, "not executed");
        let Pending::Ready(Response::Kube(resp)) = &n.ongoing[&m.cr_key()].pending else {
            panic!("an error reply is delivered")
        };
        assert_eq!(resp.error().unwrap().reason, r);
    }
    // a plain Get is never answered Conflict; a GetThen* is (the shim gives up after retries)
    assert!(!reasons.contains(&ErrorReason::Conflict));
    let get_then = KubeRequest::GetThenDelete {
        key: m.cr_key(),
        owner: Owner {
            api_version: "v1".into(),
            kind: "X".into(),
            name: "x".into(),
            uid: "u".into(),
        },
    };
    assert!(
        anvil_cluster_model::model::faults::transient_kube_errors(&get_then)
            .contains(&ErrorReason::Conflict)
    );
    // with only `drop`, the answer is Timeout
    let (m, s) = first_request_state(Faults {
        drop: true,
        ..Default::default()
    });
    acts.clear();
    m.actions(&s, &mut acts);
    let drops: Vec<_> = acts
        .iter()
        .filter(|a| matches!(a, Action::Drop(..)))
        .collect();
    assert_eq!(drops, [&Action::Drop(0, ErrorReason::Timeout)]);
}

#[test]
fn applied_then_failed_executes_the_request_and_answers_an_error() {
    let f = Faults {
        lost_response: true,
        ..Default::default()
    };
    let (m, s) = first_request_state(f);
    // run the chain until a Create is in flight
    let mut s = s;
    for _ in 0..10 {
        if matches!(
            s.network.first().map(|m| &m.req),
            Some(Request::Kube(KubeRequest::Create(_)))
        ) {
            break;
        }
        s = if s.network.is_empty() {
            m.next_state(&s, &Action::Continue(m.cr_key())).unwrap()
        } else {
            m.next_state(&s, &Action::Handle(0)).unwrap()
        };
    }
    let Some(Request::Kube(KubeRequest::Create(obj))) = s.network.first().map(|m| &m.req) else {
        panic!("a Create is in flight: {:?}", s.network)
    };
    let target = obj.object_ref();
    assert!(!s.etcd.objects.contains_key(&target));
    let n = m
        .next_state(&s, &Action::LoseResponse(0, ErrorReason::Timeout))
        .unwrap();
    assert!(n.etcd.objects.contains_key(&target), "executed");
    let Pending::Ready(Response::Kube(KubeResponse::Create(Err(e)))) =
        &n.ongoing[&m.cr_key()].pending
    else {
        panic!("the sender gets an error")
    };
    assert_eq!(e.reason, ErrorReason::Timeout);
    assert_eq!(
        m.fairness(&s, &Action::LoseResponse(0, ErrorReason::Timeout)),
        Fairness::Unfair
    );
    // the switch is eventually turned off
    let off = m
        .next_state(
            &s,
            &Action::Disable(anvil_cluster_model::model::Fault::LostResponse),
        )
        .unwrap();
    assert!(
        m.next_state(&off, &Action::LoseResponse(0, ErrorReason::Timeout))
            .is_none()
    );
}

/// A ConfigMap whose owner does not exist.
fn orphan_named(name: &str) -> DynamicObject {
    let owner = Owner {
        api_version: "test.anvil.dev/v1".into(),
        kind: "Greeting".into(),
        name: "gone".into(),
        uid: "00000000-0000-4000-8000-00000000dead".into(),
    };
    config_map_named(name).modify(|p| {
        p.metadata.owner_references = Some(vec![owner.controller_reference()]);
    })
}

#[test]
fn the_garbage_collectors_delete_carries_a_uid_precondition() {
    // the collector's two steps, as the unreduced model takes them
    let m = machine(scope(Faults::default(), 0, 0)).with_reductions(false);
    let mut s = m.init_states().remove(0);
    let orphan = orphan_named("o");
    let first = s.etcd.create(&m.kinds, &orphan).unwrap();
    let key = first.object_ref();
    s = m.next_state(&s, &Action::Gc(key.clone())).unwrap();
    // while the delete travels, the object is replaced by a new incarnation (new uid)
    s.etcd.delete(&m.kinds, &key, None).unwrap();
    let second = s.etcd.create(&m.kinds, &orphan).unwrap();
    assert_ne!(first.uid(), second.uid());
    let n = m.next_state(&s, &Action::GcDelete(key.clone())).unwrap();
    assert!(
        n.etcd.objects.contains_key(&key),
        "the precondition protects the new incarnation"
    );
    // it is judged again on its own
    let mut acts = Vec::new();
    m.actions(&n, &mut acts);
    assert!(acts.contains(&Action::Gc(key)));
}

#[test]
fn with_the_reductions_the_collector_judges_and_deletes_in_one_step() {
    let m = machine(scope(Faults::default(), 0, 0));
    let mut s = m.init_states().remove(0);
    let key = s
        .etcd
        .create(&m.kinds, &orphan_named("o"))
        .unwrap()
        .object_ref();
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    assert!(acts.contains(&Action::GcCollect(key.clone())));
    assert!(
        !acts.contains(&Action::Gc(key.clone())),
        "nothing may adopt it: no separate judgement"
    );
    assert!(m.next_state(&s, &Action::Gc(key.clone())).is_none());
    assert_eq!(
        m.fairness(&s, &Action::GcCollect(key.clone())),
        Fairness::Weak(Key::Gc(key.clone()))
    );
    let n = m.next_state(&s, &Action::GcCollect(key.clone())).unwrap();
    assert!(!n.etcd.objects.contains_key(&key));
    assert!(n.gc.is_empty());

    // an Update of it in flight may adopt it: the judgement may come first, and its delete
    // then races the adoption (the race the separate steps exist for)
    let stored = s.etcd.objects[&key].clone();
    let adopted = stored.modify(|p| p.metadata.owner_references = None);
    s.network.push(Msg {
        stale: false,
        from: m.cr_key(),
        req: Request::Kube(KubeRequest::Update(adopted)),
        basis: None,
    });
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    assert!(acts.contains(&Action::Gc(key.clone())));
    assert!(acts.contains(&Action::GcCollect(key.clone())));
    let judged = m.next_state(&s, &Action::Gc(key.clone())).unwrap();
    let handled = m.next_state(&judged, &Action::Handle(0)).unwrap();
    assert!(
        !anvil_cluster_model::api::garbage_collectable(&handled.etcd, &key),
        "adopted"
    );
    let n = m
        .next_state(&handled, &Action::GcDelete(key.clone()))
        .unwrap();
    assert!(
        !n.etcd.objects.contains_key(&key),
        "the judgement made before the adoption deletes the adopted object"
    );
}

#[test]
fn only_updates_of_the_object_may_change_its_owners() {
    use anvil_cluster_model::model::gc::may_adopt;
    let o = config_map_named("o");
    let key = o.object_ref();
    let other = config_map_named("p");
    let owner = Owner {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "x".into(),
        uid: "u".into(),
    };
    let kube = |k: KubeRequest| Request::<anvil_reconciler::NoExternal>::Kube(k);
    assert!(may_adopt(&kube(KubeRequest::Update(o.clone())), &key));
    assert!(may_adopt(
        &kube(KubeRequest::GetThenUpdate {
            obj: o.clone(),
            owner: owner.clone()
        }),
        &key
    ));
    assert!(!may_adopt(&kube(KubeRequest::Update(other)), &key));
    for k in [
        KubeRequest::Get(key.clone()),
        KubeRequest::Create(o.clone()),
        KubeRequest::UpdateStatus(o.clone()),
        KubeRequest::GetThenUpdateStatus {
            obj: o.clone(),
            owner: owner.clone(),
        },
        KubeRequest::Delete {
            key: key.clone(),
            preconditions: None,
        },
        KubeRequest::GetThenDelete {
            key: key.clone(),
            owner,
        },
    ] {
        assert!(!may_adopt(&kube(k), &key));
    }
}

#[test]
fn other_writers_and_built_in_controllers_never_change_owner_references() {
    // the collector's reduction rests on it (`model::gc`): only an Update or GetThenUpdate
    // of an object changes its owners
    let refs = orphan_named("o").metadata().owner_references.clone();
    let sts = DynamicObject::from_json(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "s", "namespace": "default",
            "ownerReferences": refs.clone()},
        "spec": {"replicas": 3, "serviceName": "s", "selector": {}}}))
    .unwrap();
    for o in [orphan_named("o"), sts.clone()] {
        let scribbled = anvil_cluster_model::model::builtins::scribble(&o);
        assert_ne!(scribbled, o);
        assert_eq!(scribbled.metadata().owner_references, refs);
    }
    let st = anvil_cluster_model::model::next_status(&sts).expect("a status step");
    let stepped = sts.modify(|p| {
        p.body.insert("status".into(), st);
    });
    assert_eq!(stepped.metadata().owner_references, refs);
}

#[test]
fn request_fairness_is_keyed_by_sender_stale_flag_and_position() {
    let (m, s) = first_request_state(Faults {
        crash: true,
        ..Default::default()
    });
    let key = m.cr_key();
    assert_eq!(
        m.fairness(&s, &Action::Handle(0)),
        Fairness::Weak(Key::Handle {
            from: key.clone(),
            stale: false,
            pos: 0
        })
    );
    // the key does not change when the request's tokens are renamed
    let mut t = s.clone();
    t.network[0] = Msg {
        stale: false,
        from: key.clone(),
        req: t.network[0].req.rename(&Renaming::offset(7)),
        basis: None,
    };
    assert_eq!(
        m.fairness(&s, &Action::Handle(0)),
        m.fairness(&t, &Action::Handle(0))
    );
}

#[test]
fn no_foreign_writes_checks_the_stored_objects_controller() {
    let m = machine(scope(Faults::default(), 0, 0));
    let key = m.cr_key();
    let s = m
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
        .unwrap();
    let mut s = m.next_state(&s, &Action::Start(key.clone())).unwrap();
    let cr = s.ongoing[&key].cr.clone();
    let mine = Owner::of_object(&cr).unwrap();
    let old = Owner {
        uid: "00000000-0000-4000-8000-0000000000aa".into(),
        ..mine.clone()
    };
    // stored: controlled by an earlier incarnation of the CR (another uid)
    let stored = s
        .etcd
        .create(
            &m.kinds,
            &config_map_named("taken").modify(|p| {
                p.metadata.owner_references = Some(vec![old.controller_reference()]);
            }),
        )
        .unwrap();
    // the controller rewrites its ownerReferences to itself: the request names the right
    // owner, but the stored object is someone else's
    let takeover = stored.modify(|p| {
        p.metadata.owner_references = Some(vec![mine.controller_reference()]);
    });
    s.network = vec![Msg {
        stale: false,
        from: key.clone(),
        req: Request::Kube(KubeRequest::Update(takeover.clone())),
        basis: None,
    }];
    assert!(foreign_write_in(&Kind::of::<Greeting>(), &s));
    // the GetThenUpdate form is guarded by the server's ownership check: not flagged
    s.network[0].req = Request::Kube(KubeRequest::GetThenUpdate {
        obj: takeover,
        owner: mine,
    });
    assert!(!foreign_write_in(&Kind::of::<Greeting>(), &s));
}

#[test]
fn object_bound_stops_a_controller_that_keeps_creating() {
    let mut sc = scope(Faults::default(), 0, 0);
    sc.max_objects_per_kind = 2;
    let m = machine(sc);
    let mut s = m.init_states().remove(0);
    for i in 0..3 {
        s.etcd
            .create(&m.kinds, &config_map_named(&format!("c{i}")))
            .unwrap();
    }
    assert_eq!(
        kinds_over_bound(&Kind::of::<Greeting>(), 2, &s),
        [Kind::of::<ConfigMap>()]
    );
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    assert!(acts.is_empty(), "a state above the bound is not expanded");
    let _ = KindInfo::custom_resource(Kind::of::<Greeting>());
}

#[test]
fn other_writers_update_managed_objects_within_their_budget() {
    let m = machine(scope(
        Faults {
            other_updates: 1,
            ..Default::default()
        },
        0,
        0,
    ));
    let mut s = m.init_states().remove(0);
    let sts = DynamicObject::from_json(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"replicas": 2, "serviceName": "s", "selector": {}}}))
    .unwrap();
    let sts = s.etcd.create(&m.kinds, &sts).unwrap().object_ref();
    let cm = s
        .etcd
        .create(&m.kinds, &config_map_named("c"))
        .unwrap()
        .object_ref();
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    assert!(acts.contains(&Action::OtherUpdate(sts.clone())));
    // a fault: no obligation, and (with the reductions) taken only finitely often
    assert_eq!(
        m.fairness(&s, &Action::OtherUpdate(sts.clone())),
        Fairness::Finite
    );
    let scaled = m.next_state(&s, &Action::OtherUpdate(sts.clone())).unwrap();
    assert_eq!(
        scaled.etcd.objects[&sts].spec().unwrap()["replicas"],
        json!(3)
    );
    assert!(
        m.next_state(&scaled, &Action::OtherUpdate(cm.clone()))
            .is_none(),
        "budget spent"
    );
    let edited = m.next_state(&s, &Action::OtherUpdate(cm.clone())).unwrap();
    assert_eq!(
        edited.etcd.objects[&cm].body()["data"]["k"],
        json!("v-edited")
    );
}
