//! Counter abstraction: resourceVersions and uids are *tokens* (`rv-<n>`, `uid-<n>`), and a
//! state is canonicalised by an order-preserving renaming of the tokens it contains.
//!
//! # Why this is sound
//!
//! The API server creates a token by bumping a counter and otherwise only **compares** tokens
//! for equality (resourceVersion and uid preconditions, owner-reference resolution, GetThen*
//! ownership checks); the controller runtime, the built-ins and the environment never look at
//! them; reconcilers treat them as opaque strings that they may copy whole (e.g. a ConfigMap's
//! resourceVersion into a pod-template annotation, or into their local state). Let `σ` be a
//! bijection on token numbers that is applied to *every* occurrence of a token in a state
//! (objects' metadata, labels, annotations and bodies; requests and responses in flight;
//! reconcile local states via [`Tokens`]; the CR snapshots of the controller runtime) and
//! that keeps every renamed token below the counter. Then for every transition `s -> s'`
//! there is a transition `σ(s) -> σ'(s')` with the same action label and fairness key, where
//! `σ'` extends `σ` by mapping the freshly created token to the new counter value: equality
//! tests give the same answers and the fresh token is still fresh. So `s ~ σ(s)` is a
//! bisimulation that preserves every predicate that does not depend on token *values*
//! (desired-state predicates compare tokens at most for equality). The canonical renaming
//! maps the live tokens, in increasing order, to `1..k` and sets the counter to `k`;
//! counters therefore stay bounded by the number of live tokens and the state space is
//! finite whenever the number of objects and messages is.
//!
//! The other counters need no renaming: requests in flight carry no message id (they form a
//! multiset tagged with the sending CR and a *stale* bit, since a restarted controller only
//! needs to know that a response is not for its current life), reconciles carry no id (at
//! most one per CR), and generateName picks the smallest free suffix (one of the names the
//! real API server may pick). `metadata.generation` is not renamed: it only grows with spec
//! changes, which every scope bounds (edits are bounded and controllers converge); a model
//! whose generation grows without bound runs into the state limit and is reported
//! incomplete, never wrongly verified.
//!
//! The assumption the renaming relies on, and that a controller must respect: a token is
//! never embedded in a longer string, computed with, or parsed; a string that looks like a
//! token (`rv-<digits>`, `uid-<digits>`) is a token. [`tests`] checks idempotence,
//! equality-preservation and that counters are bounded.

use anvil_objects::{DynamicObject, ObjectParts, Owner};
use anvil_reconciler::chain::{ChainState, Phase};
use anvil_reconciler::{KubeRequest, KubeResponse, NoExternal, Preconditions, Request, Response};
use serde_json::Value;

/// The two token spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// resourceVersions (`rv-<n>`).
    Rv,
    /// uids (`uid-<n>`).
    Uid,
}

/// The token with number `n` in `space`.
pub fn token(space: Space, n: u64) -> String {
    match space {
        Space::Rv => format!("rv-{n}"),
        Space::Uid => format!("uid-{n}"),
    }
}

/// Parses a token.
pub fn parse(s: &str) -> Option<(Space, u64)> {
    let (space, rest) = if let Some(r) = s.strip_prefix("rv-") {
        (Space::Rv, r)
    } else if let Some(r) = s.strip_prefix("uid-") {
        (Space::Uid, r)
    } else {
        return None;
    };
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with('0') {
        return None;
    }
    rest.parse().ok().map(|n| (space, n))
}

/// The live tokens of a state.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    rv: Vec<u64>,
    uid: Vec<u64>,
}

impl Collector {
    /// Records `s` if it is a token.
    pub fn add(&mut self, s: &str) {
        match parse(s) {
            Some((Space::Rv, n)) => self.rv.push(n),
            Some((Space::Uid, n)) => self.uid.push(n),
            None => {}
        }
    }

