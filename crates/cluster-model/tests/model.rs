//! The cluster state machine: runtime, faults, built-ins, and the soundness of the canonical
//! renaming of tokens.

use anvil_checker::{Checker, Fairness, Machine};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec};
use anvil_cluster_model::model::{
    Action, ClusterMachine, Key, Pending, StateOf, canonicalize, rename_state, visit_state,
};
use anvil_cluster_model::tokens::{Renaming, parse};
use anvil_cluster_model::{Etcd, Faults, KindInfo, KindRegistry, NoExternalModel, Scope};
use anvil_objects::{DynamicObject, Kind, ObjectRef, is_controlled_by};
use anvil_reconciler::chain::{self, Adopt, ChainReconciler, Facts, ManagedObject, Step};
use anvil_reconciler::{NoExternal, Request, Response};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeSet, HashSet, VecDeque};

#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "test.anvil.dev",
    version = "v1",
    kind = "Greeting",
    namespaced
)]
pub struct GreetingSpec {
    pub text: String,
}

fn name(cr: &Greeting) -> String {
    cr.metadata.name.clone().unwrap_or_default()
}

fn config_map(cr: &Greeting, _: &Facts) -> Result<DynamicObject, String> {
    let cm = ConfigMap {
        data: Some([("text".to_string(), cr.spec.text.clone())].into()),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).map_err(|e| e.to_string())
}

fn record_rv(o: &DynamicObject, f: &mut Facts) {
    if let Some(rv) = o.resource_version() {
        f.insert("cm-rv", rv.to_string());
    }
}

// A Secret that carries a copy of the ConfigMap's resourceVersion: tokens copied into
// annotations and local state must be renamed consistently.
fn secret(_: &Greeting, f: &Facts) -> Result<DynamicObject, String> {
    let rv = f.get("cm-rv").ok_or("no rv")?;
    let mut s = Secret::default();
    s.metadata.annotations = Some([("cm-rv".to_string(), rv.clone())].into());
    DynamicObject::from_typed(&s).map_err(|e| e.to_string())
}

const STEPS: &[Step<Greeting, NoExternal, NoExternal>] = &[
    Step::Object(ManagedObject {
        label: "cm",
        kind: Kind::of::<ConfigMap>,
        name,
        desired: config_map,
        merge: chain::merge_desired,
        record: record_rv,
        adopt: Adopt::Never,
    }),
    Step::Object(ManagedObject {
        label: "secret",
        kind: Kind::of::<Secret>,
        name,
        desired: secret,
        merge: chain::merge_desired,
        record: chain::record_nothing,
        adopt: Adopt::Never,
    }),
];

struct G;
impl ChainReconciler for G {
    type R = Greeting;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn steps() -> &'static [Step<Greeting, NoExternal, NoExternal>] {
        STEPS
    }
}

fn kinds() -> KindRegistry {
    KindRegistry::builtin().with(KindInfo::custom_resource(Kind::of::<Greeting>()))
}

fn scope(faults: Faults, edits: u8, deletes: u8) -> Scope {
    Scope {
        namespace: "default".into(),
        name: "g".into(),
        specs: vec![json!({"text": "a"}), json!({"text": "b"})],
        max_edits: edits,
        max_deletes: deletes,
        faults,
        max_stale_requests: 1,
    }
}

fn all_faults() -> Faults {
    Faults {
        crash: true,
        drop: true,
        other_deletes: 1,
        pod_losses: 0,
    }
}

fn matches(cr: &Greeting, etcd: &Etcd) -> bool {
    let Some(owner) = chain::owner_of(cr) else {
        return false;
    };
    let ns = "default";
    let cm = etcd
        .objects
        .get(&ObjectRef::new(Kind::of::<ConfigMap>(), ns, name(cr)));
    let sec = etcd
        .objects
        .get(&ObjectRef::new(Kind::of::<Secret>(), ns, name(cr)));
    match (cm, sec) {
        (Some(cm), Some(sec)) => {
            is_controlled_by(cm, &owner)
                && is_controlled_by(sec, &owner)
                && cm.body()["data"]["text"] == json!(cr.spec.text)
                && sec
                    .metadata()
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("cm-rv"))
                    .map(String::as_str)
                    == cm.resource_version()
        }
        _ => false,
    }
}

