//! Tokens in the cluster model: resourceVersions and uids, and the canonical renaming that
//! keeps the state space finite.
//!
//! The abstraction itself -- the tokens' shapes (decimal resourceVersions `1000000000001`...,
//! UUID-shaped uids `00000000-0000-4000-8000-000000000001`...), the [`Tokens`] trait and its
//! derive, [`Collector`] and [`Renaming`], the soundness argument and its residual risks, and
//! the debug-build guard [`check_tokens_reported`] -- lives in [`anvil_reconciler::tokens`], so
//! that a controller implements [`Tokens`] without depending on the model; it is re-exported
//! here. The model's side of the argument: the API server mints tokens only by bumping its
//! counters ([`crate::api`]) and otherwise compares them for equality, and
//! [`crate::model::canonicalize`] applies the renaming to every part of a state.
//!
//! [`check_renaming_bisimulation`] checks the argument executably on a given controller: the
//! canonical renaming, applied to non-canonical copies of reachable states (renamed by random
//! permutations of their tokens when the machine forgets the order of tokens), gives the same
//! canonical successors and the same fairness keys.

pub use anvil_reconciler::tokens::*;

use crate::external::ExternalModel;
use crate::model::canon::{rename_any_state, visit_any_state};
use crate::model::set::ControllerSet;
use crate::model::set_machine::SetMachine;
use crate::model::state::{Key, State};
use crate::model::{ClusterMachine, ModelReconciler, Pending, StateOf};
use anvil_checker::{Fairness, Machine};
use anvil_reconciler::{Request, Response};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

/// What [`check_renaming_bisimulation`] covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BisimulationCheck {
    /// Canonical states checked (a breadth-first prefix of the reachable ones).
    pub states: usize,
    /// Of these, states holding at least one token (renamed to a different state).
    pub renamed_states: usize,
    /// Transitions compared.
    pub transitions: usize,
    /// Largest number of live tokens (both spaces) in one state.
    pub max_tokens: usize,
}

/// A deterministic pseudo-random gap in `1..=max`.
fn gap(seed: &mut u64, max: u64) -> u64 {
    // xorshift64*
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    1 + seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % max
}

/// A renaming with random gaps of the sorted token numbers `live`, order-preserving or, when
/// `shuffle`, a random permutation of them: the table and the new largest number.
fn scatter(live: &[u64], shuffle: bool, seed: &mut u64) -> (BTreeMap<u64, u64>, u64) {
    let mut next = 0;
    let mut targets = Vec::with_capacity(live.len());
    for i in 0..live.len() {
        // The first target lies above every live token, so the renaming is never the identity.
        next = if i == 0 {
            live[live.len() - 1] + gap(seed, 3)
        } else {
            next + gap(seed, 4)
        };
        targets.push(next);
    }
    if shuffle {
        // Fisher-Yates; a permutation that keeps the order is as good as any other
        for i in (1..targets.len()).rev() {
            let j = (gap(seed, i as u64 + 1) - 1) as usize;
            targets.swap(i, j);
        }
    }
    (live.iter().copied().zip(targets).collect(), next)
}

/// Checks on the first `limit` reachable canonical states (breadth-first) of `m` that the
/// canonical renaming is a bisimulation that preserves fairness keys, and that every reconcile
/// local state, request, response and external state satisfies the [`Tokens`] contract
/// ([`tokens_reported`]).
///
/// For each canonical state `s` with live tokens `n_1 < ... < n_k` (per space), `t` is `s` with
/// every token renamed onto numbers above `n_k` with random gaps (`n_k + 1..3`, then steps of
/// `1..4`) -- in a random order when the machine forgets the order of tokens (its reductions
/// on, [`crate::model::TokenOrder`]), in the same order otherwise -- and the counters set at or
/// above the largest new token: a state that is *not* canonical and that the machine's
/// canonical renaming maps back onto `s`. So a controller whose steps depend on the order of
/// tokens fails the check when the order is forgotten. It checks
///
/// 1. `representative(t) == s`;
/// 2. with `t`'s requests in flight kept in `s`'s order, the same actions are enabled, and every
///    action leads to the same canonical successor with the same `Machine::fairness`;
/// 3. with `t`'s requests in flight sorted as the model sorts them (so action indices differ),
///    the sets of (fairness, canonical successor) pairs of `s` and `t` are equal, where the
///    position in the key of a *stale* request (among its sender's stale requests) is not
///    compared: it follows the order of the requests' content hashes, which a renaming may
///    change when two stale requests differ in more than verb and target (e.g. two stale
///    Creates of one Secret with different data). No fair cycle handles a stale request
///    (crashes are off in a fair cycle, so its stale requests never grow, and handling one would
///    shrink a set that must come back to itself), so each stale request's key is
///    continuously enabled and never taken along any cycle, whatever position names it: such
///    keys make every cycle through them unfair under any naming.
///
/// The error describes the first difference.
pub fn check_renaming_bisimulation<R, X>(
    m: &ClusterMachine<R, X>,
    limit: usize,
) -> Result<BisimulationCheck, String>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    check_machine_renaming(m, m.reductions(), limit)
}

