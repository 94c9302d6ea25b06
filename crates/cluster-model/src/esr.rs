//! The ESR harness: from a [`Reconciler`], a [`Scope`] and a desired-state predicate, build the
//! [`ClusterMachine`] and check `[] desired_state_is(cr) ~> [] current_state_matches(cr)` plus
//! optional safety invariants; report the results in a serialisable [`Report`].
//!
//! `desired_state_is(cr)` holds when the CR exists (not being deleted) with the spec `cr`;
//! since the environment's edits and deletions are bounded, every fair cycle keeps one CR
//! version, so the single property "`[]` the CR exists `~> []` the cluster matches the CR in
//! etcd" is the conjunction of ESR over every CR version of the scope.

use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
pub use crate::model::matches_etcd;
use crate::model::{ClusterMachine, MatchesFn, ModelReconciler, StateOf, typed};
use crate::render::{Trace, render_trace};
use crate::scope::Scope;
pub use anvil_checker::Progress;
use anvil_checker::{Checker, Property, PropertyStatus};
use anvil_reconciler::Reconciler;
use serde::Serialize;
use std::sync::Arc;

/// A safety invariant over model states.
pub type Invariant<R, X> = Arc<dyn Fn(&StateOf<R, X>) -> bool + Send + Sync>;

/// What the harness needs to know about a controller.
pub struct ControllerSpec<R: Reconciler, X: ExternalModel> {
    /// Name shown in reports.
    pub name: String,
    /// Kinds the API server knows, including the CR kind (with its CRD rules).
    pub kinds: KindRegistry,
    /// The external system.
    pub external: X,
    /// The desired-state predicate `current_state_matches(cr, etcd, external)`; it sees the API
    /// server's objects and the external system's state. Wrap a predicate that only reads
    /// etcd with [`matches_etcd`].
    pub matches: MatchesFn<R::R, X::State>,
    /// Extra safety invariants (name, predicate).
    pub invariants: Vec<(String, Invariant<R, X>)>,
    /// Also check the invariant "the controller never writes an object controlled by someone
    /// else" (no adoption of foreign or orphaned objects).
    pub no_foreign_writes: bool,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Limits and reporting for a run.
#[derive(Clone, Default)]
pub struct CheckOptions {
    /// Stop (incomplete) after this many distinct states.
    pub state_limit: Option<u64>,
    /// Stop (incomplete) above this resident memory.
    pub memory_limit: Option<u64>,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

/// The result of one property.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    /// Property name.
    pub property: String,
    /// Its formula.
    pub formula: String,
    /// `holds`, `violated` or `incomplete`.
    pub verdict: String,
    /// Whether the whole reachable state space was explored.
    pub complete: bool,
    /// Distinct states.
    pub states: u64,
    /// Generated transitions.
    pub transitions: u64,
    /// BFS depth (in states).
    pub depth: u64,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// Peak resident memory.
    pub peak_memory_bytes: u64,
    /// The scope checked.
    pub scope: serde_json::Value,
    /// Why the search was incomplete, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The counterexample, when violated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Trace>,
    /// Whether the trace validator accepted the counterexample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample_validated: Option<bool>,
    /// The validator's complaint, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_error: Option<String>,
}

/// The result of `verify`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Controller name.
    pub controller: String,
    /// The scope checked.
    pub scope: Scope,
    /// One entry per property.
    pub results: Vec<PropertyReport>,
}

impl Report {
    /// True when every property holds (on a complete search).
    pub fn holds(&self) -> bool {
        self.results.iter().all(|r| r.verdict == "holds")
    }
    /// True when some property is violated.
    pub fn violated(&self) -> bool {
        self.results.iter().any(|r| r.verdict == "violated")
    }
    /// The named property's result.
    pub fn result(&self, property: &str) -> Option<&PropertyReport> {
        self.results.iter().find(|r| r.property == property)
    }
}

/// Name of the ESR property.
pub const ESR: &str = "esr";
/// Name of the no-foreign-writes invariant.
pub const NO_FOREIGN_WRITES: &str = "no_foreign_writes";

/// The properties checked for `spec` on `m`.
pub fn properties<R, X>(
    m: &ClusterMachine<R, X>,
    spec: &ControllerSpec<R, X>,
) -> Vec<Property<ClusterMachine<R, X>>>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let key = m.cr_key();
    let k1 = key.clone();
    let desired = move |s: &StateOf<R, X>| {
        s.etcd
            .objects
            .get(&k1)
            .is_some_and(|o| o.metadata().deletion_timestamp.is_none())
    };
    let matches = spec.matches.clone();
    let current = move |s: &StateOf<R, X>| {
        s.etcd
            .objects
            .get(&key)
            .is_some_and(|o| typed::<R::R>(o).is_some_and(|cr| matches(&cr, &s.etcd, &s.external)))
    };
    let mut props = vec![Property::stable_leads_to_always(ESR, desired, current)];
    if spec.no_foreign_writes {
        let cr_kind = anvil_objects::Kind::of::<R::R>();
        props.push(Property::always(
            NO_FOREIGN_WRITES,
            move |s: &StateOf<R, X>| !crate::model::foreign_write_in(&cr_kind, s),
        ));
    }
    for (name, inv) in &spec.invariants {
        let inv = inv.clone();
        props.push(Property::always(name.clone(), move |s: &StateOf<R, X>| {
            inv(s)
        }));
    }
    props
}

/// Builds the machine and checks ESR and the invariants of `spec` within `scope`.
pub fn verify<R, X>(spec: ControllerSpec<R, X>, scope: Scope, opts: &CheckOptions) -> Report
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse> + Clone,
{
    let m = ClusterMachine::<R, X>::new(spec.kinds.clone(), scope.clone(), spec.external.clone());
    let props = properties(&m, &spec);
    let mut c = Checker::new(&m).properties(props.clone());
    if let Some(n) = opts.state_limit {
        c = c.state_limit(n);
    }
    if let Some(b) = opts.memory_limit {
        c = c.memory_limit(b);
    }
    if let Some(t) = opts.threads {
        c = c.threads(t);
    }
    if let Some(p) = opts.progress.clone() {
        c = c.progress(move |pr| p(pr));
    }
    let r = c.run();
    let reason = match &r.verdict {
        anvil_checker::Verdict::Incomplete { reason } => Some(reason.clone()),
        _ => None,
    };
    let scope_json = scope.to_json();
    let results = props
        .iter()
        .zip(&r.properties)
        .map(|(p, (name, status))| {
            let (verdict, cx) = match status {
                PropertyStatus::Holds => ("holds", None),
                PropertyStatus::Violated(cx) => ("violated", Some(cx)),
                PropertyStatus::Unknown => ("incomplete", None),
            };
            let validation = cx.map(|cx| anvil_checker::validate(&m, p, cx));
            PropertyReport {
                property: name.clone(),
                formula: p.kind_name().to_string(),
                verdict: verdict.into(),
                complete: r.complete,
                states: r.states,
                transitions: r.transitions,
                depth: r.max_depth,
                seconds: r.seconds,
                peak_memory_bytes: r.peak_memory_bytes,
                scope: scope_json.clone(),
                reason: if verdict == "incomplete" {
                    Some(reason.clone().unwrap_or_else(|| {
                        "the search stopped at another property's violation".into()
                    }))
                } else {
                    None
                },
                counterexample: cx.map(|cx| render_trace(&m, cx)),
                counterexample_validated: validation.as_ref().map(|v| v.is_ok()),
                validation_error: validation.and_then(|v| v.err()),
            }
        })
        .collect();
    Report {
        controller: spec.name,
        scope,
        results,
    }
}