fn spec() -> ControllerSpec<G, NoExternalModel> {
    ControllerSpec {
        name: "greeting".into(),
        kinds: kinds(),
        external: NoExternalModel,
        matches: esr::matches_etcd(matches),
        invariants: Vec::new(),
        no_foreign_writes: true,
    }
}

type M = ClusterMachine<G, NoExternalModel>;
type S = StateOf<G, NoExternalModel>;

fn machine(sc: Scope) -> M {
    ClusterMachine::new(kinds(), sc, NoExternalModel)
}

/// Every reachable canonical state (BFS).
fn reachable(m: &M, limit: usize) -> Vec<S> {
    let mut seen = HashSet::new();
    let mut q = VecDeque::new();
    let mut out = Vec::new();
    for s in m.init_states() {
        let s = m.representative(s);
        if seen.insert(s.clone()) {
            q.push_back(s);
        }
    }
    let mut acts = Vec::new();
    while let Some(s) = q.pop_front() {
        out.push(s.clone());
        if out.len() >= limit {
            break;
        }
        acts.clear();
        m.actions(&s, &mut acts);
        for a in &acts {
            if let Some(n) = m.next_state(&s, a) {
                let n = m.representative(n);
                if seen.insert(n.clone()) {
                    q.push_back(n);
                }
            }
        }
    }
    out
}

fn tokens(s: &S) -> Vec<String> {
    let mut v = Vec::new();
    visit_state::<G, NoExternalModel>(s, &mut |t| {
        if parse(t).is_some() {
            v.push(t.to_string())
        }
    });
    v
}

#[test]
fn correct_controller_satisfies_esr_under_faults() {
    let mut f = all_faults();
    f.other_deletes = 0;
    let r = esr::verify(spec(), scope(f, 1, 0), &CheckOptions::default());
    for p in &r.results {
        assert_eq!(p.verdict, "holds", "{p:?}");
        assert!(p.complete);
    }
}

#[test]
fn canonicalisation_is_idempotent_and_counters_stay_bounded() {
    let m = machine(scope(all_faults(), 1, 1));
    let states = reachable(&m, 3000);
    assert!(states.len() > 100);
    for s in &states {
        let mut t = s.clone();
        canonicalize::<G, NoExternalModel>(&mut t);
        assert_eq!(&t, s, "representative is idempotent");
        // tokens are exactly 1..k, and the counters are k
        let live: BTreeSet<(bool, u64)> = tokens(s)
            .iter()
            .map(|t| {
                let (sp, n) = parse(t).unwrap();
                (sp == anvil_cluster_model::tokens::Space::Rv, n)
            })
            .collect();
        let rvs = live.iter().filter(|(r, _)| *r).count() as u64;
        let uids = live.iter().filter(|(r, _)| !*r).count() as u64;
        assert_eq!(s.etcd.rv, rvs);
        assert_eq!(s.etcd.uid, uids);
        assert!(live.iter().all(|(r, n)| *n <= if *r { rvs } else { uids }));
    }
}

/// The renaming is a bisimulation: a renamed (equivalent) state has the same canonical form,
/// and the same actions lead to canonically equal successors with the same fairness keys.
#[test]
fn renaming_is_a_bisimulation() {
    let m = machine(scope(all_faults(), 1, 1));
    let states = reachable(&m, 1500);
    let mut acts = Vec::new();
    let mut acts2 = Vec::new();
    for s in &states {
        let mut t = s.clone();
        rename_state::<G, NoExternalModel>(&mut t, &Renaming::offset(7));
        t.etcd.rv += 7;
        t.etcd.uid += 7;
        if !tokens(s).is_empty() {
            assert_ne!(&t, s);
        }
        assert_eq!(&m.representative(t.clone()), s);
        acts.clear();
        acts2.clear();
        m.actions(s, &mut acts);
        m.actions(&t, &mut acts2);
        assert_eq!(acts, acts2);
        for a in &acts {
            let n1 = m.next_state(s, a).map(|n| m.representative(n));
            let n2 = m.next_state(&t, a).map(|n| m.representative(n));
            assert_eq!(n1, n2, "{a:?}");
            if n1.is_some() {
                let f1: Fairness<Key> = m.fairness(s, a);
                let f2 = m.fairness(&m.representative(t.clone()), a);
                assert_eq!(f1, f2);
            }
        }
    }
}

