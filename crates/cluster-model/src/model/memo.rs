//! Per-thread memo caches for the pure functions the model calls again and again. Every cache
//! is keyed by a 64-bit hash **and** checks equality of the full key on a hit, so a hash
//! collision can never return another key's answer.

use crate::api::Etcd;
use crate::kinds::KindRegistry;
use crate::model::ModelReconciler;
use anvil_objects::{DynamicObject, StableHasher};
use anvil_reconciler::{KubeRequest, KubeResponse, Reconciler, Request, Response};
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Stable hash (for ordering the network).
pub fn stable_hash<T: Hash>(t: &T) -> u64 {
    let mut h = StableHasher::new();
    t.hash(&mut h);
    h.finish()
}

type CoreKey<R> = (
    DynamicObject,
    Option<Response<<R as Reconciler>::ExternalResponse>>,
    <R as Reconciler>::T,
);
/// The output of one `reconcile_core` step.
pub type CoreOut<R> = (
    <R as Reconciler>::T,
    Option<Request<<R as Reconciler>::ExternalRequest>>,
);

type StatusCache = HashMap<u64, Vec<(DynamicObject, Option<serde_json::Value>)>>;
type AnyCache<K> = HashMap<K, Box<dyn Any>>;
type TypedCache = HashMap<(TypeId, u64), Vec<(DynamicObject, Box<dyn Any>)>>;

thread_local! {
    static NEXT_STATUS: RefCell<StatusCache> = RefCell::new(HashMap::new());
    static PRED: RefCell<AnyCache<(TypeId, u64)>> = RefCell::new(HashMap::new());
    static TYPED: RefCell<TypedCache> = RefCell::new(HashMap::new());
    static CORE: RefCell<AnyCache<(TypeId, u64)>> = RefCell::new(HashMap::new());
    static ETCD: RefCell<AnyCache<(TypeId, u64)>> = RefCell::new(HashMap::new());
}

/// `reconcile_core` on the typed CR, memoised per thread: it is pure and deterministic, and
/// the same (CR, response, local state) triple recurs in many interleavings.
pub fn memo_core<R: ModelReconciler>(
    cr_obj: &DynamicObject,
    resp: Option<Response<R::ExternalResponse>>,
    local: R::T,
) -> Option<CoreOut<R>> {
    let key: CoreKey<R> = (cr_obj.clone(), resp, local);
    let h = (TypeId::of::<R>(), stable_hash(&key));
    let hit = CORE.with(|c| {
        c.borrow().get(&h).and_then(|b| {
            b.downcast_ref::<Vec<(CoreKey<R>, CoreOut<R>)>>()
                .and_then(|v| v.iter().find(|(k, _)| k == &key).map(|(_, o)| o.clone()))
        })
    });
    if hit.is_some() {
        return hit;
    }
    let cr = typed::<R::R>(cr_obj)?;
    let (_, resp, local) = key.clone();
    let out = R::reconcile_core(&cr, resp, local);
    CORE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 500_000 {
            c.clear();
        }
        let e = c
            .entry(h)
            .or_insert_with(|| Box::new(Vec::<(CoreKey<R>, CoreOut<R>)>::new()));
        if let Some(v) = e.downcast_mut::<Vec<(CoreKey<R>, CoreOut<R>)>>() {
            v.push((key, out.clone()));
        }
    });
    Some(out)
}

/// `etcd.handle(req)`, memoised per thread on (kinds, etcd, request).
pub fn memo_handle(kinds: &KindRegistry, etcd: &mut Etcd, req: &KubeRequest) -> KubeResponse {
    memo_etcd(kinds, etcd, req, |e| e.handle(kinds, req))
}

