//! The garbage collector, shared by both machines: which of its steps are enabled and what
//! they do.
//!
//! Unreduced, the collector works in two steps per object, like the real one: it judges an
//! object to be garbage ([`Action::Gc`]: it exists and none of its owners does) and sends a
//! Delete with the object's uid as precondition ([`GcDelete`]); later the API server executes
//! that Delete ([`Action::GcDelete`]). Between the two, anything may happen to the object,
//! which is how an adoption that races the collector loses the adopted object.
//!
//! # The judgement moved to where it matters (a reduction, on with the others)
//!
//! A judgement only adds an entry to [`State::gc`]; nothing reads that list except the
//! collector's own steps on the same object (no controller, built-in controller, user, other
//! writer, invariant or desired-state predicate looks at it). So with the reductions on the
//! collector has two steps instead:
//!
//! * [`Action::GcCollect`]: judge an object garbage and execute the Delete at once;
//! * [`Action::Gc`], a judgement whose Delete travels as before, but only while a request in
//!   flight may change the object's owner references ([`may_adopt`]: an `Update` or
//!   `GetThenUpdate` of it).
//!
//! Why no verdict changes. *Nothing new is reachable*: `GcCollect` is `Gc` followed by its
//! `GcDelete`, and the restricted `Gc` is `Gc`. *Nothing is lost*: take an unreduced execution
//! with a judgement of object `o` (uid `u`) at time `t` and its Delete executed at `t'` (or
//! never). From the last time before `t` at which the judgement became enabled until `t`, and
//! on until the first of these events after `t`, `o` exists with uid `u` and stays garbage:
//! (a) the Delete executes at `t'`: move the judgement to `t'`, where it is still enabled
//! (garbage, no entry), and the pair is one `GcCollect`; (b) `o` stops being garbage at `t1`:
//! owners never come back (an owner reference names a uid, and uids are never reused), so the
//! step at `t1` wrote `o`'s owner references, i.e. handled an `Update` or `GetThenUpdate` of
//! `o` (built-in controllers write status, other writers' updates never touch owner references,
//! see [`crate::model::builtins::scribble`]); that request was in flight just before `t1`, so
//! the judgement moves there; (c) `o` is deleted (by anyone) at `t1`: the judgement and its
//! Delete, which then fails its precondition and changes nothing, are removed. Moving a
//! judgement only changes [`State::gc`] in the states in between, and no step there reads that
//! entry (the only ones that do are the judgement and the Delete of `o`, which are not enabled
//! or not taken in between), so every other step is enabled with the same effect. The moved
//! execution passes through the same API-server, network, reconcile and external states, up
//! to the collector's list; every property we check is blind to that list.
//!
//! Fairness carries over. Both reduced steps have the judgement's fairness key, enabled
//! exactly when the unreduced judgement is (`GcCollect` is enabled for every garbage object
//! without an entry). An unreduced fair execution in which `o` stays garbage forever is
//! impossible (the judgement or the Delete would be enabled forever), and so is one of the
//! reduced model, so both models have the same fair suffixes up to the collector's list.
//! `crates/anvil/tests/reductions.rs` compares verdicts with and without the reductions on
//! scopes with deletions.

use crate::api::{Etcd, garbage_collectable};
use crate::kinds::KindRegistry;
use crate::model::stale::CreatePruning;
use crate::model::state::{Action, GcDelete, Msg, State};
use anvil_objects::ObjectRef;
use anvil_reconciler::{KubeRequest, Preconditions, Request};

/// Whether handling `req` may change the owner references of the object at `key` while
/// keeping it (and its uid): the writes before which a judgement of that object must be
/// possible (module docs).
pub fn may_adopt<Q>(req: &Request<Q>, key: &ObjectRef) -> bool {
    let Request::Kube(k) = req else {
        return false;
    };
    match k {
        KubeRequest::Update(obj) | KubeRequest::GetThenUpdate { obj, .. } => {
            obj.kind() == &key.kind && obj.namespace() == key.namespace && obj.name() == key.name
        }
        // reads; a Create of an existing object fails; deletes end the object; status writes
        // leave metadata alone
        KubeRequest::Get(_)
        | KubeRequest::List { .. }
        | KubeRequest::Create(_)
        | KubeRequest::Delete { .. }
        | KubeRequest::GetThenDelete { .. }
        | KubeRequest::UpdateStatus(_)
        | KubeRequest::GetThenUpdateStatus { .. } => false,
    }
}