#[test]
fn crash_makes_requests_stale_and_their_responses_are_ignored() {
    let mut sc = scope(all_faults(), 0, 0);
    sc.faults.drop = false;
    let m = machine(sc);
    let s0 = m.init_states().remove(0);
    let s1 = m.next_state(&s0, &Action::UserCreate).unwrap();
    let key = m.cr_key();
    let s2 = m.next_state(&s1, &Action::Start(key.clone())).unwrap();
    assert_eq!(s2.network.len(), 1);
    assert_eq!(s2.ongoing[&key].pending, Pending::Waiting);
    let s3 = m.next_state(&s2, &Action::Crash).unwrap();
    assert!(s3.ongoing.is_empty());
    assert!(s3.network[0].stale);
    // a new incarnation starts while the stale request is in flight
    let s4 = m.next_state(&s3, &Action::Start(key.clone())).unwrap();
    let s4 = m.representative(s4);
    let stale = s4.network.iter().position(|m| m.stale).unwrap();
    let s5 = m.next_state(&s4, &Action::Handle(stale)).unwrap();
    // the response of the stale request does not reach the new reconcile
    assert_eq!(s5.ongoing[&key].pending, Pending::Waiting);
    // bounded: a second crash would leave 2 stale requests in flight (> 1)
    assert!(m.next_state(&s4, &Action::Crash).is_none());
}

#[test]
fn dropped_requests_get_an_error_reply() {
    let m = machine(scope(all_faults(), 0, 0));
    let s0 = m.init_states().remove(0);
    let s1 = m.next_state(&s0, &Action::UserCreate).unwrap();
    let key = m.cr_key();
    let s2 = m.next_state(&s1, &Action::Start(key.clone())).unwrap();
    let s3 = m.next_state(&s2, &Action::Drop(0)).unwrap();
    let Pending::Ready(Response::Kube(r)) = &s3.ongoing[&key].pending else {
        panic!()
    };
    assert_eq!(
        r.error().unwrap().reason,
        anvil_reconciler::ErrorReason::Timeout
    );
    assert_eq!(s3.etcd, s2.etcd);
    // the switch goes off for good
    let s4 = m
        .next_state(
            &s3,
            &Action::Disable(anvil_cluster_model::model::Fault::Drop),
        )
        .unwrap();
    assert!(m.next_state(&s4, &Action::Drop(0)).is_none());
    assert_eq!(
        m.fairness(
            &s3,
            &Action::Disable(anvil_cluster_model::model::Fault::Drop)
        ),
        Fairness::Weak(Key::Disable(anvil_cluster_model::model::Fault::Drop))
    );
    assert_eq!(m.fairness(&s2, &Action::Drop(0)), Fairness::Unfair);
}