/// `f(etcd)` for a change of the API server's storage that depends on nothing but the
/// storage, the kinds and `step` (a request, a built-in controller's step on an object, ...),
/// memoised per thread on (kinds, storage, step): the same storage recurs in many states that
/// differ only in requests in flight or reconcile progress. On a hit the storage becomes the
/// cached result (shared, not rebuilt).
pub fn memo_etcd<S, O>(
    kinds: &KindRegistry,
    etcd: &mut Etcd,
    step: &S,
    f: impl FnOnce(&mut Etcd) -> O,
) -> O
where
    S: Hash + Eq + Clone + 'static,
    O: Clone + 'static,
{
    type Entry<S, O> = (u64, Etcd, S, Etcd, O);
    let h = (
        TypeId::of::<Entry<S, O>>(),
        stable_hash(&(kinds.id(), &*etcd, step)),
    );
    let hit = ETCD.with(|c| {
        c.borrow().get(&h).and_then(|b| {
            b.downcast_ref::<Vec<Entry<S, O>>>().and_then(|v| {
                v.iter()
                    .find(|(id, e, s, _, _)| *id == kinds.id() && e == etcd && s == step)
                    .map(|(_, _, _, e2, out)| (e2.clone(), out.clone()))
            })
        })
    });
    if let Some((e2, out)) = hit {
        *etcd = e2;
        return out;
    }
    let before = etcd.clone();
    let out = f(etcd);
    ETCD.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 500_000 {
            c.clear();
        }
        if let Some(v) = c
            .entry(h)
            .or_insert_with(|| Box::new(Vec::<Entry<S, O>>::new()))
            .downcast_mut::<Vec<Entry<S, O>>>()
        {
            v.push((kinds.id(), before, step.clone(), etcd.clone(), out.clone()));
        }
    });
    out
}

/// `obj.to_typed::<K>()`, cached per thread by content fingerprint; a hit is only used when
/// the cached object equals `obj` (pointer, then fingerprint, then content).
pub fn typed<K>(obj: &DynamicObject) -> Option<Arc<K>>
where
    K: anvil_reconciler::CustomResource,
{
    let key = (TypeId::of::<K>(), obj.fingerprint());
    if let Some(v) = TYPED.with(|c| {
        c.borrow().get(&key).and_then(|entries| {
            entries
                .iter()
                .find(|(o, _)| o == obj)
                .and_then(|(_, b)| b.downcast_ref::<Option<Arc<K>>>().cloned())
        })
    }) {
        return v;
    }
    let v: Option<Arc<K>> = obj.to_typed::<K>().ok().map(Arc::new);
    TYPED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 200_000 {
            c.clear();
        }
        c.entry(key)
            .or_default()
            .push((obj.clone(), Box::new(v.clone())));
    });
    v
}

/// [`crate::model::builtins::next_status`], memoised per thread by object (it builds JSON and
/// is asked for every object of every state).
pub fn memo_next_status(obj: &DynamicObject) -> Option<serde_json::Value> {
    let h = obj.fingerprint();
    if let Some(v) = NEXT_STATUS.with(|c| {
        c.borrow()
            .get(&h)
            .and_then(|e| e.iter().find(|(o, _)| o == obj).map(|(_, v)| v.clone()))
    }) {
        return v;
    }
    let v = crate::model::builtins::next_status(obj);
    NEXT_STATUS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 200_000 {
            c.clear();
        }
        c.entry(h).or_default().push((obj.clone(), v.clone()));
    });
    v
}

/// A desired-state predicate (identified by `pred`, e.g. the address of its closure) on
/// (custom resource, API server objects, external state), memoised per thread on all four
/// (hash, then equality): desired-state predicates see the same cluster in many states that
/// differ only in requests in flight or reconcile progress. The key is looked up borrowed and
/// cloned only when it is stored.
pub fn memo_matches<XS>(
    tag: TypeId,
    pred: usize,
    cr: &DynamicObject,
    etcd: &Etcd,
    external: &XS,
    f: impl FnOnce() -> bool,
) -> bool
where
    XS: Hash + Eq + Clone + 'static,
{
    type Entry<XS> = ((usize, DynamicObject, Etcd, XS), bool);
    let h = (tag, stable_hash(&(pred, cr, etcd, external)));
    let same = |((p, o, e, x), _): &&Entry<XS>| *p == pred && o == cr && e == etcd && x == external;
    if let Some(v) = PRED.with(|c| {
        c.borrow().get(&h).and_then(|b| {
            b.downcast_ref::<Vec<Entry<XS>>>()
                .and_then(|v| v.iter().find(same).map(|(_, r)| *r))
        })
    }) {
        return v;
    }
    let r = f();
    PRED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 500_000 {
            c.clear();
        }
        if let Some(v) = c
            .entry(h)
            .or_insert_with(|| Box::new(Vec::<Entry<XS>>::new()))
            .downcast_mut::<Vec<Entry<XS>>>()
        {
            v.push(((pred, cr.clone(), etcd.clone(), external.clone()), r));
        }
    });
    r
}
