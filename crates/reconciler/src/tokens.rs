//! Counter abstraction: resourceVersions and uids are *tokens*, and a model state is
//! canonicalised by a renaming of the tokens it contains: an order-preserving one, or -- with
//! the model's reductions on -- one that also forgets the order of the tokens (see "Forgetting
//! the order of tokens" below).
//!
//! # Tokens have the real shape
//!
//! Token number `n` (`1 <= n < `[`MAX_TOKEN`]) is
//!
//! * as a **resourceVersion**, `n + `[`RV_BASE`] in decimal: `1000000000001`, `1000000000002`,
//!   ... -- a decimal string like a real resourceVersion, that parses as `u64`/`i64` and stays
//!   below 2^53 (exact as a JSON number). Every rv token has exactly 13 digits, so numeric and
//!   lexicographic order agree, and both agree with the order of `n`;
//! * as a **uid**, a UUID of version 4 and variant 1 whose last group is `n` in decimal,
//!   zero-padded to 12 digits: `00000000-0000-4000-8000-000000000001` (see [`UID_PREFIX`]). It
//!   parses as a UUID; fixed width again makes lexicographic order the order of `n`.
//!
//! So a controller that parses a resourceVersion as an integer, or a uid as a UUID, takes the
//! same branch in the model as on a real cluster.
//!
//! # Why the renaming is sound
//!
//! The API server creates a token by bumping a counter and otherwise only **compares** tokens
//! for equality (resourceVersion and uid preconditions, owner-reference resolution, GetThen*
//! ownership checks); the controller runtime, the built-ins and the environment never look at
//! them; reconcilers treat them as opaque strings that they may copy whole (e.g. a ConfigMap's
//! resourceVersion into a pod-template annotation, or into their local state), compare for
//! equality and -- at most -- for order within one space. Let `σ` be an order-preserving
//! bijection on token numbers (per space) that is applied to *every* occurrence of a token in a
//! state (objects' metadata, labels, annotations and bodies; requests and responses in flight;
//! reconcile local states and external messages and states via [`Tokens`]; the CR snapshots of
//! the controller runtime) and that keeps every renamed token below the counter. Then for every
//! transition `s -> s'` there is a transition `σ(s) -> σ'(s')` with the same action (the same
//! request handled, the same object collected, ...) and fairness key, where `σ'` extends `σ` by mapping the freshly created token to the new counter
//! value: equality and order tests give the same answers (the renaming preserves the order of
//! `n`, and by the fixed width the numeric and lexicographic orders of the strings) and the
//! fresh token is still fresh (and still the largest). So `s ~ σ(s)` is a bisimulation that
//! preserves every predicate that does not depend on token *values* (desired-state predicates
//! compare tokens at most for equality). The canonical renaming ([`Collector::renaming`]) maps
//! the live tokens of each space, in increasing order, to `1..k` and the model sets the counter
//! to `k`; counters therefore stay bounded by the number of live tokens and the state space is
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
//! # Forgetting the order of tokens (a symmetry reduction)
//!
//! The Kubernetes API conventions make resourceVersions and uids opaque: a client may compare
//! two of them for equality, never for order ("clients must not assume resource versions are
//! numeric or collatable"). The model's API server, garbage collector, built-in controllers
//! and invariants compare them for equality only too. Under that assumption the argument above
//! holds for *every* bijection `σ` of token numbers per space, not only the order-preserving
//! ones: equality tests give the same answers, a fresh token is still fresh, so the states
//! that differ only by a permutation of their tokens are bisimilar and satisfy the same
//! predicates. With the reductions on, the model therefore keeps one state per such class: it
//! numbers each space's live tokens `1..k` **in the order of their first occurrence** in a
//! traversal of the state whose order does not depend on token values (objects by key, then
//! the garbage collector's deletions, the reconciles by CR key, the external state, then the
//! requests in flight by staleness, sender, verb and target; see
//! [`Collector::renaming_by_occurrence`]). Two writes to different objects, made in either
//! order, then lead to one state instead of two (the order-preserving renaming keeps which
//! object was written last in the relative order of their resourceVersions). Where the
//! traversal order does depend on token values (ties between requests in flight that differ
//! only in tokens seen nowhere else, maps keyed by tokens), one class may keep several
//! representatives: fewer states are merged, none wrongly. `--no-reductions` uses the
//! order-preserving renaming, and the reduction tests compare the verdicts of both.
//!
//! # What a controller must respect, and the residual risks
//!
//! * Tokens are compared for equality only: never ordered (sorting by resourceVersion, `<` on
//!   parsed resourceVersions, acting on the first entry of a map keyed by uid). A controller
//!   that orders tokens is outside the argument of the reduction above; `--no-reductions`
//!   keeps the order, and the cluster model's bisimulation check renames reachable states by
//!   random permutations, so it reports a controller whose steps depend on the order.
//! * A token is never embedded in a longer string, computed with (`rv + 1`), or stored in a
//!   non-string form (an integer parsed from a resourceVersion). Parsing and comparing for
//!   equality is fine; keeping the parsed number in a local state is not. In debug builds
//!   [`check_tokens_reported`] catches most violations (a token-shaped substring that
//!   [`Tokens::visit`] does not report, e.g. in an error message or an integer field); a value
//!   computed from a token that again has a token's shape cannot be told apart from a token.
//! * Every string of exactly a token's shape **is** a token, wherever it occurs (as a whole
//!   string value: labels' and annotations' values, JSON strings, local-state strings), and is
//!   renamed with the others. A user string that happens to look like one (a 13-digit decimal
//!   `1000xxxxxxxxx` -- e.g. a Unix timestamp in milliseconds within the 11.6 days after
//!   2001-09-09T01:46:40Z; current millisecond timestamps (`17...`) are not tokens -- or a UUID
//!   `00000000-0000-4000-8000-000xxxxxxxxx`) would be renamed too. A scope's specs must
//!   therefore not contain token-shaped strings: the environment re-inserts them unrenamed and
//!   a minted token may collide with them, so such a scope is outside the argument above.
//!   [`find_tokens`] finds them.
//! * The renaming preserves the order among the tokens of one space, not between a token and
//!   an arbitrary other string: `"1000000000002a"` sorts between rv tokens 2 and 3, but after
//!   both once they are renamed to 1 and 2. A controller that sorts tokens together with other
//!   strings is outside the argument.
//! * Object names, namespaces, label and annotation *keys* and finalizers are never renamed:
//!   they must not be tokens (the guard reports one that is).
//!
//! The model's tests check idempotence, that counters are bounded, and that the canonical
//! renaming is a bisimulation (same canonical successors and fairness keys) on real
//! controllers.