    /// The canonical renaming of the collected tokens.
    pub fn renaming(mut self) -> Renaming {
        self.rv.sort_unstable();
        self.rv.dedup();
        self.uid.sort_unstable();
        self.uid.dedup();
        let identity = self.rv.iter().enumerate().all(|(i, &n)| n == i as u64 + 1)
            && self.uid.iter().enumerate().all(|(i, &n)| n == i as u64 + 1);
        Renaming {
            rv: self.rv,
            uid: self.uid,
            identity,
            offset: None,
        }
    }
}

/// An order-preserving renaming of tokens onto `1..k`.
#[derive(Clone, Debug)]
pub struct Renaming {
    rv: Vec<u64>,
    uid: Vec<u64>,
    identity: bool,
    offset: Option<u64>,
}

impl Renaming {
    /// The (non-canonical) renaming `n -> n + by` of every token: used by tests to build a
    /// state equivalent to a given one.
    pub fn offset(by: u64) -> Self {
        Renaming {
            rv: Vec::new(),
            uid: Vec::new(),
            identity: by == 0,
            offset: Some(by),
        }
    }

    /// True when nothing changes.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Number of live resourceVersions (the new rv counter).
    pub fn rv_count(&self) -> u64 {
        self.rv.len() as u64
    }

    /// Number of live uids (the new uid counter).
    pub fn uid_count(&self) -> u64 {
        self.uid.len() as u64
    }

    /// The new name of `s`, if `s` is a token that changes.
    pub fn map(&self, s: &str) -> Option<String> {
        let (space, n) = parse(s)?;
        if let Some(by) = self.offset {
            return (by != 0).then(|| token(space, n + by));
        }
        let table = match space {
            Space::Rv => &self.rv,
            Space::Uid => &self.uid,
        };
        let i = table.binary_search(&n).ok()? as u64 + 1;
        (i != n).then(|| token(space, i))
    }

    /// `s` renamed.
    pub fn apply(&self, s: &str) -> String {
        self.map(s).unwrap_or_else(|| s.to_string())
    }

    fn apply_opt(&self, s: &mut Option<String>) {
        if let Some(v) = s
            && let Some(n) = self.map(v)
        {
            *v = n;
        }
    }
}

/// Values that may contain tokens.
pub trait Tokens: Sized {
    /// Calls `f` on every string that may be a token.
    fn visit(&self, f: &mut dyn FnMut(&str));
    /// A copy with every token renamed.
    fn rename(&self, r: &Renaming) -> Self;
}

fn visit_json(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| visit_json(x, f)),
        Value::Object(m) => m.values().for_each(|x| visit_json(x, f)),
        _ => {}
    }
}

fn rename_json(v: &mut Value, r: &Renaming) {
    match v {
        Value::String(s) => {
            if let Some(n) = r.map(s) {
                *s = n;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_json(x, r)),
        Value::Object(m) => m.values_mut().for_each(|x| rename_json(x, r)),
        _ => {}
    }
}

fn visit_parts(p: &ObjectParts, f: &mut dyn FnMut(&str)) {
    let m = &p.metadata;
    for s in [&m.resource_version, &m.uid].into_iter().flatten() {
        f(s);
    }
    for o in m.owner_references.iter().flatten() {
        f(&o.uid);
    }
    for map in [&m.labels, &m.annotations].into_iter().flatten() {
        map.values().for_each(|v| f(v));
    }
    p.body.values().for_each(|v| visit_json(v, f));
}

thread_local! {
    /// The tokens of an object, by content fingerprint (objects are immutable).
    static OBJECT_TOKENS: std::cell::RefCell<std::collections::HashMap<u64, std::sync::Arc<[String]>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

impl Tokens for DynamicObject {
    /// Calls `f` on every token of the object (cached per thread by fingerprint).
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        let fp = self.fingerprint();
        let cached = OBJECT_TOKENS.with(|c| c.borrow().get(&fp).cloned());
        let tokens = match cached {
            Some(t) => t,
            None => {
                let mut v = Vec::new();
                visit_parts(self.parts(), &mut |s| {
                    if parse(s).is_some() {
                        v.push(s.to_string())
                    }
                });
                let t: std::sync::Arc<[String]> = v.into();
                OBJECT_TOKENS.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() > 500_000 {
                        c.clear();
                    }
                    c.insert(fp, t.clone());
                });
                t
            }
        };
        tokens.iter().for_each(|t| f(t));
    }
    fn rename(&self, r: &Renaming) -> Self {
        if r.is_identity() {
            return self.clone();
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        self.visit(&mut |s| {
            if let Some(n) = r.map(s) {
                pairs.push((s.to_string(), n));
            }
        });
        if pairs.is_empty() {
            return self.clone();
        }
        pairs.sort_unstable();
        pairs.dedup();
        // Memoised per thread on (object, the renaming restricted to its tokens).
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = anvil_objects::StableHasher::new();
            self.fingerprint().hash(&mut h);
            pairs.hash(&mut h);
            h.finish()
        };
        if let Some(hit) = RENAMED.with(|c| {
            c.borrow()
                .get(&key)
                .filter(|(orig, p, _)| orig == self && p == &pairs)
                .map(|(_, _, n)| n.clone())
        }) {
            return hit;
        }
        let renamed = self.rename_uncached(r);
        RENAMED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() > 200_000 {
                c.clear();
            }
            c.insert(key, (self.clone(), pairs, renamed.clone()));
        });
        renamed
    }
}

