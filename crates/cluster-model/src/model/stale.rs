//! Requests outliving their sender: what a crash does to the network, and which stale
//! requests can be forgotten because they can never take effect.
//!
//! # Doomed stale requests (a reduction, on with the others)
//!
//! A stale request (its sender crashed) whose precondition names a resourceVersion or uid
//! that the stored object no longer has can never succeed: the API server hands out only
//! fresh resourceVersions and uids (canonical renaming keeps the counters above every token in
//! the state, [`crate::tokens`]), so the object will never have that version or uid again, and
//! a missing object comes back, if ever, with fresh ones. Handling such a request fails with
//! `Conflict` or `NotFound`, changes nothing in the API server, and its answer is discarded
//! (nobody waits for a stale request). [`drop_doomed_stale`] removes such requests from the
//! representative state.
//!
//! Why no verdict changes. Let `s` hold a doomed stale request `m` and `s'` be `s` without it.
//! In the unreduced model `Handle(m)` leads from `s` to `s'` and changes nothing else (a
//! stutter step), so every reduced state is reachable unreduced. Everything else enabled in `s`
//! is enabled in `s'` with the same effect, since no step reads a stale request except its own
//! `Handle`/`Drop` and the crash's bound on requests in flight, which `s'` satisfies whenever
//! `s` does. So an unreduced execution maps to a reduced one by removing each doomed request
//! when it becomes doomed (through the same API-server, external and local states, up to
//! stuttering); conversely a reduced execution is an unreduced one with `Handle(m)` inserted
//! where `m` became doomed. Weak fairness forces every stale request to be handled in a fair
//! unreduced execution, so both have the same fair suffixes. The built-in invariants ignore
//! such requests: `no_foreign_writes` looks at live requests only and `no_lost_updates` at
//! unconditional Updates only (a request pruned here carries a resourceVersion, or is a
//! Delete). The controller-set machine's `no_shared_writes` invariant looks at stale writes
//! too, but not at those that would fail if handled now (of which the doomed ones are a part):
//! a write that cannot take effect writes nothing.
//!
//! # Stale Creates of existing objects (the same reduction, under a checked assumption)
//!
//! A stale Create of an object that exists fails with `AlreadyExists`, and keeps failing as
//! long as the object is not deleted. In a check where no object is ever deleted it is doomed
//! like the requests above, with the same argument. Whether anything is ever deleted is not
//! known in advance (the reconciler may delete), so both machines prune such Creates only in
//! scopes without user or other-writer deletions, and watch every step ([`CreatePruning`]): a
//! step that removes an object or marks it for deletion sets the monitor, and the harness then
//! checks again without pruning Creates ([`crate::esr::verify`], [`crate::esr_set::verify_set`]). That is sound because the pruned model simulates the unpruned
//! one up to the first deletion: take a shortest unpruned execution that ends with a
//! deletion; before that step nothing was deleted, so every Create pruned along it was doomed,
//! the execution maps to a pruned one through the same states minus those requests, and its
//! last step (not the handling of a pruned Create, which deletes nothing) is enabled there.
//! A complete pruned search therefore executes a deletion whenever the unpruned model has
//! one. Whatever the monitor says, every pruned state is reachable unpruned (pruning is a
//! failed `Handle` of a stale request), so a violation found with pruning is real.

use crate::api::Etcd;
use crate::kinds::KindRegistry;
use crate::model::state::Msg;
use anvil_reconciler::{KubeRequest, Request};
use std::sync::atomic::{AtomicBool, Ordering};

/// The pruning of stale Creates of existing objects in one search (module docs): whether it
/// is on, and the monitor of the assumption it rests on (whether any explored step removed an
/// object from the API server or marked it for deletion; shared by the search threads). Both
/// machines hold one.
#[derive(Debug, Default)]
pub struct CreatePruning {
    on: bool,
    deleted: AtomicBool,
}

impl CreatePruning {
    /// Pruning on (`on`) or off, with a fresh monitor.
    pub fn new(on: bool) -> Self {
        CreatePruning {
            on,
            deleted: AtomicBool::new(false),
        }
    }

    /// Whether stale Creates of existing objects are pruned.
    pub fn on(&self) -> bool {
        self.on
    }

    /// Records a step from `before` to `after` (nothing when the pruning is off); `deletes`:
    /// the step was a delete (which may only mark its object). Any other write deletes only
    /// by removing the last finalizer of a marked object, which shrinks the store. Compares
    /// lengths and content sums only: it runs on every write the search executes.
    pub fn observe(&self, before: &Etcd, after: &Etcd, deletes: bool) {
        if self.on
            && (after.objects.len() < before.objects.len()
                || (deletes && after.objects != before.objects))
        {
            self.deleted.store(true, Ordering::Relaxed);
        }
    }