use anvil_objects::{DynamicObject, Kind, ObjectParts, ObjectRef, Owner};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

/// Derives [`Tokens`] from a type's fields (see the `anvil-tokens-derive` crate): every field
/// is visited and renamed, so none is forgotten.
pub use anvil_tokens_derive::Tokens;

/// The two token spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// resourceVersions (`n + RV_BASE` in decimal).
    Rv,
    /// uids (`00000000-0000-4000-8000-` and `n` in 12 decimal digits).
    Uid,
}

/// resourceVersion token `n` is `RV_BASE + n` in decimal (13 digits, `1000` then `n` in 9).
pub const RV_BASE: u64 = 1_000_000_000_000;

/// Token numbers are `1..MAX_TOKEN`.
pub const MAX_TOKEN: u64 = 1_000_000_000;

/// The first four groups of every uid token; the last group is `n` in 12 decimal digits.
pub const UID_PREFIX: &str = "00000000-0000-4000-8000-";

const RV_LEN: usize = 13;
const UID_DIGITS: usize = 12;

/// The token with number `n` (`1 <= n < MAX_TOKEN`) in `space`.
///
/// # Panics
///
/// When `n` is out of range (it would not be recognised as a token).
pub fn token(space: Space, n: u64) -> String {
    assert!(
        (1..MAX_TOKEN).contains(&n),
        "token number {n} out of range 1..{MAX_TOKEN}"
    );
    match space {
        Space::Rv => (RV_BASE + n).to_string(),
        Space::Uid => format!("{UID_PREFIX}{n:012}"),
    }
}

/// Parses a token: `s` must be exactly a token's string.
pub fn parse(s: &str) -> Option<(Space, u64)> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (space, n) = if s.len() == RV_LEN && digits(s) {
        (Space::Rv, s.parse::<u64>().ok()?.checked_sub(RV_BASE)?)
    } else if let Some(rest) = s.strip_prefix(UID_PREFIX)
        && rest.len() == UID_DIGITS
        && digits(rest)
    {
        (Space::Uid, rest.parse::<u64>().ok()?)
    } else {
        return None;
    };
    (1..MAX_TOKEN).contains(&n).then_some((space, n))
}

/// Every token-shaped substring of `text`, in order of occurrence: rv tokens as maximal runs of
/// 13 digits, uid tokens as [`UID_PREFIX`] followed by 12 digits and no further digit. Used by
/// the debug-build guard on `Debug` renderings, and to check that user data holds no tokens.
pub fn find_tokens(text: &str) -> Vec<(Space, u64)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(UID_PREFIX.as_bytes()) {
            let end = i + UID_PREFIX.len() + UID_DIGITS;
            if end <= b.len()
                && b[i + UID_PREFIX.len()..end].iter().all(u8::is_ascii_digit)
                && b.get(end).is_none_or(|c| !c.is_ascii_digit())
                && let Some(t) = parse(&text[i..end])
            {
                out.push(t);
                i = end;
                continue;
            }
        }
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if let Some(t) = parse(&text[start..i]).filter(|(s, _)| *s == Space::Rv) {
                out.push(t);
            }
            continue;
        }
        i += 1;
    }
    out
}

/// The live tokens of a state, in the order they were reported.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    rv: Vec<u64>,
    uid: Vec<u64>,
}

impl Collector {
    /// Records `s` if it is a token.
    pub fn add(&mut self, s: &str) {
        if let Some((space, n)) = parse(s) {
            self.add_token(space, n)
        }
    }

    /// Records token `n` of `space` (parsed already, see [`Tokens::visit_tokens`]).
    pub fn add_token(&mut self, space: Space, n: u64) {
        match space {
            Space::Rv => self.rv.push(n),
            Space::Uid => self.uid.push(n),
        }
    }

