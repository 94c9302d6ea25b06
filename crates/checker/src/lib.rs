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
//!   `[]P ~> []Q` (the ESR shape) over state predicates.
//! * [`Checker`]: breadth-first search over 64-bit fingerprints with a
//!   state limit, a memory limit and a progress callback; safety
//!   counterexamples are shortest paths, liveness counterexamples are fair
//!   lassos.
//!
//! Memory: a safety-only run stores one 64-bit fingerprint and its parent's
//! fingerprint per state (a sharded hash table, ~17 bytes per slot) plus the
//! current and next BFS frontier as full states. A run with a liveness
//! property additionally keeps the reachable graph: per state a parent id
//! (4 bytes), an edge offset (8), predicate bits (8), and 12 bytes per
//! distinct non-stuttering successor edge; states themselves are re-derived
//! by replay when a counterexample is built. [`validate`] replays any
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
pub mod fingerprint;
pub mod liveness;
pub mod machine;
pub mod models;
pub mod property;
pub mod result;
pub mod validate;

pub use checker::Checker;
pub use machine::{Fairness, Machine};
pub use property::{Predicate, Property, PropertyKind};
pub use result::{
    CheckResult, Counterexample, Progress, ProgressFn, PropertyStatus, Step, Verdict,
};
pub use validate::validate;
