//! Canonical form of a state: the network sorted, tokens renamed onto `1..k` (see
//! [`crate::tokens`] for the soundness argument), either keeping their order or -- with the
//! reductions on -- forgetting it ([`TokenOrder`]).

use crate::external::ExternalModel;
use crate::model::ModelReconciler;
use crate::model::memo::stable_hash;
use crate::model::state::{Msg, Pending, State, StateOf};
use crate::tokens::{Collector, Renaming, Tokens, check_tokens_reported};
use anvil_objects::{DynamicObject, ObjectRef};
use anvil_reconciler::{Request, Response};
use std::fmt::Debug;
use std::hash::Hash;

/// Which canonical renaming of tokens a machine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenOrder {
    /// Order-preserving: in each space the `i`-th smallest live token becomes `i`
    /// ([`Collector::renaming`]). The unreduced model (`--no-reductions`).
    Kept,
    /// Forgotten: live tokens are numbered in the order of their first occurrence in a
    /// traversal that does not depend on their values ([`Collector::renaming_by_occurrence`]),
    /// so states that differ by a permutation of tokens are one state. With the reductions on;
    /// sound because tokens are compared for equality only (see [`crate::tokens`], "Forgetting
    /// the order of tokens").
    Forgotten,
}

/// Canonicalises a state of the single-controller machine in place as the machine does with
/// its reductions on (the default): see [`canonicalize_state`] with [`TokenOrder::Forgotten`].
pub fn canonicalize<R, X>(s: &mut StateOf<R, X>)
where
    R: ModelReconciler,
    X: ExternalModel,
{
    canonicalize_state(s, TokenOrder::Forgotten)
}

/// Canonicalises any state of the composed machine whose parts report their tokens (the local
/// states `T`, external requests `Q`, responses `P` and external state `XS`; the
/// controller-set machine's states, [`crate::model::set`], are such states too): sorts the
/// network and renames the tokens onto `1..k` per space as `order` says, setting the counters
/// to `k`.
pub fn canonicalize_state<T, Q, P, XS>(s: &mut State<T, Q, P, XS>, order: TokenOrder)
where
    T: Tokens + Debug + Hash,
    XS: Tokens + Debug + Hash,
    Request<Q>: Tokens + Debug + Hash,
    Response<P>: Tokens + Debug + Hash,
{
    if order == TokenOrder::Forgotten && s.network.len() > 1 {
        // the traversal visits the requests in an order that no renaming changes (stable: ties
        // keep their order, see the module docs of `crate::tokens`)
        s.network
            .sort_by(|a, b| free_of_tokens(a).cmp(&free_of_tokens(b)));
    }
    let mut c = Collector::default();
    walk_tokens(s, &mut Parsed(&mut c));
    let r = match order {
        TokenOrder::Kept => c.renaming(),
        TokenOrder::Forgotten => c.renaming_by_occurrence(),
    };
    s.etcd.rv = r.rv_count();
    s.etcd.uid = r.uid_count();
    rename_any_state(s, &r);
}

/// Calls `f` on every string of the state that may be a token. In debug builds it first checks
/// (once per distinct value) that every token in the requests, local states, responses and the
/// external state is reported by its `Tokens` impl ([`check_tokens_reported`]).
pub fn visit_state<R, X>(s: &StateOf<R, X>, f: &mut dyn FnMut(&str))
where
    R: ModelReconciler,
    X: ExternalModel,
{
    visit_any_state(s, f)
}

/// [`visit_state`] for any state whose parts report their tokens. The order (the one the
/// canonical renaming that forgets order numbers tokens by) depends on no token value except
/// within the network: objects by key, the garbage collector's deletions, the reconciles by CR
/// key (snapshot, local state, response, reads seen), the external state, then the requests in
/// flight in their order.
pub fn visit_any_state<T, Q, P, XS>(s: &State<T, Q, P, XS>, f: &mut dyn FnMut(&str))
where
    T: Tokens + Debug + Hash,
    XS: Tokens + Debug + Hash,
    Request<Q>: Tokens + Debug + Hash,
    Response<P>: Tokens + Debug + Hash,
{
    walk_tokens(s, &mut Strings(f))
}

/// What a traversal of a state's tokens ([`walk_tokens`]) does with each part: report its
/// strings ([`visit_any_state`]) or its parsed tokens (canonicalisation).
trait TokenSink {
    fn part<V: Tokens>(&mut self, v: &V);
    fn string(&mut self, s: &str);
}

struct Strings<'a>(&'a mut dyn FnMut(&str));

impl TokenSink for Strings<'_> {
    fn part<V: Tokens>(&mut self, v: &V) {
        v.visit(self.0)
    }
    fn string(&mut self, s: &str) {
        (self.0)(s)
    }
}

struct Parsed<'a>(&'a mut Collector);

impl TokenSink for Parsed<'_> {
    fn part<V: Tokens>(&mut self, v: &V) {
        v.visit_tokens(&mut |space, n| self.0.add_token(space, n))
    }
    fn string(&mut self, s: &str) {
        self.0.add(s)
    }
}

