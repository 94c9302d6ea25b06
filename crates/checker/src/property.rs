//! Temporal properties over state predicates and step predicates.
//!
//! Every property gets its own verdict in a run (see
//! [`crate::CheckResult::properties`]): safety properties (`[]P`,
//! `[][A]_s`) are checked on every reachable state / transition during
//! exploration, and a violated one keeps its shortest counterexample while the
//! search goes on for the others; liveness properties are checked on the
//! complete reachable graph.

use crate::machine::Machine;
use std::fmt;
use std::sync::Arc;

/// A named state predicate, evaluated on canonical states.
pub type Predicate<S> = Arc<dyn Fn(&S) -> bool + Send + Sync>;

/// A step (transition) predicate `A(s, s')`, evaluated on pairs of
/// canonical states: the state before and the state after the step.
pub type StepPredicate<S> = Arc<dyn Fn(&S, &S) -> bool + Send + Sync>;

/// The shape of a property. `P` and `Q` are state predicates, `A` is a step
/// predicate.
///
/// All liveness shapes are checked on the reachable quotient graph under the
/// machine's fairness assumptions; a violation is a fair lasso (see
/// [`crate::liveness`]).
pub enum PropertyKind<S> {
    /// `[]P`: every reachable state satisfies `P` (safety; shortest path
    /// counterexample).
    Always(Predicate<S>),
    /// `[][A]_s`: every step of every behaviour satisfies `A` or is a
    /// stuttering step (safety over transitions, e.g. "replicas never
    /// decrease": `A(s, t) = t.replicas >= s.replicas`).
    ///
    /// `A` is evaluated on every generated **non-stuttering** transition
    /// `s -> t` between reachable canonical states (`t != s`); stuttering
    /// steps satisfy `[A]_s` by definition, exactly as in TLA+ (where
    /// `[A]_v == A \/ v' = v`), so a stuttering step never violates the
    /// property, even when the machine lists it as an action. The
    /// counterexample is a shortest path to the source state of a violating
    /// step followed by that step (a [`crate::Counterexample::Path`] whose
    /// last step is the violating transition).
    AlwaysStep(StepPredicate<S>),
    /// `<>P`: every fair behaviour reaches a `P` state.
    Eventually(Predicate<S>),
    /// `[]<>P`: every fair behaviour visits `P` states infinitely often.
    AlwaysEventually(Predicate<S>),
    /// `<>[]P`: every fair behaviour eventually stays in `P` forever.
    EventuallyAlways(Predicate<S>),
    /// `P ~> Q` i.e. `[](P => <>Q)`.
    LeadsTo(Predicate<S>, Predicate<S>),
    /// `P ~> []Q` i.e. `[](P => <>[]Q)`.
    LeadsToAlways(Predicate<S>, Predicate<S>),
    /// `[]P ~> []Q`, i.e. `[]([]P => <>[]Q)`, equivalently `<>[]P => <>[]Q`:
    /// once `P` holds forever, `Q` eventually holds forever. This is the
    /// shape of ESR (`P` = desired state is `cr`, `Q` = current state matches
    /// `cr`). Violated iff some reachable fair cycle stays in `P` and contains
    /// a `!Q` state.
    StableLeadsToAlways(Predicate<S>, Predicate<S>),
}

/// A named property of machine `M`.
pub struct Property<M: Machine> {
    /// Name shown in results.
    pub name: String,
    /// The formula.
    pub kind: PropertyKind<M::State>,
}

impl<M: Machine> Clone for Property<M> {
    fn clone(&self) -> Self {
        use PropertyKind::*;
        let kind = match &self.kind {
            Always(p) => Always(p.clone()),
            AlwaysStep(a) => AlwaysStep(a.clone()),
            Eventually(p) => Eventually(p.clone()),
            AlwaysEventually(p) => AlwaysEventually(p.clone()),
            EventuallyAlways(p) => EventuallyAlways(p.clone()),
            LeadsTo(p, q) => LeadsTo(p.clone(), q.clone()),
            LeadsToAlways(p, q) => LeadsToAlways(p.clone(), q.clone()),
            StableLeadsToAlways(p, q) => StableLeadsToAlways(p.clone(), q.clone()),
        };
        Property {
            name: self.name.clone(),
            kind,
        }
    }
}