    /// The canonical renaming of the collected tokens: in each space, the `i`-th smallest live
    /// token becomes token `i` (1-based).
    pub fn renaming(mut self) -> Renaming {
        self.rv.sort_unstable();
        self.rv.dedup();
        self.uid.sort_unstable();
        self.uid.dedup();
        let identity = self.rv.iter().enumerate().all(|(i, &n)| n == i as u64 + 1)
            && self.uid.iter().enumerate().all(|(i, &n)| n == i as u64 + 1);
        Renaming {
            map: Map::Rank {
                rv: self.rv,
                uid: self.uid,
            },
            identity,
        }
    }

    /// The canonical renaming that forgets the order of tokens: in each space, the live tokens
    /// are numbered `1..k` in the order of their first [`Collector::add`]. Canonical for the
    /// class of a state under every permutation of its tokens when the tokens were added in
    /// an order that does not depend on their values (module docs, "Forgetting the order of
    /// tokens").
    pub fn renaming_by_occurrence(self) -> Renaming {
        fn numbered(tokens: Vec<u64>) -> Vec<(u64, u64)> {
            let mut pairs: Vec<(u64, u64)> = Vec::with_capacity(tokens.len());
            for n in tokens {
                // a state holds few live tokens: a linear scan beats a set
                if !pairs.iter().any(|&(old, _)| old == n) {
                    pairs.push((n, pairs.len() as u64 + 1));
                }
            }
            pairs.sort_unstable();
            pairs
        }
        let (rv, uid) = (numbered(self.rv), numbered(self.uid));
        let identity = rv.iter().chain(&uid).all(|(old, new)| old == new);
        Renaming {
            map: Map::Occurrence { rv, uid },
            identity,
        }
    }
}

#[derive(Clone, Debug)]
enum Map {
    /// The canonical renaming that forgets order: (old, new) pairs sorted by old.
    Occurrence {
        rv: Vec<(u64, u64)>,
        uid: Vec<(u64, u64)>,
    },
    /// The canonical renaming: token `table[i]` becomes `i + 1`.
    Rank { rv: Vec<u64>, uid: Vec<u64> },
    /// `n -> n + by` in both spaces.
    Offset(u64),
    /// An explicit renaming; tokens not in the tables are unchanged.
    Table {
        rv: BTreeMap<u64, u64>,
        uid: BTreeMap<u64, u64>,
    },
}

/// A renaming of tokens: the canonical one onto `1..k` ([`Collector::renaming`]) or, for tests
/// and the debug-build guard, an offset or an explicit table.
#[derive(Clone, Debug)]
pub struct Renaming {
    map: Map,
    identity: bool,
}

impl Renaming {
    /// The (non-canonical) renaming `n -> n + by` of every token.
    pub fn offset(by: u64) -> Self {
        Renaming {
            map: Map::Offset(by),
            identity: by == 0,
        }
    }

    /// The explicit renaming `n -> rv[n]` of resourceVersions and `n -> uid[n]` of uids
    /// (tokens not in the tables are unchanged). It is a sound renaming only if it is
    /// injective on the live tokens, and order-preserving unless the order of tokens is
    /// forgotten (module docs).
    pub fn table(rv: BTreeMap<u64, u64>, uid: BTreeMap<u64, u64>) -> Self {
        let identity = rv.iter().chain(&uid).all(|(a, b)| a == b);
        Renaming {
            map: Map::Table { rv, uid },
            identity,
        }
    }

    /// True when nothing changes.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Number of live resourceVersions (the new rv counter) of a canonical renaming (0 for
    /// the others).
    pub fn rv_count(&self) -> u64 {
        match &self.map {
            Map::Rank { rv, .. } => rv.len() as u64,
            Map::Occurrence { rv, .. } => rv.len() as u64,
            _ => 0,
        }
    }

    /// Number of live uids (the new uid counter) of a canonical renaming (0 for the others).
    pub fn uid_count(&self) -> u64 {
        match &self.map {
            Map::Rank { uid, .. } => uid.len() as u64,
            Map::Occurrence { uid, .. } => uid.len() as u64,
            _ => 0,
        }
    }

    /// The new number of token `n` of `space`, if it changes.
    pub fn map_number(&self, space: Space, n: u64) -> Option<u64> {
        let m = match &self.map {
            Map::Offset(by) => n + by,
            Map::Rank { rv, uid } => {
                let table = match space {
                    Space::Rv => rv,
                    Space::Uid => uid,
                };
                table.binary_search(&n).ok()? as u64 + 1
            }
            Map::Occurrence { rv, uid } => {
                let pairs = match space {
                    Space::Rv => rv,
                    Space::Uid => uid,
                };
                pairs[pairs.binary_search_by_key(&n, |&(old, _)| old).ok()?].1
            }
            Map::Table { rv, uid } => *match space {
                Space::Rv => rv,
                Space::Uid => uid,
            }
            .get(&n)?,
        };
        (m != n).then_some(m)
    }

