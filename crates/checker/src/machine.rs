//! The [`Machine`] trait: TLA-style state machines with per-action fairness.

use std::fmt::Debug;
use std::hash::Hash;

/// Fairness class of one action instance, as declared by the machine.
///
/// `K` is an *instance key* chosen by the machine: all actions that carry the
/// same key (and the same class) form one fairness obligation, e.g.
/// "API server handles message m" or "controller advances the reconcile of k".
///
/// Semantics (checked on every cycle of a lasso, see [`crate::liveness`]):
///
/// * [`Fairness::Weak`]`(k)` -- TLA+ `WF`: a behaviour is unfair if, from some
///   point on, instance `k` is enabled in *every* state and never taken.
/// * [`Fairness::Strong`]`(k)` -- TLA+ `SF`: a behaviour is unfair if, from some
///   point on, `k` is enabled in *infinitely many* states and never taken.
/// * [`Fairness::Unfair`] -- no obligation: the environment, user edits.
/// * [`Fairness::Finite`] -- no obligation, and taken only **finitely often** in
///   every behaviour considered: no cycle of a lasso takes it (faults that
///   happen any number of times and then stop). The same behaviours as an
///   unfair action behind a switch that a weakly fair step turns off for good,
///   without the switch in the state.
///
/// "Enabled" and "taken" only count **non-stuttering** steps (a step whose
/// canonical successor equals the canonical current state), exactly like
/// TLA+'s `ENABLED <<A>>_vars` / `<<A>>_vars`. A stuttering step neither
/// enables nor discharges an obligation.
///
/// A key should be declared with a single class; if the same key value is used
/// both as `Weak` and `Strong` the two are treated as different obligations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fairness<K> {
    /// No fairness assumption (faults, environment).
    Unfair,
    /// Weak fairness of the instance `K`.
    Weak(K),
    /// Strong fairness of the instance `K`.
    Strong(K),
    /// No fairness obligation, and taken only finitely often: a cycle of a lasso never
    /// takes it.
    Finite,
}

impl<K> Fairness<K> {
    /// The instance key, if the action is fair.
    pub fn key(&self) -> Option<&K> {
        match self {
            Fairness::Unfair | Fairness::Finite => None,
            Fairness::Weak(k) | Fairness::Strong(k) => Some(k),
        }
    }
    /// True for `Weak` and `Strong`.
    pub fn is_fair(&self) -> bool {
        matches!(self, Fairness::Weak(_) | Fairness::Strong(_))
    }
}

/// A TLA-style state machine: initial states, enabled actions, next states.
///
/// The behaviours of a machine are the infinite sequences `s0 s1 s2 ...` where
/// `s0` is an initial state and every step is either a transition of an
/// enabled action or a *stuttering* step (`s(i+1) == s(i)`), restricted to
/// behaviours that satisfy the fairness assumptions declared by
/// [`Machine::fairness`]. In particular a state with no fair action enabled
/// (e.g. a deadlock, or a state where only faults/environment can move) may
/// stutter forever; the checker treats that as a legal behaviour, as TLA+
/// does.
///
/// Everything must be deterministic and pure: the checker calls these methods
/// from several threads, again when it rebuilds counterexamples, and in the
/// trace validator, and expects the same answers each time.
pub trait Machine: Sync {
    /// A state. `Hash` is used for fingerprinting (see
    /// [`crate::fingerprint`]); `Eq` must agree with `Hash`.
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    /// An action (a labelled transition). Shown in traces.
    type Action: Clone + Eq + Hash + Debug + Send + Sync;
    /// Instance key of fairness obligations (see [`Fairness`]). Any small
    /// hashable value; `u64`, a small enum, or the action type itself.
    type FairnessKey: Clone + Eq + Hash + Debug + Send + Sync;

    /// The initial states. They are canonicalised with
    /// [`Machine::representative`] before use.
    fn init_states(&self) -> Vec<Self::State>;

    /// Push the actions that may be enabled in `state` onto `out`
    /// (`out` is empty on entry). An action is *enabled* in `state` when it is
    /// listed here **and** [`Machine::next_state`] returns `Some`.
    fn actions(&self, state: &Self::State, out: &mut Vec<Self::Action>);

    /// The successor of `state` under `action`, or `None` if the action is
    /// not actually enabled. The result is canonicalised by the checker.
    fn next_state(&self, state: &Self::State, action: &Self::Action) -> Option<Self::State>;

    /// Fairness class and instance key of `action` taken from `state`.
    /// Only called for enabled actions, only when a liveness property is
    /// checked (safety-only runs never call it). `state` is canonical.
    fn fairness(&self, state: &Self::State, action: &Self::Action) -> Fairness<Self::FairnessKey>;

    /// Map a state to the canonical representative of its equivalence class
    /// before it is fingerprinted and stored (TLC's VIEW + SYMMETRY,
    /// Stateright's `Representative`). The default is the identity.
    ///
    /// The checker explores the *quotient* graph: it only ever stores and
    /// expands canonical states, so every method of this trait and every
    /// property predicate sees canonical states only. This is sound (the
    /// quotient has exactly the same verdicts as the original machine) when
    /// the equivalence `s ~ t  <=>  rep(s) == rep(t)` is a bisimulation that
    /// respects everything the checker looks at:
    ///
    /// 1. `rep(rep(s)) == rep(s)` (idempotent);
    /// 2. transitions: if `s ~ t`, then for every successor `s'` of `s` there
    ///    is a successor `t'` of `t` with `s' ~ t'`, by an action with the
    ///    *same fairness class and key* (so keys must be stable under the
    ///    renaming: derive them from content, or from renamed ids consistently);
    ///    For example, with symmetry over resource managers a key
    ///    `Prepare(rm_index)` is *not* stable (index 0 of one canonical state
    ///    may be index 2 of the next); use a key that does not name the
    ///    renamed value, or derive it from content that the renaming keeps.
    /// 3. predicates: every property predicate gives the same answer on
    ///    equivalent states, and every step predicate (`[][A]_s`) gives the
    ///    same answer when either of its two states is replaced by an
    ///    equivalent one (each argument separately: the checker evaluates
    ///    `A(rep(s), rep(t))`, and the renamings of `s` and `t` need not
    ///    agree; e.g. compare counts, not named components);
    /// 4. the model only *compares* the abstracted values (e.g.
    ///    resourceVersions, uids, message ids) and never computes with them,
    ///    which is what makes an order-preserving renaming satisfy (2) (and
    ///    any bijection, when they are compared for equality only).
    ///
    /// Stuttering is judged on canonical states: a step `s -> s'` with
    /// `rep(s') == rep(s)` is a stuttering step of the quotient (it does not
    /// enable or discharge fairness obligations, and step properties are not
    /// evaluated on it). With symmetry reduction this
    /// also makes a step that merely permutes symmetric components count as
    /// stuttering; that is only sound if no property or fairness key can tell
    /// the permuted states apart, which (3) and (2) already demand.
    fn representative(&self, state: Self::State) -> Self::State {
        state
    }

    /// Prepares a new (canonical) state for the frontier, where it waits to be expanded: for
    /// example, makes it share parts equal to those of other stored states, so that a wide
    /// level takes less memory. It must return an equal state (same `Eq`, same `Hash`); it is
    /// called once per distinct state. The default returns it unchanged.
    fn compact(&self, state: Self::State) -> Self::State {
        state
    }
}