/// The traversal of [`visit_any_state`], in its order.
fn walk_tokens<T, Q, P, XS>(s: &State<T, Q, P, XS>, sink: &mut impl TokenSink)
where
    T: Tokens + Debug + Hash,
    XS: Tokens + Debug + Hash,
    Request<Q>: Tokens + Debug + Hash,
    Response<P>: Tokens + Debug + Hash,
{
    for o in s.etcd.objects.values() {
        sink.part(o);
    }
    for g in &s.gc {
        sink.string(&g.uid);
    }
    for o in s.ongoing.values() {
        sink.part(&o.cr);
        check_tokens_reported(&o.local);
        sink.part(&o.local);
        if let Pending::Ready(r) = &o.pending {
            check_tokens_reported(r);
            sink.part(r);
        }
        for (_, rv) in &o.seen {
            sink.string(rv);
        }
    }
    check_tokens_reported(&s.external);
    sink.part(&s.external);
    for m in &s.network {
        check_tokens_reported(&m.req);
        sink.part(&m.req);
        if let Some(b) = &m.basis {
            sink.string(b);
        }
    }
}

/// Applies `r` to every token of the state (not to the counters) and re-sorts the network.
pub fn rename_state<R, X>(s: &mut StateOf<R, X>, r: &Renaming)
where
    R: ModelReconciler,
    X: ExternalModel,
{
    rename_any_state(s, r)
}

/// [`rename_state`] for any state whose parts report their tokens.
pub fn rename_any_state<T, Q, P, XS>(s: &mut State<T, Q, P, XS>, r: &Renaming)
where
    T: Tokens + Debug + Hash,
    XS: Tokens + Debug + Hash,
    Request<Q>: Tokens + Debug + Hash,
    Response<P>: Tokens + Debug + Hash,
{
    if !r.is_identity() {
        let renamed: Vec<(ObjectRef, DynamicObject)> = s
            .etcd
            .objects
            .iter()
            .filter_map(|(k, o)| {
                let n = o.rename(r);
                (&n != o).then(|| (k.clone(), n))
            })
            .collect();
        if !renamed.is_empty() {
            for (k, o) in renamed {
                s.etcd.objects.insert(k, o);
            }
        }
        for m in &mut s.network {
            m.req = m.req.rename(r);
            m.basis = m.basis.rename(r);
        }
        for g in &mut s.gc {
            g.uid = g.uid.rename(r);
        }
        for o in s.ongoing.values_mut() {
            o.cr = o.cr.rename(r);
            o.local = o.local.rename(r);
            if let Pending::Ready(resp) = &o.pending {
                o.pending = Pending::Ready(resp.rename(r));
            }
            for (_, rv) in &mut o.seen {
                *rv = rv.rename(r);
            }
        }
        s.external = s.external.rename(r);
    }
    if s.network.len() > 1 {
        s.network.sort_by(|a, b| {
            free_of_tokens(a)
                .cmp(&free_of_tokens(b))
                .then_with(|| stable_hash(&a.req).cmp(&stable_hash(&b.req)))
        });
    }
}

/// The order of requests in a canonical network: by staleness and sender, then by what the
/// request does (verb and target, which no renaming of tokens changes), then by content hash
/// (computed only for ties, which are rare). The first keys keep the positions of a sender's
/// stale requests (the `pos` of their fairness keys) the same in every renaming of a state
/// whenever they differ in verb or target, as the stale writes of one crashed reconcile do.
/// This is the part that no renaming of tokens changes (borrowed: sorting a network clones no
/// key).
fn free_of_tokens<Q>(m: &Msg<Q>) -> (bool, &ObjectRef, &'static str, Option<Target<'_>>) {
    let (verb, target) = match &m.req {
        Request::Kube(k) => (k.verb(), target_of(k)),
        Request::External(_) => ("external", None),
    };
    (m.stale, &m.from, verb, target)
}

/// The target of a request as [`anvil_reconciler::KubeRequest::key`] names it, borrowed: the
/// key itself, or the kind, namespace and name of the object it carries (ordered like an
/// [`ObjectRef`]: kind, namespace, name).
type Target<'a> = (&'a anvil_objects::Kind, &'a str, &'a str);

fn target_of(k: &anvil_reconciler::KubeRequest) -> Option<Target<'_>> {
    use anvil_reconciler::KubeRequest as K;
    match k {
        K::Get(key) | K::Delete { key, .. } | K::GetThenDelete { key, .. } => {
            Some((&key.kind, &key.namespace, &key.name))
        }
        K::List { .. } => None,
        K::Create(o)
        | K::Update(o)
        | K::UpdateStatus(o)
        | K::GetThenUpdate { obj: o, .. }
        | K::GetThenUpdateStatus { obj: o, .. } => Some((o.kind(), o.namespace(), o.name())),
    }
}
