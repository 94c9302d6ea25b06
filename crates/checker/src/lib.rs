//! # anvil-checker
//!
//! An explicit-state model checker for TLA-style state machines with
//! per-action fairness, used to check eventually stable reconciliation (ESR)
//! of Kubernetes controllers composed with a cluster model.
//!
//! * [`Machine`]: initial states, actions, next states, a [`Fairness`] class
//!   and instance key per action, and a canonicalisation hook
//!   ([`Machine::representative`]).
//! * [`Property`]: `[]P`, `<>P`, `[]<>P`, `<>[]P`, `P ~> Q`, `P ~> []Q` and
//!   `[]P ~> []Q` (the ESR shape) over state predicates, and `[][A]_s`
//!   ([`Property::always_step`]) over steps, e.g. "replicas never decrease":
//!   `A(s, t)` is evaluated on every non-stuttering transition `s -> t`
//!   between reachable canonical states (stuttering steps satisfy `[A]_s`, as
//!   in TLA+).
//! * [`Checker`]: breadth-first search over 64-bit fingerprints with a
//!   state limit, a memory limit and a progress callback; safety
//!   counterexamples are shortest paths (for `[][A]_s`: a shortest path to
//!   the source of a violating step, then that step), liveness
//!   counterexamples are fair lassos.
//!
//! **Every property gets its own verdict** ([`CheckResult::properties`]): a
//! violated safety property keeps its shortest counterexample and the search
//! goes on for the others; it stops early only when every property is a
//! safety property and all of them are violated, or at the state/memory
//! limit, in which case the undecided properties are
//! [`PropertyStatus::Unknown`] (violations found so far stay violations).
//! Liveness properties are checked on the complete reachable graph.
//! [`CheckResult::complete`] says whether the whole reachable space was
//! explored, and [`CheckResult::collision_probability`] bounds the chance
//! that a 64-bit fingerprint collision hid a state.
//!
//! Memory: a safety-only run stores one 64-bit fingerprint and its parent's
//! fingerprint per state (a sharded open-addressing table, 16 bytes per slot,
//! at most 3/4 full) plus the
//! current and next BFS frontier as full states. A run with a liveness
//! property additionally keeps the reachable graph: per state a parent id
//! (4 bytes), an edge offset (8), predicate bits (8), and 12 bytes per
//! distinct non-stuttering successor edge; states themselves are re-derived
//! by replay when a counterexample is built. [`validate()`] replays any
//! counterexample independently.
//!
//! ```
//! use anvil_checker::{Checker, Property, models::TwoPhaseCommit};
//! let m = TwoPhaseCommit::new(3);
//! let r = Checker::new(&m).property(TwoPhaseCommit::consistent()).run();
//! assert!(r.holds());
//! assert_eq!(r.states, 288);
//! ```

pub mod checker;
mod engine;
mod expand;
pub mod fingerprint;
pub mod liveness;
pub mod machine;
pub mod models;
pub mod property;
pub mod result;
mod store;
mod trace;
pub mod validate;
mod workers;

pub use checker::Checker;
pub use machine::{Fairness, Machine};
pub use property::{Predicate, Property, PropertyKind, StepPredicate};
pub use result::{
    CheckResult, Counterexample, Progress, ProgressFn, PropertyStatus, Step, Verdict,
};
pub use validate::validate;