    /// The new name of `s`, if `s` is a token that changes.
    pub fn map(&self, s: &str) -> Option<String> {
        if self.identity {
            return None;
        }
        let (space, n) = parse(s)?;
        self.map_number(space, n).map(|m| token(space, m))
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

/// Values that may contain tokens: reconcile local states, external requests, responses and
/// states, and everything the model stores. Derive it (`#[derive(Tokens)]`) rather than writing
/// it by hand: the derive visits and renames every field.
///
/// The contract: `visit` calls `f` on every string that may be a token (at least on every
/// token the value holds), and `rename` returns the value with every token `t` that `visit`
/// reports replaced by `r`'s image of it, and nothing else changed. [`check_tokens_reported`]
/// tests the contract in debug builds.
pub trait Tokens: Sized {
    /// Calls `f` on every string that may be a token.
    fn visit(&self, f: &mut dyn FnMut(&str));
    /// Calls `f` on every token the value holds, parsed (its space and number), in the order
    /// in which [`Tokens::visit`] reports them. The default parses what `visit` reports; the
    /// containers, objects and derived impls pass it on, and objects keep their parsed tokens,
    /// so canonicalising a state parses no string twice.
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        self.visit(&mut |s| {
            if let Some((space, n)) = parse(s) {
                f(space, n)
            }
        })
    }
    /// A copy with every token renamed.
    fn rename(&self, r: &Renaming) -> Self;
}

// ------------------------------------------------------------------ values without tokens

macro_rules! no_tokens {
    ($($t:ty),* $(,)?) => {$(
        impl Tokens for $t {
            fn visit(&self, _: &mut dyn FnMut(&str)) {}
            fn visit_tokens(&self, _: &mut dyn FnMut(Space, u64)) {}
            fn rename(&self, _: &Renaming) -> Self {
                *self
            }
        }
    )*};
}

// Numbers hold no token: a token is a string. (The guard reports an integer field whose
// value has a token's shape: a resourceVersion parsed and kept as a number.)
no_tokens!(
    bool, char, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

impl Tokens for () {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {}
}

/// A string literal of the program: never a token (it cannot be renamed; the guard reports a
/// literal that looks like one).
impl Tokens for &'static str {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self
    }
}

impl<T: ?Sized> Tokens for PhantomData<T> {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        PhantomData
    }
}

/// A kind holds no token.
impl Tokens for Kind {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

/// Object keys are never renamed: names and namespaces must not be tokens.
impl Tokens for ObjectRef {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

// ------------------------------------------------------------------ strings and containers

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
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        if let Some(t) = self {
            t.visit_tokens(f)
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
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        self.iter().for_each(|t| t.visit_tokens(f))
    }
    fn rename(&self, r: &Renaming) -> Self {
        self.iter().map(|t| t.rename(r)).collect()
    }
}

impl<T: Tokens> Tokens for VecDeque<T> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        self.iter().for_each(|t| t.visit(f))
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        self.iter().for_each(|t| t.visit_tokens(f))
    }
    fn rename(&self, r: &Renaming) -> Self {
        self.iter().map(|t| t.rename(r)).collect()
    }
}

impl<T: Tokens> Tokens for Box<T> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        (**self).visit(f)
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        (**self).visit_tokens(f)
    }
    fn rename(&self, r: &Renaming) -> Self {
        Box::new((**self).rename(r))
    }
}

impl<T: Tokens> Tokens for Arc<T> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        (**self).visit(f)
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        (**self).visit_tokens(f)
    }
    fn rename(&self, r: &Renaming) -> Self {
        Arc::new((**self).rename(r))
    }
}

/// Keys are renamed too (the map is rebuilt: a renaming may reorder keys relative to
/// non-token keys).
impl<K: Tokens + Ord, V: Tokens> Tokens for BTreeMap<K, V> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        for (k, v) in self {
            k.visit(f);
            v.visit(f);
        }
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        for (k, v) in self {
            k.visit_tokens(f);
            v.visit_tokens(f);
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        self.iter()
            .map(|(k, v)| (k.rename(r), v.rename(r)))
            .collect()
    }
}

impl<T: Tokens + Ord> Tokens for BTreeSet<T> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        self.iter().for_each(|t| t.visit(f))
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        self.iter().for_each(|t| t.visit_tokens(f))
    }
    fn rename(&self, r: &Renaming) -> Self {
        self.iter().map(|t| t.rename(r)).collect()
    }
}

/// Both sides are visited: an error may carry a token too.
impl<T: Tokens, E: Tokens> Tokens for Result<T, E> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Ok(t) => t.visit(f),
            Err(e) => e.visit(f),
        }
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        match self {
            Ok(t) => t.visit_tokens(f),
            Err(e) => e.visit_tokens(f),
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        match self {
            Ok(t) => Ok(t.rename(r)),
            Err(e) => Err(e.rename(r)),
        }
    }
}

macro_rules! tuple_tokens {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: Tokens),+> Tokens for ($($t,)+) {
            fn visit(&self, f: &mut dyn FnMut(&str)) {
                $(self.$i.visit(f);)+
            }
            fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
                $(self.$i.visit_tokens(f);)+
            }
            fn rename(&self, r: &Renaming) -> Self {
                ($(self.$i.rename(r),)+)
            }
        }
    )*};
}

tuple_tokens! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
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

/// Every string value (not the keys of objects).
impl Tokens for Value {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        visit_json(self, f)
    }
    fn rename(&self, r: &Renaming) -> Self {
        let mut v = self.clone();
        if !r.is_identity() {
            rename_json(&mut v, r);
        }
        v
    }
}

// ------------------------------------------------------------------ objects

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

/// An object's tokens, parsed, in the order of `visit_parts`.
type Parsed = Arc<[(Space, u64)]>;