type RenameEntry = (DynamicObject, Vec<(String, String)>, DynamicObject);

thread_local! {
    static RENAMED: std::cell::RefCell<std::collections::HashMap<u64, RenameEntry>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

impl RenameUncached for DynamicObject {
    fn rename_uncached(&self, r: &Renaming) -> Self {
        self.modify(|p| {
            let m = &mut p.metadata;
            r.apply_opt(&mut m.resource_version);
            r.apply_opt(&mut m.uid);
            for o in m.owner_references.iter_mut().flatten() {
                o.uid = r.apply(&o.uid);
            }
            for map in [&mut m.labels, &mut m.annotations].into_iter().flatten() {
                for v in map.values_mut() {
                    if let Some(n) = r.map(v) {
                        *v = n;
                    }
                }
            }
            p.body.values_mut().for_each(|v| rename_json(v, r));
        })
    }
}

trait RenameUncached {
    fn rename_uncached(&self, r: &Renaming) -> Self;
}

impl Tokens for String {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        f(self)
    }
    fn rename(&self, r: &Renaming) -> Self {
        r.apply(self)
    }
}

impl<T: Tokens> Tokens for Option<T> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        if let Some(t) = self {
            t.visit(f)
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        self.as_ref().map(|t| t.rename(r))
    }
}

impl<T: Tokens> Tokens for Vec<T> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        self.iter().for_each(|t| t.visit(f))
    }
    fn rename(&self, r: &Renaming) -> Self {
        self.iter().map(|t| t.rename(r)).collect()
    }
}

impl<T: Tokens + Clone, E: Clone> Tokens for Result<T, E> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        if let Ok(t) = self {
            t.visit(f)
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        match self {
            Ok(t) => Ok(t.rename(r)),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Tokens for () {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {}
}

impl Tokens for NoExternal {
    fn visit(&self, _: &mut dyn FnMut(&str)) {
        match *self {}
    }
    fn rename(&self, _: &Renaming) -> Self {
        match *self {}
    }
}

impl Tokens for Owner {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        f(&self.uid)
    }
    fn rename(&self, r: &Renaming) -> Self {
        Owner {
            uid: r.apply(&self.uid),
            ..self.clone()
        }
    }
}

impl Tokens for Preconditions {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        self.uid.visit(f);
        self.resource_version.visit(f);
    }
    fn rename(&self, r: &Renaming) -> Self {
        Preconditions {
            uid: self.uid.rename(r),
            resource_version: self.resource_version.rename(r),
        }
    }
}