/// [`check_renaming_bisimulation`] for a controller set's machine (several controllers in one
/// model, [`crate::model::set_machine`]).
pub fn check_set_renaming_bisimulation<S, X>(
    m: &SetMachine<S, X>,
    limit: usize,
) -> Result<BisimulationCheck, String>
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P>,
{
    check_machine_renaming(m, m.reductions(), limit)
}

/// The check of [`check_renaming_bisimulation`] on any machine over the composed states;
/// `shuffle`: rename by permutations (the machine forgets the order of tokens).
fn check_machine_renaming<M, T, Q, P, XS>(
    m: &M,
    shuffle: bool,
    limit: usize,
) -> Result<BisimulationCheck, String>
where
    M: Machine<State = State<T, Q, P, XS>, FairnessKey = Key>,
    T: Tokens + Clone + Eq + Hash + Debug,
    Q: Clone + Eq + Hash + Debug,
    P: Clone + Eq + Hash + Debug,
    XS: Tokens + Clone + Eq + Hash + Debug,
    Request<Q>: Tokens,
    Response<P>: Tokens,
{
    let mut report = BisimulationCheck::default();
    let mut seen: HashSet<M::State> = HashSet::new();
    let mut queue = VecDeque::new();
    for s in m.init_states() {
        let s = m.representative(s);
        if seen.insert(s.clone()) {
            queue.push_back(s);
        }
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let (mut acts, mut acts_t) = (Vec::new(), Vec::new());
    while let Some(s) = queue.pop_front() {
        report.states += 1;
        state_tokens_reported(&s)?;
        // the live tokens of s
        let (mut rvs, mut uids) = (Vec::new(), Vec::new());
        visit_any_state(&s, &mut |t| match parse(t) {
            Some((Space::Rv, n)) => rvs.push(n),
            Some((Space::Uid, n)) => uids.push(n),
            None => {}
        });
        for v in [&mut rvs, &mut uids] {
            v.sort_unstable();
            v.dedup();
        }
        report.max_tokens = report.max_tokens.max(rvs.len() + uids.len());
        let (rv_table, rv_max) = scatter(&rvs, shuffle, &mut seed);
        let (uid_table, uid_max) = scatter(&uids, shuffle, &mut seed);
        let sigma = Renaming::table(rv_table, uid_table);
        // t: s renamed, network sorted as the model sorts it
        let mut sorted = s.clone();
        rename_any_state(&mut sorted, &sigma);
        sorted.etcd.rv = rv_max.max(s.etcd.rv) + gap(&mut seed, 3) - 1;
        sorted.etcd.uid = uid_max.max(s.etcd.uid) + gap(&mut seed, 3) - 1;
        // the same, with the network in s's order (so that action indices correspond)
        let mut same = sorted.clone();
        same.network = s
            .network
            .iter()
            .map(|msg| {
                let mut msg = msg.clone();
                msg.req = msg.req.rename(&sigma);
                msg
            })
            .collect();
        if !rvs.is_empty() || !uids.is_empty() {
            report.renamed_states += 1;
            if same == s {
                return Err(format!("the renaming {sigma:?} does not change {s:?}"));
            }
        }
        for t in [&same, &sorted] {
            if m.representative(t.clone()) != s {
                return Err(format!(
                    "the canonical renaming of a renamed state is not the state:\n  s = {s:?}\n  \
                     t = {t:?}\n  representative(t) = {:?}",
                    m.representative(t.clone())
                ));
            }
        }
        acts.clear();
        acts_t.clear();
        m.actions(&s, &mut acts);
        m.actions(&same, &mut acts_t);
        if acts != acts_t {
            return Err(format!(
                "different actions enabled in s and in its renaming:\n  {acts:?}\n  {acts_t:?}\n  \
                 s = {s:?}"
            ));
        }
        let mut pairs_s = HashSet::new();
        for a in &acts {
            report.transitions += 1;
            let ns = m.next_state(&s, a).map(|n| m.representative(n));
            let nt = m.next_state(&same, a).map(|n| m.representative(n));
            if ns != nt {
                return Err(format!(
                    "{a:?} leads to different canonical successors from s and from its \
                     renaming:\n  s = {s:?}\n  successor of s = {ns:?}\n  successor of the \
                     renaming = {nt:?}"
                ));
            }
            if let Some(n) = ns {
                let (fs, ft) = (m.fairness(&s, a), m.fairness(&same, a));
                if fs != ft {
                    return Err(format!(
                        "{a:?} has fairness {fs:?} in s but {ft:?} in its renaming:\n  s = {s:?}"
                    ));
                }
                pairs_s.insert((without_stale_position(fs), n.clone()));
                if seen.len() < limit && seen.insert(n.clone()) {
                    queue.push_back(n);
                }
            }
        }
        acts_t.clear();
        m.actions(&sorted, &mut acts_t);
        let pairs_t: HashSet<_> = acts_t
            .iter()
            .filter_map(|a| {
                let n = m.next_state(&sorted, a)?;
                Some((
                    without_stale_position(m.fairness(&sorted, a)),
                    m.representative(n),
                ))
            })
            .collect();
        if pairs_s != pairs_t {
            return Err(format!(
                "the (fairness, canonical successor) pairs of s and of its renaming (network \
                 re-sorted) differ:\n  s = {s:?}\n  only from s: {:?}\n  only from the \
                 renaming: {:?}",
                pairs_s
                    .difference(&pairs_t)
                    .map(|p| &p.0)
                    .collect::<Vec<_>>(),
                pairs_t
                    .difference(&pairs_s)
                    .map(|p| &p.0)
                    .collect::<Vec<_>>()
            ));
        }
    }
    Ok(report)
}

/// `f` with the position of a stale request's handling key set to 0 (see
/// [`check_renaming_bisimulation`], point 3).
fn without_stale_position(f: Fairness<Key>) -> Fairness<Key> {
    let erase = |k: Key| match k {
        Key::Handle {
            from, stale: true, ..
        } => Key::Handle {
            from,
            stale: true,
            pos: 0,
        },
        k => k,
    };
    match f {
        Fairness::Weak(k) => Fairness::Weak(erase(k)),
        Fairness::Strong(k) => Fairness::Strong(erase(k)),
        Fairness::Unfair => Fairness::Unfair,
        Fairness::Finite => Fairness::Finite,
    }
}

/// [`tokens_reported`] on every reconcile local state, request in flight, delivered response
/// and the external system's state of `s`.
pub fn check_state_tokens<R, X>(s: &StateOf<R, X>) -> Result<(), String>
where
    R: ModelReconciler,
    X: ExternalModel,
{
    state_tokens_reported(s)
}

fn state_tokens_reported<T, Q, P, XS>(s: &State<T, Q, P, XS>) -> Result<(), String>
where
    T: Tokens + Debug,
    XS: Tokens + Debug,
    Request<Q>: Tokens + Debug,
    Response<P>: Tokens + Debug,
{
    for msg in &s.network {
        tokens_reported(&msg.req)?;
    }
    for o in s.ongoing.values() {
        tokens_reported(&o.local)?;
        if let Pending::Ready(r) = &o.pending {
            tokens_reported(r)?;
        }
    }
    tokens_reported(&s.external)
}
