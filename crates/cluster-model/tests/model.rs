//! The cluster state machine: runtime, faults, built-ins, and the soundness of the canonical
//! renaming of tokens.

mod support;

use anvil_checker::{Checker, Fairness, Machine};
use anvil_cluster_model::esr::{self, CheckOptions};
use anvil_cluster_model::model::{Action, Key, Pending, canonicalize, rename_state, visit_state};
use anvil_cluster_model::tokens::{Renaming, Space, check_renaming_bisimulation, parse};
use anvil_cluster_model::{Faults, NoExternalModel};
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::{Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use std::collections::BTreeSet;
use support::*;

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

/// The canonical renaming is a bisimulation: non-canonical copies of the reachable states
/// (tokens permuted at random onto numbers with gaps, counters above them; without the
/// reductions, scattered order-preservingly) have the canonical form of the original, the
/// same enabled actions, canonically equal successors and equal fairness keys. The Greeting
/// controller copies a resourceVersion into its local state and into a Secret's annotation,
/// so renamings must be consistent across objects and local state.
#[test]
fn renaming_is_a_bisimulation() {
    for reduce in [true, false] {
        let m = machine(scope(all_faults(), 1, 1)).with_reductions(reduce);
        let r = check_renaming_bisimulation(&m, 1500).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.states, 1500);
        assert!(r.renamed_states * 10 >= r.states * 9, "{r:?}");
        assert!(r.max_tokens >= 4, "{r:?}");
    }
}

/// With the reductions on, states that differ only by a permutation of their tokens are one
/// state (the order of tokens is forgotten); without them they stay apart.
#[test]
fn states_that_differ_by_a_permutation_of_tokens_are_one_state() {
    let m = machine(scope(all_faults(), 1, 1));
    let unreduced = machine(scope(all_faults(), 1, 1)).with_reductions(false);
    let mut swapped_any = 0;
    for s in reachable(&m, 2000) {
        // two live resourceVersions of s, swapped
        let mut rvs: Vec<u64> = tokens(&s)
            .iter()
            .filter_map(|t| parse(t))
            .filter(|(sp, _)| *sp == Space::Rv)
            .map(|(_, n)| n)
            .collect();
        rvs.sort_unstable();
        rvs.dedup();
        let [a, b, ..] = rvs[..] else { continue };
        let swap = Renaming::table([(a, b), (b, a)].into(), Default::default());
        let mut t = s.clone();
        rename_state::<G, NoExternalModel>(&mut t, &swap);
        assert_ne!(t, s);
        assert_eq!(
            m.representative(t.clone()),
            s,
            "one state with the reductions"
        );
        let kept = unreduced.representative(s.clone());
        assert_ne!(
            unreduced.representative(t),
            kept,
            "two states when the order of tokens is kept"
        );
        swapped_any += 1;
    }
    assert!(swapped_any > 500, "{swapped_any}");
}

#[test]
fn crash_makes_requests_stale_and_their_responses_are_ignored() {
    let mut sc = scope(all_faults(), 0, 0);
    sc.faults.drop = false;
    // the first request is a read, which the reduced model drops with its crashed sender
    let reduced = machine(sc.clone());
    let s0 = reduced.init_states().remove(0);
    let s1 = reduced.next_state(&s0, &Action::UserCreate(0)).unwrap();
    let s2 = reduced
        .next_state(&s1, &Action::Start(reduced.cr_key()))
        .unwrap();
    assert!(matches!(&s2.network[0].req, Request::Kube(k) if !k.is_mutating()));
    let s3 = reduced.next_state(&s2, &Action::Crash).unwrap();
    assert!(s3.network.is_empty() && s3.ongoing.is_empty());
    // unreduced, the read stays in flight, stale
    let m = machine(sc).with_reductions(false);
    let s0 = m.init_states().remove(0);
    let s1 = m.next_state(&s0, &Action::UserCreate(0)).unwrap();
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
    // one fault class at a time (the reduced model switches every class off in one step)
    let m = machine(scope(all_faults(), 0, 0)).with_reductions(false);
    let s0 = m.init_states().remove(0);
    let s1 = m.next_state(&s0, &Action::UserCreate(0)).unwrap();
    let key = m.cr_key();
    let s2 = m.next_state(&s1, &Action::Start(key.clone())).unwrap();
    let s3 = m
        .next_state(
            &s2,
            &Action::Drop(0, anvil_reconciler::ErrorReason::Timeout),
        )
        .unwrap();
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
    assert!(
        m.next_state(
            &s4,
            &Action::Drop(0, anvil_reconciler::ErrorReason::Timeout)
        )
        .is_none()
    );
    assert_eq!(
        m.fairness(
            &s3,
            &Action::Disable(anvil_cluster_model::model::Fault::Drop)
        ),
        Fairness::Weak(Key::Disable(anvil_cluster_model::model::Fault::Drop))
    );
    assert_eq!(
        m.fairness(
            &s2,
            &Action::Drop(0, anvil_reconciler::ErrorReason::Timeout)
        ),
        Fairness::Unfair
    );
}