thread_local! {
    /// The parsed tokens of an object by content fingerprint (objects are immutable).
    static OBJECT_TOKENS: std::cell::RefCell<std::collections::HashMap<u64, Parsed>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The tokens of `o`, parsed (cached per thread by fingerprint).
fn object_tokens(o: &DynamicObject) -> Parsed {
    let fp = o.fingerprint();
    if let Some(t) = OBJECT_TOKENS.with(|c| c.borrow().get(&fp).cloned()) {
        return t;
    }
    let mut parsed = Vec::new();
    visit_parts(o.parts(), &mut |s| parsed.extend(parse(s)));
    let t: Parsed = parsed.into();
    OBJECT_TOKENS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 500_000 {
            c.clear();
        }
        c.insert(fp, t.clone());
    });
    t
}

/// An object's tokens: its resourceVersion and uid, its owner references' uids, the values of
/// its labels and annotations, and every string of its body. Names, keys and finalizers are
/// never renamed.
impl Tokens for DynamicObject {
    /// Calls `f` on every token of the object (parsed tokens cached per thread by
    /// fingerprint; a token is exactly the string `token` writes for its space and number, so
    /// the strings are written again, off the hot path).
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        object_tokens(self)
            .iter()
            .for_each(|&(space, n)| f(&token(space, n)));
    }
    fn visit_tokens(&self, f: &mut dyn FnMut(Space, u64)) {
        object_tokens(self)
            .iter()
            .for_each(|&(space, n)| f(space, n));
    }
    fn rename(&self, r: &Renaming) -> Self {
        if r.is_identity() {
            return self.clone();
        }
        let mut pairs: Vec<(Space, u64, u64)> = object_tokens(self)
            .iter()
            .filter_map(|&(space, n)| r.map_number(space, n).map(|m| (space, n, m)))
            .collect();
        if pairs.is_empty() {
            return self.clone();
        }
        pairs.sort_unstable();
        pairs.dedup();
        // Memoised per thread on (object, the renaming restricted to its tokens).
        let key = {
            use std::hash::Hasher;
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
        let renamed = rename_object(self, r);
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

/// A renamed object: the original, the renaming restricted to its tokens (space, old, new),
/// and the result.
type RenameEntry = (DynamicObject, Vec<(Space, u64, u64)>, DynamicObject);

thread_local! {
    static RENAMED: std::cell::RefCell<std::collections::HashMap<u64, RenameEntry>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn rename_object(o: &DynamicObject, r: &Renaming) -> DynamicObject {
    o.modify(|p| {
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

/// Only the uid: names are never renamed (as in owner references).
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

// ------------------------------------------------------------------ the debug-build guard

fn show(space: Space, n: u64) -> String {
    if (1..MAX_TOKEN).contains(&n) {
        token(space, n)
    } else {
        format!("{space:?} token #{n}")
    }
}

/// Checks the [`Tokens`] contract of `value` against its `Debug` rendering:
///
/// 1. every token-shaped substring of `format!("{value:?}")` ([`find_tokens`]) is a token that
///    `value.visit` reports as a whole string -- otherwise a field is not visited, or a token
///    is embedded in a longer string or kept in a non-string form;
/// 2. after renaming every token `n` to `n + M` (`M` the largest token number seen), no token
///    `<= M` is left in the `Debug` rendering of `value.rename(..)` -- otherwise `rename`
///    misses a field that `visit` reports -- and `visit` of the renamed value reports exactly
///    the renamed tokens.
///
/// The error names the type and the token. Always compiled; [`check_tokens_reported`] is the
/// debug-build assertion built on it.
pub fn tokens_reported<T: Tokens + Debug>(value: &T) -> Result<(), String> {
    let ty = std::any::type_name::<T>();
    let mut reported = BTreeSet::new();
    value.visit(&mut |s| {
        if let Some(t) = parse(s) {
            reported.insert(t);
        }
    });
    let text = format!("{value:?}");
    let found = find_tokens(&text);
    if let Some(&(space, n)) = found.iter().find(|t| !reported.contains(t)) {
        return Err(format!(
            "token {} appears in a value of type {ty} but `Tokens::visit` does not report it \
             (a field is not visited, or the token is embedded in a longer string or kept in a \
             non-string form); the value: {text}",
            show(space, n)
        ));
    }
    let Some(max) = found.iter().chain(&reported).map(|&(_, n)| n).max() else {
        return Ok(());
    };
    if 2 * max >= MAX_TOKEN {
        // too large to shift out of the way; only seen in tests that use far-off tokens
        return Ok(());
    }
    let renamed = value.rename(&Renaming::offset(max));
    let text2 = format!("{renamed:?}");
    if let Some(&(space, n)) = find_tokens(&text2).iter().find(|(_, n)| *n <= max) {
        return Err(format!(
            "token {} of a value of type {ty} is reported by `Tokens::visit` but not renamed by \
             `Tokens::rename`; the renamed value: {text2}",
            show(space, n)
        ));
    }
    let mut after = BTreeSet::new();
    renamed.visit(&mut |s| {
        if let Some(t) = parse(s) {
            after.insert(t);
        }
    });
    let expected: BTreeSet<(Space, u64)> = reported.iter().map(|&(s, n)| (s, n + max)).collect();
    if after != expected {
        return Err(format!(
            "`Tokens::rename` of a value of type {ty} does not rename exactly the tokens \
             `Tokens::visit` reports: renamed by +{max}, expected {expected:?}, found {after:?}"
        ));
    }
    Ok(())
}

#[cfg(debug_assertions)]
thread_local! {
    static CHECKED: std::cell::RefCell<std::collections::HashSet<u64>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Debug builds: panics, naming the type and the token, when `value` holds a token that its
/// [`Tokens`] impl does not report or does not rename (see [`tokens_reported`]). Each distinct
/// value (by type and stable hash) is checked once per thread. Release builds: does nothing.
///
/// The model calls it on every reconcile local state, external request, response and state it
/// renames.
#[inline]
pub fn check_tokens_reported<T: Tokens + Debug + Hash>(value: &T) {
    #[cfg(debug_assertions)]
    {
        use std::hash::Hasher;
        let mut h = anvil_objects::StableHasher::new();
        std::any::type_name::<T>().hash(&mut h);
        value.hash(&mut h);
        let key = h.finish();
        if CHECKED.with(|c| c.borrow().contains(&key)) {
            return;
        }
        if let Err(e) = tokens_reported(value) {
            panic!("{e}");
        }
        CHECKED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() > 1_000_000 {
                c.clear();
            }
            c.insert(key);
        });
    }
    #[cfg(not(debug_assertions))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainState, Phase};
    use crate::{ApiError, ErrorReason, KubeRequest, KubeResponse, Preconditions, Request};

    fn rv(n: u64) -> String {
        token(Space::Rv, n)
    }
    fn uid(n: u64) -> String {
        token(Space::Uid, n)
    }

    #[test]
    fn tokens_have_the_real_shape_and_round_trip() {
        assert_eq!(rv(1), "1000000000001");
        assert_eq!(uid(1), "00000000-0000-4000-8000-000000000001");
        assert_eq!(rv(1).parse::<i64>().unwrap(), 1_000_000_000_001);
        for n in [1, 2, 9, 10, 99, 12345, MAX_TOKEN - 1] {
            for s in [Space::Rv, Space::Uid] {
                assert_eq!(parse(&token(s, n)), Some((s, n)));
            }
        }
        // uid tokens are UUIDs: 8-4-4-4-12 hex digits, version 4, variant 1
        let u = uid(42);
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4') && groups[3].starts_with('8'));
        for not in [
            "",
            "1000000000000",
            "0000000000001",
            "100000000001",
            "10000000000001",
            "1001000000001",
            "rv-1",
            "uid-1",
            "00000000-0000-4000-8000-000000000000",
            "00000000-0000-4000-8000-00000000001",
            "00000000-0000-4000-8000-0000000000001",
            "00000000-0000-4000-8000-00000000000a",
            "00000000-0000-4000-8000-001000000000",
            " 1000000000001",
        ] {
            assert_eq!(parse(not), None, "{not:?}");
        }
    }

    #[test]
    fn numeric_and_lexicographic_order_agree_with_token_order() {
        let ns = [1, 2, 9, 10, 11, 99, 100, 1000, 123_456, MAX_TOKEN - 1];
        for s in [Space::Rv, Space::Uid] {
            for &a in &ns {
                for &b in &ns {
                    assert_eq!(token(s, a).cmp(&token(s, b)), a.cmp(&b));
                    if s == Space::Rv {
                        let (x, y): (u64, u64) =
                            (token(s, a).parse().unwrap(), token(s, b).parse().unwrap());
                        assert_eq!(x.cmp(&y), a.cmp(&b));
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn token_numbers_are_bounded() {
        token(Space::Rv, MAX_TOKEN);
    }

    #[test]
    fn find_tokens_finds_whole_and_embedded_tokens() {
        let text = format!(
            "a {} b x{}y {}9 {} pod-{} 2000-01-01T00:00:00Z 123",
            rv(3),
            rv(4),
            rv(5),
            uid(6),
            uid(7)
        );
        assert_eq!(
            find_tokens(&text),
            [
                (Space::Rv, 3),
                (Space::Rv, 4),
                (Space::Uid, 6),
                (Space::Uid, 7)
            ]
        );
    }

    #[test]
    fn canonical_renaming_compresses_ranks_and_preserves_order() {
        let mut c = Collector::default();
        for s in [rv(7), rv(3), uid(10), rv(7), "x".to_string(), uid(2)] {
            c.add(&s);
        }
        let r = c.renaming();
        assert!(!r.is_identity());
        assert_eq!((r.rv_count(), r.uid_count()), (2, 2));
        assert_eq!(r.apply(&rv(3)), rv(1));
        assert_eq!(r.apply(&rv(7)), rv(2));
        assert_eq!(r.apply(&uid(2)), uid(1));
        assert_eq!(r.apply(&uid(10)), uid(2));
        assert_eq!(r.apply("x"), "x");
        let mut c = Collector::default();
        c.add(&rv(1));
        c.add(&uid(1));
        assert!(c.renaming().is_identity());
        let t = Renaming::table([(1, 5)].into(), [(1, 1)].into());
        assert_eq!(t.apply(&rv(1)), rv(5));
        assert_eq!(t.apply(&rv(2)), rv(2));
        assert_eq!(Renaming::offset(3).apply(&uid(2)), uid(5));
    }

    #[test]
    fn renaming_by_occurrence_numbers_tokens_in_order_of_first_appearance() {
        let mut c = Collector::default();
        for s in [rv(7), uid(10), rv(3), rv(7), "x".to_string(), uid(2), rv(9)] {
            c.add(&s);
        }
        let r = c.renaming_by_occurrence();
        assert!(!r.is_identity());
        assert_eq!((r.rv_count(), r.uid_count()), (3, 2));
        assert_eq!(r.apply(&rv(7)), rv(1));
        assert_eq!(r.apply(&rv(3)), rv(2));
        assert_eq!(r.apply(&rv(9)), rv(3));
        assert_eq!(r.apply(&uid(10)), uid(1));
        assert_eq!(r.apply(&uid(2)), uid(2));
        assert_eq!(r.apply("x"), "x");
        // the same tokens added in another order of values but the same order of appearance
        // give the same numbers: the renaming forgets the tokens' order
        let mut c = Collector::default();
        for s in [rv(2), uid(1), rv(8), rv(2), uid(5), rv(4)] {
            c.add(&s);
        }
        let r2 = c.renaming_by_occurrence();
        assert_eq!(
            [rv(2), rv(8), rv(4), uid(1), uid(5)].map(|t| r2.apply(&t)),
            [rv(1), rv(2), rv(3), uid(1), uid(2)]
        );
        let mut c = Collector::default();
        c.add(&rv(1));
        c.add(&rv(2));
        assert!(c.renaming_by_occurrence().is_identity());
        let mut c = Collector::default();
        c.add(&rv(2));
        c.add(&rv(1));
        assert!(!c.renaming_by_occurrence().is_identity());
    }

    // ------------------------------------------------------------ the derive

    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    struct Named {
        a: String,
        b: Option<String>,
        n: u32,
        m: BTreeMap<String, Vec<String>>,
    }

    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    struct Tuple(String, (String, u8));

    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    struct Unit;

    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    enum E<T> {
        A,
        B(T, String),
        C { x: T, y: Unit },
    }

    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    enum Empty {}

    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    struct Skips {
        a: String,
        #[tokens(skip)]
        b: String,
    }

    fn reported<T: Tokens>(t: &T) -> Vec<String> {
        let mut v = Vec::new();
        t.visit(&mut |s| v.push(s.to_string()));
        v
    }

    #[test]
    fn derive_visits_and_renames_every_field() {
        let r = Renaming::offset(10);
        let named = Named {
            a: rv(1),
            b: Some(uid(2)),
            n: 5,
            m: [(rv(3), vec![uid(4), "x".into()])].into(),
        };
        assert_eq!(reported(&named), [rv(1), uid(2), rv(3), uid(4), "x".into()]);
        assert_eq!(
            named.rename(&r),
            Named {
                a: rv(11),
                b: Some(uid(12)),
                n: 5,
                m: [(rv(13), vec![uid(14), "x".into()])].into(),
            }
        );
        let t = Tuple(rv(1), (uid(1), 3));
        assert_eq!(reported(&t), [rv(1), uid(1)]);
        assert_eq!(t.rename(&r), Tuple(rv(11), (uid(11), 3)));
        assert!(reported(&Unit).is_empty());
        assert_eq!(Unit.rename(&r), Unit);
        let e: Vec<E<String>> = vec![E::A, E::B(rv(1), uid(2)), E::C { x: rv(3), y: Unit }];
        assert_eq!(reported(&e), [rv(1), uid(2), rv(3)]);
        assert_eq!(
            e.rename(&r),
            [E::A, E::B(rv(11), uid(12)), E::C { x: rv(13), y: Unit }]
        );
        let none: Option<Empty> = None;
        assert!(reported(&none).is_empty());
        let s = Skips {
            a: rv(1),
            b: "kept".into(),
        };
        assert_eq!(reported(&s), [rv(1)]);
        assert_eq!(s.rename(&r).b, "kept");
        for v in [
            tokens_reported(&named),
            tokens_reported(&t),
            tokens_reported(&e),
        ] {
            v.unwrap();
        }
    }

    #[test]
    fn reconciler_types_visit_every_token() {
        let obj = DynamicObject::from_json(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "d", "resourceVersion": rv(2), "uid": uid(1),
                "annotations": {"a": rv(1)}},
            "data": {"x": uid(3)}
        }))
        .unwrap();
        let req: Request<()> = Request::Kube(KubeRequest::Delete {
            key: obj.object_ref(),
            preconditions: Some(Preconditions {
                uid: Some(uid(1)),
                resource_version: Some(rv(2)),
            }),
        });
        tokens_reported(&req).unwrap();
        let resp = KubeResponse::List(Ok(vec![obj.clone()]));
        tokens_reported(&resp).unwrap();
        assert_eq!(reported(&resp), [rv(2), uid(1), rv(1), uid(3)]);
        let KubeResponse::List(Ok(renamed)) = resp.rename(&Renaming::offset(1)) else {
            panic!()
        };
        assert_eq!(renamed[0].resource_version(), Some(rv(3).as_str()));
        assert_eq!(renamed[0].uid(), Some(uid(2).as_str()));
        let mut chain = ChainState::default();
        chain.facts.insert("cm-rv", rv(5));
        chain.phase = Phase::Error(uid(5));
        tokens_reported(&chain).unwrap();
        assert_eq!(
            chain.rename(&Renaming::offset(1)).phase,
            Phase::Error(uid(6))
        );
        let err: KubeResponse = KubeResponse::Get(Err(ApiError::new(ErrorReason::NotFound, rv(1))));
        assert_eq!(reported(&err), [rv(1)]);
    }

    /// The parsed tokens `visit_tokens` reports.
    fn parsed<T: Tokens>(t: &T) -> Vec<(Space, u64)> {
        let mut v = Vec::new();
        t.visit_tokens(&mut |space, n| v.push((space, n)));
        v
    }

    /// `visit_tokens` reports exactly the tokens among the strings `visit` reports, in the
    /// same order (canonicalisation numbers tokens by that order): derived impls, containers,
    /// objects (cached per thread, asked twice) and the request and response types.
    #[test]
    fn parsed_tokens_are_the_visited_strings_that_are_tokens() {
        fn agree<T: Tokens>(t: &T) {
            let strings: Vec<(Space, u64)> = reported(t).iter().filter_map(|s| parse(s)).collect();
            assert_eq!(parsed(t), strings);
        }
        let named = Named {
            a: rv(1),
            b: Some(uid(2)),
            n: 5,
            m: [(rv(3), vec![uid(4), "x".into()])].into(),
        };
        agree(&named);
        assert_eq!(parsed(&named).len(), 4);
        agree(&Tuple(rv(1), (uid(1), 3)));
        agree(&vec![E::A, E::B(rv(1), uid(2)), E::C { x: rv(3), y: Unit }]);
        agree(&Skips { a: rv(1), b: rv(2) });
        let obj = DynamicObject::from_json(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "d", "resourceVersion": rv(2), "uid": uid(1),
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid(4)}],
                "labels": {"l": "plain"}, "annotations": {"a": rv(1)}},
            "data": {"x": uid(3), "y": "no token"}
        }))
        .unwrap();
        for _ in 0..2 {
            agree(&obj);
        }
        // the strings are written again from the parsed tokens: exactly the object's own
        assert_eq!(reported(&obj), [rv(2), uid(1), uid(4), rv(1), uid(3)]);
        assert_eq!(
            parsed(&obj),
            [
                (Space::Rv, 2),
                (Space::Uid, 1),
                (Space::Uid, 4),
                (Space::Rv, 1),
                (Space::Uid, 3)
            ]
        );
        let resp: Result<Vec<DynamicObject>, ApiError> = Ok(vec![obj.clone(), obj]);
        agree(&KubeResponse::List(resp));
        agree(&Request::<String>::External(uid(7)));
    }

    // ------------------------------------------------------------ the guard

    /// A hand-written impl that forgets a field.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Forgetful {
        seen: String,
        forgotten: String,
    }

    impl Tokens for Forgetful {
        fn visit(&self, f: &mut dyn FnMut(&str)) {
            f(&self.seen)
        }
        fn rename(&self, r: &Renaming) -> Self {
            Forgetful {
                seen: self.seen.rename(r),
                forgotten: self.forgotten.clone(),
            }
        }
    }

    /// A hand-written impl whose `visit` is right but whose `rename` forgets a field.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct HalfRenamed(String, String);

    impl Tokens for HalfRenamed {
        fn visit(&self, f: &mut dyn FnMut(&str)) {
            f(&self.0);
            f(&self.1)
        }
        fn rename(&self, r: &Renaming) -> Self {
            HalfRenamed(self.0.rename(r), self.1.clone())
        }
    }

    /// Keeps a resourceVersion parsed as a number.
    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    struct Parsed {
        rv: u64,
    }

    /// Embeds a uid in a longer string.
    #[derive(Tokens, Clone, Debug, PartialEq, Eq, Hash)]
    struct Embedded {
        name: String,
    }

    #[test]
    fn the_guard_reports_unvisited_unrenamed_and_hidden_tokens() {
        let ok = Forgetful {
            seen: rv(1),
            forgotten: "nothing".into(),
        };
        tokens_reported(&ok).unwrap();
        let bad = Forgetful {
            seen: rv(1),
            forgotten: uid(7),
        };
        let e = tokens_reported(&bad).unwrap_err();
        assert!(e.contains(&uid(7)) && e.contains("Forgetful"), "{e}");
        assert!(e.contains("does not report"), "{e}");
        let e = tokens_reported(&HalfRenamed(rv(1), rv(2))).unwrap_err();
        assert!(
            e.contains("HalfRenamed") && e.contains("not renamed") && e.contains(&rv(2)),
            "{e}"
        );
        let e = tokens_reported(&Parsed {
            rv: 1_000_000_000_003,
        })
        .unwrap_err();
        assert!(e.contains(&rv(3)) && e.contains("Parsed"), "{e}");
        tokens_reported(&Parsed { rv: 12 }).unwrap();
        let e = tokens_reported(&Embedded {
            name: format!("pod-{}", uid(2)),
        })
        .unwrap_err();
        assert!(e.contains(&uid(2)) && e.contains("Embedded"), "{e}");
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "Forgetful")]
    fn check_tokens_reported_panics_in_debug_builds() {
        check_tokens_reported(&Forgetful {
            seen: rv(1),
            forgotten: uid(7),
        });
    }

    #[test]
    fn check_tokens_reported_accepts_derived_impls() {
        check_tokens_reported(&Named {
            a: rv(1),
            b: None,
            n: 0,
            m: [(uid(2), vec![rv(2)])].into(),
        });
    }
}