    /// Records the handling of `req` from `before` to `after` (nothing for a read).
    pub fn observe_request<Q>(&self, before: &Etcd, after: &Etcd, req: &Request<Q>) {
        if let Request::Kube(k) = req
            && k.is_mutating()
        {
            let deletes = matches!(
                k,
                KubeRequest::Delete { .. } | KubeRequest::GetThenDelete { .. }
            );
            self.observe(before, after, deletes);
        }
    }

    /// Whether the pruning was on and a step deleted an object: the search rested on a false
    /// assumption and must be repeated without the pruning.
    pub fn must_repeat(&self) -> bool {
        self.on && self.deleted.load(Ordering::Relaxed)
    }
}

/// A request that cannot change any state: a Kubernetes read.
pub(crate) fn is_read_only<Q>(r: &Request<Q>) -> bool {
    matches!(r, Request::Kube(k) if !k.is_mutating())
}

/// Whether `m` is a live write request for which `mine` holds: a request a crash of its
/// sender may discard as never sent ([`crate::model::Action::CrashUnsent`]).
fn unsendable<Q>(m: &Msg<Q>, mine: &impl Fn(&Msg<Q>) -> bool) -> bool {
    !m.stale && !is_read_only(&m.req) && mine(m)
}

/// The crash variants that discard unsent writes, for the controller (or member) whose
/// requests `mine` selects: every non-empty subset of its live writes in flight (bit `j`: the
/// `j`-th in network order; at most 2^8 - 1 variants).
pub(crate) fn unsent_masks<Q>(
    network: &[Msg<Q>],
    mine: impl Fn(&Msg<Q>) -> bool,
) -> impl Iterator<Item = u32> {
    let n = network.iter().filter(|m| unsendable(m, &mine)).count();
    1..(1u32 << n.min(8))
}

/// The network after a crash of the controller (or member) whose requests `mine` selects:
/// the requests named by `unsent` (bits over [`unsendable`]) are removed as never sent, with
/// the reductions on its reads in flight go too (nobody reads their answer and their handling
/// changes nothing), and its remaining requests become stale. `None`: `unsent` names a request
/// that is not there.
pub(crate) fn crash_network<Q>(
    network: &mut Vec<Msg<Q>>,
    mine: impl Fn(&Msg<Q>) -> bool,
    reduce: bool,
    unsent: u32,
) -> Option<()> {
    if unsent != 0 {
        let mut j = 0;
        network.retain(|m| {
            if !unsendable(m, &mine) {
                return true;
            }
            j += 1;
            unsent & (1 << (j - 1)) == 0
        });
        if unsent >> j.min(31) != 0 {
            return None;
        }
    }
    if reduce {
        network.retain(|m| !(mine(m) && !m.stale && is_read_only(&m.req)));
    }
    for m in network.iter_mut() {
        if mine(m) {
            m.stale = true;
        }
    }
    Some(())
}

/// Whether `req`, sent by a reconcile that has since crashed, can never succeed in any
/// future of `etcd` (module docs): an Update or UpdateStatus with a resourceVersion whose
/// object is gone or has another resourceVersion or uid (an Update of a kind that the API
/// server creates on update only when the stored object has another uid: once deleted, such
/// an object may be re-created by that very request), or a Delete whose preconditions name
/// another resourceVersion or uid (or a missing object). With `creates` (no object is ever
/// deleted, module docs), also a Create of an object that exists.
pub(crate) fn doomed(kinds: &KindRegistry, etcd: &Etcd, req: &KubeRequest, creates: bool) -> bool {
    let gone = |key, uid: Option<&str>, rv: Option<&str>, recreates: bool| {
        let Some(cur) = etcd.objects.get(key) else {
            return !recreates;
        };
        uid.is_some_and(|u| cur.uid() != Some(u))
            || (!recreates && rv.is_some_and(|r| cur.resource_version() != Some(r)))
    };
    match req {
        KubeRequest::Update(o) | KubeRequest::UpdateStatus(o) => {
            let Some(rv) = o.resource_version() else {
                return false;
            };
            let recreates = matches!(req, KubeRequest::Update(_))
                && o.uid().is_none()
                && kinds.info(o.kind()).create_on_update;
            gone(&o.object_ref(), o.uid(), Some(rv), recreates)
        }
        KubeRequest::Delete {
            key,
            preconditions: Some(p),
        } => {
            (p.uid.is_some() || p.resource_version.is_some())
                && gone(key, p.uid.as_deref(), p.resource_version.as_deref(), false)
        }
        KubeRequest::Create(o) => creates && etcd.objects.contains_key(&o.object_ref()),
        _ => false,
    }
}

/// Removes the stale requests that can never succeed ([`doomed`], module docs); with
/// `creates`, also the stale Creates of objects that exist (sound only while no object is
/// ever deleted: see [`CreatePruning`]).
pub fn drop_doomed_stale<Q>(
    kinds: &KindRegistry,
    etcd: &Etcd,
    network: &mut Vec<Msg<Q>>,
    creates: bool,
) {
    network.retain(|m| match &m.req {
        Request::Kube(k) if m.stale => !doomed(kinds, etcd, k, creates),
        _ => true,
    });
}
