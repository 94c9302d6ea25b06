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
//! # Stale Creates of objects that stay (the same reduction, under a checked assumption)
//!
//! A stale Create of an object that exists fails with `AlreadyExists`, and keeps failing as
//! long as the object is not deleted. Once the environment can delete nothing more (every
//! user and other-writer deletion budget is spent, [`EnvState::deletions_spent`]), an object
//! that exists, is not marked for deletion and is not garbage (one of its owners exists, or
//! it has none) can only be deleted after a step that the search watches ([`CreatePruning`]):
//! a step from such a state that removes or marks for deletion an object which was not
//! garbage, or that makes garbage of an object which was not (by rewriting its owner
//! references, or by deleting the last of its owners). The garbage collector deletes only
//! garbage, and the user and other writers delete nothing more. So a stale Create of such an
//! object is doomed like the requests above as long as no watched step happens, and both
//! machines prune it in states whose deletion budgets are spent. Whether a watched step ever
//! happens is not known in advance (the reconciler may delete, or write owner references), so
//! the harness checks again without this pruning when the monitor saw one
//! ([`crate::esr::verify`], [`crate::esr_set::verify_set`]).
//!
//! That is sound because the pruned model simulates the unpruned one up to the first watched
//! step. Budgets never grow, so every step after a pruning is taken from a state whose budgets
//! are spent. Take a shortest unpruned execution that ends with a watched step. Before that
//! step nothing watched happened, so every object whose Create was pruned along it still
//! exists (its deletion, or its turning garbage before a collection, would be watched), every
//! Create pruned along it was doomed, and the execution maps to a pruned one through the same
//! states minus those requests; its last step (not the handling of a pruned Create, which
//! writes nothing) is enabled there with the same effect on the API server. A complete pruned
//! search therefore takes a watched step whenever the unpruned model has one. Whatever the
//! monitor says, every pruned state is reachable unpruned (pruning is a failed `Handle` of a
//! stale request), so a violation found with pruning is real. In scopes without any deletion
//! budget this prunes from the first state on, as before; in scopes with deletions it prunes
//! after the last one.

use crate::api::{Etcd, garbage_collectable};
use crate::kinds::KindRegistry;
use crate::model::state::{EnvState, Msg};
use anvil_reconciler::{KubeRequest, Request};
use std::sync::atomic::{AtomicBool, Ordering};

/// The pruning of stale Creates of objects that stay in one search (module docs): whether it
/// is on, and the monitor of the assumption it rests on (whether any explored step from a state
/// whose deletion budgets are spent removed or marked for deletion an object that was not
/// garbage, or made garbage of one; shared by the search threads). Both machines hold one.
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

    /// Whether stale Creates of objects that stay are pruned in a state with environment
    /// budget `env`: the pruning is on and no user or other-writer deletion is left.
    pub fn prunes(&self, env: &EnvState) -> bool {
        self.on && env.deletions_spent()
    }

    /// Records a step from `before` (whose environment budget was `env`) to `after`
    /// (nothing when the pruning is off or a deletion budget is left): a watched step removes
    /// or marks for deletion an object that was not garbage, or makes garbage of an object
    /// that was not. Runs on every write the search executes; an unchanged store is
    /// recognised by its content sums.
    pub fn observe(&self, before: &Etcd, after: &Etcd, env: &EnvState) {
        if !self.prunes(env) || after.objects == before.objects {
            return;
        }
        // most writes change an object's spec or status: nothing removed, no owner reference
        // or deletion mark changed, so no object can have become garbage or gone
        let touched = before
            .objects
            .iter()
            .any(|(k, o)| match after.objects.get(k) {
                None => true,
                Some(n) => {
                    n != o
                        && (n.metadata().owner_references != o.metadata().owner_references
                            || n.metadata().deletion_timestamp != o.metadata().deletion_timestamp)
                }
            });
        if !touched {
            return;
        }
        let watched = before.objects.iter().any(|(k, o)| {
            if garbage_collectable(before, k) {
                return false;
            }
            match after.objects.get(k) {
                None => true,
                Some(n) => {
                    (n.metadata().deletion_timestamp.is_some()
                        && o.metadata().deletion_timestamp.is_none())
                        || garbage_collectable(after, k)
                }
            }
        });
        if watched {
            self.deleted.store(true, Ordering::Relaxed);
        }
    }

    /// Records the handling of `req` from `before` to `after` (nothing for a read).
    pub fn observe_request<Q>(
        &self,
        before: &Etcd,
        after: &Etcd,
        req: &Request<Q>,
        env: &EnvState,
    ) {
        if let Request::Kube(k) = req
            && k.is_mutating()
        {
            self.observe(before, after, env);
        }
    }

    /// Whether the pruning was on and a watched step happened: the search rested on a false
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
/// another resourceVersion or uid (or a missing object). With `creates` (the environment can
/// delete nothing more, module docs), also a Create of an object that exists, is not marked
/// for deletion and is not garbage.
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
        KubeRequest::Create(o) => {
            let key = o.object_ref();
            creates
                && etcd
                    .objects
                    .get(&key)
                    .is_some_and(|cur| cur.metadata().deletion_timestamp.is_none())
                && !garbage_collectable(etcd, &key)
        }
        _ => false,
    }
}

/// Removes the stale requests that can never succeed ([`doomed`], module docs); with
/// `creates`, also the stale Creates of objects that stay (sound only under the assumption
/// that [`CreatePruning`] watches: pass [`CreatePruning::prunes`]).
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