/// Whether the collector may judge the object at `key`: it is garbage and no judgement of it
/// is in flight.
fn judgeable(etcd: &Etcd, gc: &[GcDelete], key: &ObjectRef) -> bool {
    garbage_collectable(etcd, key) && !gc.iter().any(|g| &g.key == key)
}

/// Whether, with the reductions on, the judgement of the object at `key` may be a step of its
/// own: a request in flight may adopt the object ([`may_adopt`]).
fn may_be_adopted<Q>(network: &[Msg<Q>], key: &ObjectRef) -> bool {
    network.iter().any(|m| may_adopt(&m.req, key))
}

/// Pushes the collector's steps on the object at `key` (which exists in `etcd`).
pub(crate) fn collector_actions<Q>(
    etcd: &Etcd,
    network: &[Msg<Q>],
    gc: &[GcDelete],
    key: &ObjectRef,
    reduce: bool,
    out: &mut Vec<Action>,
) {
    if !judgeable(etcd, gc, key) {
        return;
    }
    if reduce {
        out.push(Action::GcCollect(key.clone()));
    }
    if !reduce || may_be_adopted(network, key) {
        out.push(Action::Gc(key.clone()));
    }
}

/// Pushes the API server's handling of the collector's Deletes in flight.
pub(crate) fn collector_deletes(gc: &[GcDelete], out: &mut Vec<Action>) {
    out.extend(gc.iter().map(|g| Action::GcDelete(g.key.clone())));
}

/// The collector's step `a` (`Gc`, `GcCollect` or `GcDelete`) from `s` into `n` (a clone of
/// `s`); `None` when it is not enabled.
pub(crate) fn collector_step<T, Q, P, X>(
    kinds: &KindRegistry,
    creates: &CreatePruning,
    reduce: bool,
    s: &State<T, Q, P, X>,
    n: &mut State<T, Q, P, X>,
    a: &Action,
) -> Option<()> {
    match a {
        Action::Gc(k) => {
            if !judgeable(&s.etcd, &s.gc, k) || (reduce && !may_be_adopted(&s.network, k)) {
                return None;
            }
            n.gc.push(judge(&s.etcd, k)?);
            n.gc.sort();
        }
        Action::GcCollect(k) => {
            if !reduce || !judgeable(&s.etcd, &s.gc, k) {
                return None;
            }
            execute(kinds, &mut n.etcd, judge(&s.etcd, k)?);
            creates.observe(&s.etcd, &n.etcd, &s.env);
        }
        Action::GcDelete(k) => {
            let i = n.gc.iter().position(|g| &g.key == k)?;
            let g = n.gc.remove(i);
            execute(kinds, &mut n.etcd, g);
            creates.observe(&s.etcd, &n.etcd, &s.env);
        }
        _ => return None,
    }
    Some(())
}

/// The collector's judgement of the object at `key`: a Delete carrying its uid.
fn judge(etcd: &Etcd, key: &ObjectRef) -> Option<GcDelete> {
    Some(GcDelete {
        key: key.clone(),
        uid: etcd.objects.get(key)?.uid()?.to_string(),
    })
}

/// The API server executes the collector's Delete. A failed precondition or a missing object:
/// the Delete fails and the collector re-examines the object later (a fresh judgement).
fn execute(kinds: &KindRegistry, etcd: &mut Etcd, g: GcDelete) {
    let pre = Preconditions {
        uid: Some(g.uid),
        resource_version: None,
    };
    let _ = etcd.delete(kinds, &g.key, Some(&pre));
}