impl Tokens for KubeRequest {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        match self {
            KubeRequest::Get(_) | KubeRequest::List { .. } => {}
            KubeRequest::Create(o) | KubeRequest::Update(o) | KubeRequest::UpdateStatus(o) => {
                o.visit(f)
            }
            KubeRequest::Delete { preconditions, .. } => preconditions.visit(f),
            KubeRequest::GetThenUpdate { obj, owner }
            | KubeRequest::GetThenUpdateStatus { obj, owner } => {
                obj.visit(f);
                owner.visit(f)
            }
            KubeRequest::GetThenDelete { owner, .. } => owner.visit(f),
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        if r.is_identity() {
            return self.clone();
        }
        match self {
            KubeRequest::Get(_) | KubeRequest::List { .. } => self.clone(),
            KubeRequest::Create(o) => KubeRequest::Create(o.rename(r)),
            KubeRequest::Update(o) => KubeRequest::Update(o.rename(r)),
            KubeRequest::UpdateStatus(o) => KubeRequest::UpdateStatus(o.rename(r)),
            KubeRequest::Delete { key, preconditions } => KubeRequest::Delete {
                key: key.clone(),
                preconditions: preconditions.rename(r),
            },
            KubeRequest::GetThenUpdate { obj, owner } => KubeRequest::GetThenUpdate {
                obj: obj.rename(r),
                owner: owner.rename(r),
            },
            KubeRequest::GetThenUpdateStatus { obj, owner } => KubeRequest::GetThenUpdateStatus {
                obj: obj.rename(r),
                owner: owner.rename(r),
            },
            KubeRequest::GetThenDelete { key, owner } => KubeRequest::GetThenDelete {
                key: key.clone(),
                owner: owner.rename(r),
            },
        }
    }
}

impl Tokens for KubeResponse {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        match self {
            KubeResponse::Get(o)
            | KubeResponse::Create(o)
            | KubeResponse::Update(o)
            | KubeResponse::UpdateStatus(o)
            | KubeResponse::GetThenUpdate(o)
            | KubeResponse::GetThenUpdateStatus(o) => o.visit(f),
            KubeResponse::List(l) => l.visit(f),
            KubeResponse::Delete(_) | KubeResponse::GetThenDelete(_) => {}
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        if r.is_identity() {
            return self.clone();
        }
        match self {
            KubeResponse::Get(o) => KubeResponse::Get(o.rename(r)),
            KubeResponse::Create(o) => KubeResponse::Create(o.rename(r)),
            KubeResponse::Update(o) => KubeResponse::Update(o.rename(r)),
            KubeResponse::UpdateStatus(o) => KubeResponse::UpdateStatus(o.rename(r)),
            KubeResponse::GetThenUpdate(o) => KubeResponse::GetThenUpdate(o.rename(r)),
            KubeResponse::GetThenUpdateStatus(o) => KubeResponse::GetThenUpdateStatus(o.rename(r)),
            KubeResponse::List(l) => KubeResponse::List(l.rename(r)),
            KubeResponse::Delete(_) | KubeResponse::GetThenDelete(_) => self.clone(),
        }
    }
}

impl<E: Tokens + Clone> Tokens for Request<E> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Request::Kube(k) => k.visit(f),
            Request::External(e) => e.visit(f),
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        match self {
            Request::Kube(k) => Request::Kube(k.rename(r)),
            Request::External(e) => Request::External(e.rename(r)),
        }
    }
}

impl<E: Tokens + Clone> Tokens for Response<E> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Response::Kube(k) => k.visit(f),
            Response::External(e) => e.visit(f),
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        match self {
            Response::Kube(k) => Response::Kube(k.rename(r)),
            Response::External(e) => Response::External(e.rename(r)),
        }
    }
}

impl Tokens for ChainState {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        self.facts.values().for_each(|v| f(v));
        if let Phase::Error(e) = &self.phase {
            f(e)
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        let mut s = self.clone();
        for v in s.facts.values_mut() {
            if let Some(n) = r.map(v) {
                *v = n;
            }
        }
        s
    }
}