#[test]
fn with_the_reductions_faults_have_no_switches_and_happen_finitely_often() {
    use anvil_cluster_model::model::Fault;
    let f = Faults {
        lost_response: true,
        other_updates: 1,
        ..all_faults()
    };
    let reduced = machine(scope(f.clone(), 0, 0));
    let plain = machine(scope(f, 0, 0)).with_reductions(false);
    let s0 = reduced.init_states().remove(0);
    let disables = |m: &M, s: &S| {
        let mut acts = Vec::new();
        m.actions(s, &mut acts);
        acts.retain(|a| matches!(a, Action::Disable(_)));
        acts
    };
    // no switch steps with the reductions; one per class without them
    assert!(disables(&reduced, &s0).is_empty());
    assert!(
        reduced
            .next_state(&s0, &Action::Disable(Fault::Crash))
            .is_none()
    );
    assert_eq!(
        disables(&plain, &s0),
        [
            Action::Disable(Fault::Crash),
            Action::Disable(Fault::Drop),
            Action::Disable(Fault::LostResponse),
            Action::Disable(Fault::OtherWriter)
        ]
    );
    // fault steps: finitely often with the reductions, unfair (behind switches) without
    let s1 = reduced.next_state(&s0, &Action::UserCreate(0)).unwrap();
    let s2 = reduced
        .next_state(&s1, &Action::Start(reduced.cr_key()))
        .unwrap();
    let mut acts = Vec::new();
    reduced.actions(&s2, &mut acts);
    let faults: Vec<&Action> = acts
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Crash | Action::Drop(..) | Action::LoseResponse(..)
            )
        })
        .collect();
    assert!(faults.len() >= 3, "{acts:?}");
    for a in faults {
        assert!(reduced.next_state(&s2, a).is_some(), "{a:?} is enabled");
        assert_eq!(reduced.fairness(&s2, a), Fairness::Finite, "{a:?}");
        assert_eq!(plain.fairness(&s2, a), Fairness::Unfair, "{a:?}");
    }
    // the environment stays unfair (its budget bounds it)
    assert_eq!(
        reduced.fairness(&s0, &Action::UserCreate(0)),
        Fairness::Unfair
    );
}

#[test]
fn garbage_collector_removes_orphans_and_builtins_settle() {
    // the collector's two steps, as the unreduced model takes them (with the reductions one
    // step unless the object may be adopted: `runtime_semantics.rs`)
    let m = machine(scope(Faults::default(), 0, 1)).with_reductions(false);
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
    // the collector decides, and its delete (with a uid precondition) travels like a request
    let n = m.next_state(with_orphan, &Action::Gc(cm.clone())).unwrap();
    assert!(
        n.etcd.objects.contains_key(&cm),
        "only decided, not yet deleted"
    );
    assert_eq!(n.gc.len(), 1);
    assert_eq!(
        m.fairness(&n, &Action::GcDelete(cm.clone())),
        Fairness::Weak(Key::GcDelete(cm.clone()))
    );
    let n = m.next_state(&n, &Action::GcDelete(cm.clone())).unwrap();
    assert!(!n.etcd.objects.contains_key(&cm));
    assert!(n.gc.is_empty());
}

#[test]
fn builtin_statefulset_controller_brings_replicas_up_one_at_a_time() {
    let m = machine(scope(Faults::default(), 0, 0));
    let sts = DynamicObject::from_json(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"replicas": 3, "serviceName": "s", "selector": {}}}))
    .unwrap();
    let mut s = m.init_states().remove(0);
    let stored = s.etcd.create(&m.kinds, &sts).unwrap();
    let key = stored.object_ref();
    for want in 1..=3 {
        s = m.next_state(&s, &Action::Builtin(key.clone())).unwrap();
        let st = s.etcd.objects[&key].status().unwrap();
        assert_eq!(st["readyReplicas"], json!(want), "{st}");
        assert_eq!(st["availableReplicas"], json!(want));
    }
    let mut acts = Vec::new();
    m.actions(&s, &mut acts);
    assert!(!acts.contains(&Action::Builtin(key.clone())), "settled");
    // scaling down goes one replica at a time too
    let cur = s.etcd.objects[&key].clone();
    s.etcd
        .update(
            &m.kinds,
            &cur.modify(|p| p.body["spec"]["replicas"] = json!(1)),
        )
        .unwrap();
    s = m.next_state(&s, &Action::Builtin(key.clone())).unwrap();
    assert_eq!(
        s.etcd.objects[&key].status().unwrap()["readyReplicas"],
        json!(2)
    );
}

#[test]
fn reconciles_are_rescheduled_after_they_end() {
    let m = machine(scope(Faults::default(), 0, 0));
    let key = m.cr_key();
    let mut s = m
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
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
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
        .unwrap();
    let e = m.next_state(&s, &Action::UserEdit(0, 1)).unwrap();
    assert_eq!(e.env.crs[0].edits_left, 0);
    assert!(m.next_state(&e, &Action::UserEdit(0, 0)).is_none());
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
        basis: None,
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
