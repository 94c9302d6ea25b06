//! The eager-steps reduction (`anvil_cluster_model::model`, "Eager steps"): with the
//! reductions on, a reconcile processes a response in the step that delivers it, and a crash may
//! discard the writes it had not sent yet. These tests pin the shape of the reduced steps and
//! compare what is reachable with and without the reductions.

mod support;

use anvil_checker::Machine;
use anvil_cluster_model::model::{Action, Pending, canonicalize};
use anvil_cluster_model::{Faults, NoExternalModel};
use anvil_reconciler::Request;
use std::collections::{BTreeSet, HashSet};
use support::*;

/// The state right after the CR's first reconcile started (its first request in flight).
fn started(m: &M) -> S {
    let s = m
        .next_state(&m.init_states()[0], &Action::UserCreate(0))
        .unwrap();
    m.next_state(&s, &Action::Start(m.cr_key())).unwrap()
}

fn is_write(s: &S, i: usize) -> bool {
    matches!(&s.network[i].req, Request::Kube(k) if k.is_mutating())
}

#[test]
fn a_response_is_processed_in_the_step_that_delivers_it() {
    let sc = scope(Faults::default(), 0, 0);
    let reduced = machine(sc.clone());
    let plain = machine(sc).with_reductions(false);
    let (mut r, mut p) = (started(&reduced), started(&plain));
    let key = reduced.cr_key();
    let mut steps = 0;
    while !r.network.is_empty() {
        r = reduced.next_state(&r, &Action::Handle(0)).unwrap();
        p = plain.next_state(&p, &Action::Handle(0)).unwrap();
        if let Some(o) = p.ongoing.get(&key) {
            assert!(matches!(o.pending, Pending::Ready(_)), "unreduced: waits");
            p = plain
                .next_state(&p, &Action::Continue(key.clone()))
                .unwrap();
        }
        assert_eq!(r.etcd, p.etcd);
        assert_eq!(
            r.network, p.network,
            "the next request is in flight at once"
        );
        assert_eq!(r.ongoing, p.ongoing);
        if let Some(o) = r.ongoing.get(&key) {
            assert_eq!(o.pending, Pending::Waiting);
        }
        steps += 1;
    }
    assert!(steps >= 2, "the chain sends several requests");
    assert!(r.ongoing.is_empty(), "and ends");
}

#[test]
fn a_crash_may_discard_the_writes_not_yet_sent() {
    let f = Faults {
        crash: true,
        ..Default::default()
    };
    let reduced = machine(scope(f.clone(), 0, 0));
    let plain = machine(scope(f, 0, 0)).with_reductions(false);
    let key = reduced.cr_key();
    // walk both to the first live write in flight; keep the unreduced state before its send
    let (mut r, mut p) = (started(&reduced), started(&plain));
    let mut before_send = None;
    while !is_write(&r, 0) {
        r = reduced.next_state(&r, &Action::Handle(0)).unwrap();
        p = plain.next_state(&p, &Action::Handle(0)).unwrap();
        before_send = Some(p.clone());
        p = plain
            .next_state(&p, &Action::Continue(key.clone()))
            .unwrap();
    }
    let before_send = before_send.expect("the first request is a read");
    let mut acts = Vec::new();
    reduced.actions(&r, &mut acts);
    assert!(acts.contains(&Action::Crash));
    assert!(acts.contains(&Action::CrashUnsent(0, 1)));
    assert!(
        !acts.contains(&Action::CrashUnsent(0, 2)),
        "one write in flight"
    );
    // discarding the write = the unreduced crash before the reconcile sent it
    let discarded = reduced.next_state(&r, &Action::CrashUnsent(0, 1)).unwrap();
    let crashed = plain.next_state(&before_send, &Action::Crash).unwrap();
    assert_eq!(discarded.etcd, crashed.etcd);
    assert_eq!(discarded.network, crashed.network);
    assert!(discarded.ongoing.is_empty() && crashed.ongoing.is_empty());
    // a plain crash keeps it, stale
    let stale = reduced.next_state(&r, &Action::Crash).unwrap();
    assert_eq!(stale.network.len(), 1);
    assert!(stale.network[0].stale);
    // a bit naming no write is not a step; without the reductions there is no such action
    assert!(reduced.next_state(&r, &Action::CrashUnsent(0, 2)).is_none());
    assert!(plain.next_state(&p, &Action::CrashUnsent(0, 1)).is_none());
}

/// Every reachable canonical state, or `None` when there are more than `limit`.
fn all_states(m: &M, limit: usize) -> Option<Vec<S>> {
    let states = reachable(m, limit + 1);
    (states.len() <= limit).then_some(states)
}

/// The API server's storage of `s` with the environment's budget, canonical on its own (the
/// tokens renamed as if nothing else held any).
fn cluster_of(s: &S) -> String {
    let mut t = s.clone();
    t.network.clear();
    t.gc.clear();
    t.ongoing = Default::default();
    t.faults = Default::default();
    canonicalize::<G, NoExternalModel>(&mut t);
    format!("{:?} {:?}", t.etcd, t.env)
}

#[test]
fn the_reductions_keep_every_reachable_cluster_and_remove_unprocessed_responses() {
    for sc in [
        scope(all_faults(), 1, 0),
        scope(
            Faults {
                crash: true,
                drop: true,
                ..Default::default()
            },
            1,
            1,
        ),
    ] {
        let reduced = all_states(&machine(sc.clone()), 400_000).expect("complete");
        let plain = all_states(&machine(sc).with_reductions(false), 400_000).expect("complete");
        assert!(
            reduced.len() * 2 < plain.len(),
            "{} reduced vs {} states",
            reduced.len(),
            plain.len()
        );
        assert!(
            reduced
                .iter()
                .flat_map(|s| s.ongoing.values())
                .all(|o| !matches!(o.pending, Pending::Ready(_))),
            "no state holds a response that is not processed"
        );
        let a: BTreeSet<String> = reduced.iter().map(cluster_of).collect();
        let b: HashSet<String> = plain.iter().map(cluster_of).collect();
        assert_eq!(a.len(), b.len(), "the same API-server states are reachable");
        assert!(a.iter().all(|c| b.contains(c)));
    }
}