#[test]
fn garbage_collector_removes_orphans_and_builtins_settle() {
    let m = machine(scope(Faults::default(), 0, 1));
    // run to a state where the objects exist, delete the CR, and let the GC act
    let states = reachable(&m, 5000);
    let with_orphan = states
        .iter()
        .find(|s| {
            !s.etcd.objects.contains_key(&m.cr_key())
                && s.etcd
                    .objects
                    .keys()
                    .any(|k| k.kind == Kind::of::<ConfigMap>())
        })
        .expect("an orphaned ConfigMap is reachable");
    let cm = with_orphan
        .etcd
        .objects
        .keys()
        .find(|k| k.kind == Kind::of::<ConfigMap>())
        .unwrap()
        .clone();
    let mut acts = Vec::new();
    m.actions(with_orphan, &mut acts);
    assert!(acts.contains(&Action::Gc(cm.clone())));
    let n = m.next_state(with_orphan, &Action::Gc(cm.clone())).unwrap();
    assert!(!n.etcd.objects.contains_key(&cm));
    // built-in StatefulSet controller
    let sts = DynamicObject::from_json(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"replicas": 3, "serviceName": "s", "selector": {}}}))
    .unwrap();
    let mut s = m.init_states().remove(0);
    let stored = s.etcd.create(&m.kinds, &sts).unwrap();
    let key = stored.object_ref();
    let n = m.next_state(&s, &Action::Builtin(key.clone())).unwrap();
    assert_eq!(
        n.etcd.objects[&key].status().unwrap()["readyReplicas"],
        json!(3)
    );
    m.actions(&n, &mut acts);
    let mut acts2 = Vec::new();
    m.actions(&n, &mut acts2);
    assert!(!acts2.contains(&Action::Builtin(key)), "settled");
}

#[test]
fn reconciles_are_rescheduled_after_they_end() {
    let m = machine(scope(Faults::default(), 0, 0));
    let key = m.cr_key();
    let mut s = m
        .next_state(&m.init_states()[0], &Action::UserCreate)
        .unwrap();
    // drive the system with fair actions only, until quiescent twice
    let mut starts = 0;
    for _ in 0..200 {
        let mut acts = Vec::new();
        m.actions(&s, &mut acts);
        let a = acts
            .iter()
            .find(|a| !matches!(a, Action::Start(_)))
            .or_else(|| acts.first())
            .cloned()
            .unwrap();
        if a == Action::Start(key.clone()) {
            starts += 1;
        }
        s = m.representative(m.next_state(&s, &a).unwrap());
    }
    assert!(starts >= 2, "a finished reconcile is started again");
    assert!(matches(
        &s.etcd.objects[&key].to_typed::<Greeting>().unwrap(),
        &s.etcd
    ));
}

#[test]
fn user_edits_respect_validation_and_bounds() {
    let m = machine(scope(Faults::default(), 1, 0));
    let s = m
        .next_state(&m.init_states()[0], &Action::UserCreate)
        .unwrap();
    let e = m.next_state(&s, &Action::UserEdit(1)).unwrap();
    assert_eq!(e.env.edits_left, 0);
    assert!(m.next_state(&e, &Action::UserEdit(0)).is_none());
    assert_eq!(
        e.etcd.objects[&m.cr_key()].spec().unwrap(),
        &json!({"text": "b"})
    );
    let _ = Checker::new(&m);
}

#[test]
fn lost_update_invariant_flags_unconditional_updates_built_from_older_generations() {
    use anvil_cluster_model::model::{Msg, lost_update_in};
    use anvil_reconciler::KubeRequest;
    let m = machine(scope(Faults::default(), 0, 0));
    let mut s = m.init_states().remove(0);
    let sts = DynamicObject::from_json(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"replicas": 1, "serviceName": "s", "selector": {}}}))
    .unwrap();
    let v1 = s.etcd.create(&m.kinds, &sts).unwrap();
    let v2 = s
        .etcd
        .update(
            &m.kinds,
            &v1.modify(|p| {
                p.body["spec"]["replicas"] = json!(2);
            }),
        )
        .unwrap();
    assert_eq!(v2.metadata().generation, Some(2));
    let send = |o: DynamicObject| Msg {
        stale: true,
        from: m.cr_key(),
        req: Request::Kube(KubeRequest::Update(o)),
    };
    // built from generation 1, unconditional: would overwrite generation 2
    let stale = v1.modify(|p| p.metadata.resource_version = None);
    s.network.push(send(stale));
    assert!(lost_update_in(&s));
    // the same update with its resourceVersion would fail with Conflict: not a lost update
    s.network[0] = send(v1.clone());
    assert!(!lost_update_in(&s));
    // built from the current generation: fine
    s.network[0] = send(v2.modify(|p| p.metadata.resource_version = None));
    assert!(!lost_update_in(&s));
}