impl<M: Machine> fmt::Debug for Property<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Property({:?}, {})", self.name, self.kind_name())
    }
}

fn pred<S, F: Fn(&S) -> bool + Send + Sync + 'static>(f: F) -> Predicate<S> {
    Arc::new(f)
}

impl<M: Machine> Property<M> {
    /// `[]P` (invariant).
    pub fn always(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::Always(pred(p)),
        }
    }
    /// `[][A]_s`: every non-stuttering step `s -> t` satisfies `a(s, t)` (see
    /// [`PropertyKind::AlwaysStep`]).
    pub fn always_step(
        name: impl Into<String>,
        a: impl Fn(&M::State, &M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::AlwaysStep(Arc::new(a)),
        }
    }
    /// `<>P`.
    pub fn eventually(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::Eventually(pred(p)),
        }
    }
    /// `[]<>P`.
    pub fn always_eventually(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::AlwaysEventually(pred(p)),
        }
    }
    /// `<>[]P`.
    pub fn eventually_always(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::EventuallyAlways(pred(p)),
        }
    }
    /// `P ~> Q`.
    pub fn leads_to(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
        q: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::LeadsTo(pred(p), pred(q)),
        }
    }
    /// `P ~> []Q`.
    pub fn leads_to_always(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
        q: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::LeadsToAlways(pred(p), pred(q)),
        }
    }
    /// `[]P ~> []Q` (ESR shape).
    pub fn stable_leads_to_always(
        name: impl Into<String>,
        p: impl Fn(&M::State) -> bool + Send + Sync + 'static,
        q: impl Fn(&M::State) -> bool + Send + Sync + 'static,
    ) -> Self {
        Property {
            name: name.into(),
            kind: PropertyKind::StableLeadsToAlways(pred(p), pred(q)),
        }
    }

    /// True for `Always` and `AlwaysStep` (checked during exploration),
    /// false for liveness.
    pub fn is_safety(&self) -> bool {
        matches!(
            self.kind,
            PropertyKind::Always(_) | PropertyKind::AlwaysStep(_)
        )
    }

    /// Short name of the shape, e.g. `"P ~> []Q"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PropertyKind::Always(_) => "[]P",
            PropertyKind::AlwaysStep(_) => "[][A(s,s')]_s",
            PropertyKind::Eventually(_) => "<>P",
            PropertyKind::AlwaysEventually(_) => "[]<>P",
            PropertyKind::EventuallyAlways(_) => "<>[]P",
            PropertyKind::LeadsTo(..) => "P ~> Q",
            PropertyKind::LeadsToAlways(..) => "P ~> []Q",
            PropertyKind::StableLeadsToAlways(..) => "[]P ~> []Q",
        }
    }

    /// The state predicates of the property, in order (`P` then `Q`); empty
    /// for a step property (see [`Property::step_predicate`]).
    pub fn predicates(&self) -> Vec<&Predicate<M::State>> {
        use PropertyKind::*;
        match &self.kind {
            AlwaysStep(_) => vec![],
            Always(p) | Eventually(p) | AlwaysEventually(p) | EventuallyAlways(p) => vec![p],
            LeadsTo(p, q) | LeadsToAlways(p, q) | StableLeadsToAlways(p, q) => vec![p, q],
        }
    }

    /// The step predicate of an `AlwaysStep` property.
    pub fn step_predicate(&self) -> Option<&StepPredicate<M::State>> {
        match &self.kind {
            PropertyKind::AlwaysStep(a) => Some(a),
            _ => None,
        }
    }
}
