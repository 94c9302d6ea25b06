//! The ESR harness: from a [`Reconciler`], a [`Scope`] and a desired-state predicate, build the
//! [`ClusterMachine`] and check `[] desired_state_is(cr) ~> [] current_state_matches(cr)` plus
//! optional safety invariants; report the results in a serialisable [`Report`].
//!
//! `desired_state_is(cr)` holds when the CR exists (not being deleted) with the spec `cr`;
//! since the environment's edits and deletions are bounded, every fair cycle keeps one CR
//! version, so the single property "`[]` the CR exists `~> []` the cluster matches the CR in
//! etcd" is the conjunction of ESR over every CR version of the scope.

pub use crate::check::{Checked, CoverageProbe, check_and_report};
use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
pub use crate::model::matches_etcd;
use crate::model::{ClusterMachine, MatchesFn, ModelReconciler, StateOf, typed};
use crate::render::{Trace, render_trace_matching};
use crate::scope::Scope;
pub use anvil_checker::Progress;
use anvil_checker::{Counterexample, Property};
use anvil_reconciler::Reconciler;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A safety invariant over model states.
pub type Invariant<R, X> = Arc<dyn Fn(&StateOf<R, X>) -> bool + Send + Sync>;
/// A transition (history) invariant: a predicate on every step (state, next state), e.g.
/// "a StatefulSet's replicas never decrease unless the custom resource asked for fewer".
pub type StepInvariant<R, X> = Arc<dyn Fn(&StateOf<R, X>, &StateOf<R, X>) -> bool + Send + Sync>;

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
    /// Transition invariants `[][A(s, s')]` (name, predicate), checked on every
    /// non-stuttering step; a violation is the shortest path ending with the offending step.
    pub step_invariants: Vec<(String, StepInvariant<R, X>)>,
    /// Also check the invariant "the controller never writes an object controlled by someone
    /// else" (no adoption of foreign or orphaned objects).
    pub no_foreign_writes: bool,
    /// Also check the invariant "no unconditional update built from a stale read" on every
    /// kind (turns the model's read tracking on, which adds to the state space).
    pub no_lost_updates: bool,
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
    /// Stop the search at the first safety violation (the other properties are then
    /// `incomplete`); by default every property gets its own verdict.
    pub stop_at_first_violation: bool,
    /// Explore without the verdict-preserving reductions
    /// ([`ClusterMachine::with_reductions`]); for cross-checking them.
    pub no_reductions: bool,
}

/// The result of one property.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    /// Property name.
    pub property: String,
    /// Its formula.
    pub formula: String,
    /// `holds`, `violated`, `vacuous` (its premise was never reached for some spec of the
    /// scope: nothing was proved about it) or `incomplete`.
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

/// Coverage of one spec of the scope (Stateright's `sometimes` properties, evaluated on
/// every reachable state).
#[derive(Clone, Debug, Serialize)]
pub struct SpecCoverage {
    /// The custom resource's name.
    pub cr: String,
    /// The spec.
    pub spec: serde_json::Value,
    /// Some reachable state has the CR alive with this spec (the ESR premise true).
    pub premise_reached: bool,
    /// Some reachable state with this spec has `current_state_matches` true.
    pub desired_state_reached: bool,
}

/// What the search reached (part of every result).
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    /// One entry per custom resource and spec of the scope, in order.
    pub specs: Vec<SpecCoverage>,
    /// Whether the coverage was measured on a complete search.
    pub complete: bool,
}

impl Coverage {
    /// Specs whose ESR premise or desired state was never reached.
    pub fn gaps(&self) -> Vec<String> {
        self.gaps_where(|_| true)
    }

    /// As [`Coverage::gaps`], for the custom resource named `cr` only.
    pub fn gaps_of(&self, cr: &str) -> Vec<String> {
        self.gaps_where(|c| c.cr == cr)
    }

    fn gaps_where(&self, keep: impl Fn(&SpecCoverage) -> bool) -> Vec<String> {
        let crs: std::collections::BTreeSet<&str> =
            self.specs.iter().map(|c| c.cr.as_str()).collect();
        // the index of each entry among its custom resource's specs
        let index: Vec<usize> = (0..self.specs.len())
            .map(|i| {
                self.specs[..i]
                    .iter()
                    .filter(|c| c.cr == self.specs[i].cr)
                    .count()
            })
            .collect();
        self.specs
            .iter()
            .enumerate()
            .filter(|(_, c)| keep(c) && (!c.premise_reached || !c.desired_state_reached))
            .map(|(i, c)| {
                let what = if !c.premise_reached {
                    "never alive with this spec"
                } else {
                    "the desired state was never reached"
                };
                let which = if crs.len() > 1 {
                    format!("{}: ", c.cr)
                } else {
                    String::new()
                };
                format!("{which}spec #{} {}: {what}", index[i], c.spec)
            })
            .collect()
    }
}

/// The fixed modelling assumptions, printed with every result (DESIGN §9).
pub const ASSUMPTIONS: &[&str] = &[
    "one controller process (at most one reconcile per CR at a time); several replicas are not modelled",
    "no watch cache: the shim reads with quorum, so stale-cache reads are excluded by construction",
    "reconcile_core is pure and deterministic (the same code runs in the shim)",
    "resourceVersions and uids are opaque: compared for equality only, never parsed or ordered",
    "the API server model follows FIDELITY.md (differences listed there); built-in controllers are the model's StatefulSet/DaemonSet controllers on a one-node cluster",
    "fairness: the API server, the controller runtime, the garbage collector and built-in controllers are weakly fair; faults and the environment are not, and every fault class is eventually switched off",
    "requeue timing is abstracted: a finished reconcile may be followed by the next at any time",
];

/// The reductions in force unless `--no-reductions` (printed with the assumptions; they
/// preserve every verdict, see [`crate::model::fault_fairness`] and the other items named there).
pub const REDUCTIONS: &str = "reductions (verdict-preserving): faults have no switches but happen finitely often (no fair cycle takes a fault step), a fault whose budget is spent is off, reads in flight of a crashed controller are dropped with it, a stale request fails in one way only (nobody reads its answer), and a reconcile processes a response in the step that delivers it (eager steps; a crash may then discard the writes it had not sent yet), states that differ only by a permutation of resourceVersions and uids are one state (tokens are compared for equality only), and the garbage collector's judgement of an object is taken together with its delete unless a request in flight may change the object's owner references (nothing else reads the judgement)";

/// The reduction of the single-controller machine on top of [`REDUCTIONS`]
/// ([`crate::model::stale`]).
pub const DOOMED_STALE: &str = "reduction (verdict-preserving): a stale request that can never succeed is dropped (its precondition names a resourceVersion or uid the object no longer has; once the user and other writers can delete nothing more, also a Create of an object that exists and is not garbage, under an assumption a monitor checks: that no such object is then deleted or made garbage)";

/// The result of `verify`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Controller name.
    pub controller: String,
    /// The scope checked.
    pub scope: Scope,
    /// The fixed modelling assumptions.
    pub assumptions: Vec<String>,
    /// A scope the controller's CRD or `validate` rejects: nothing was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// What the search reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Upper bound of the probability that two distinct states shared a 64-bit fingerprint
    /// in this run (which could hide states).
    pub fingerprint_collision_bound: f64,
    /// One entry per property.
    pub results: Vec<PropertyReport>,
}

impl Report {
    /// True when every property holds (on a complete search).
    pub fn holds(&self) -> bool {
        self.config_error.is_none()
            && !self.results.is_empty()
            && self.results.iter().all(|r| r.verdict == "holds")
    }
    /// True when some property is violated.
    pub fn violated(&self) -> bool {
        self.results.iter().any(|r| r.verdict == "violated")
    }
    /// True when some property is vacuous (and none violated).
    pub fn vacuous(&self) -> bool {
        !self.violated() && self.results.iter().any(|r| r.verdict == "vacuous")
    }
    /// The named property's result.
    pub fn result(&self, property: &str) -> Option<&PropertyReport> {
        self.results.iter().find(|r| r.property == property)
    }
}

/// Name of the ESR property (of the first custom resource; see [`esr_name`]).
pub const ESR: &str = "esr";

/// Name of the ESR property of custom resource `c` of `scope`: `esr` for the first, `esr:<name>`
/// for the others.
pub fn esr_name(scope: &Scope, c: usize) -> String {
    match c {
        0 => ESR.to_string(),
        c => format!("{ESR}:{}", scope.cr_names()[c]),
    }
}

/// True for the name of an ESR property ([`esr_name`]).
pub fn is_esr(name: &str) -> bool {
    name == ESR || name.starts_with("esr:")
}
/// Name of the no-foreign-writes invariant.
pub const NO_FOREIGN_WRITES: &str = "no_foreign_writes";
/// Name of the no-lost-updates invariant.
pub const NO_LOST_UPDATES: &str = "no_lost_updates";
/// Name of the object-bound invariant ([`Scope::max_objects_per_kind`]).
pub const OBJECT_BOUND: &str = "object_bound";
const COVERAGE: &str = "(coverage)";

/// Checks that every spec of the scope is accepted by the CRD's rules (on create) and by the
/// reconciler's `validate`: a rejected spec would make ESR hold vacuously for it.
pub fn check_scope<R, X>(m: &ClusterMachine<R, X>) -> Result<(), String>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    if m.scope.specs.is_empty() {
        return Err("the scope has no spec".into());
    }
    crate::model::initial_etcd(&m.kinds, &m.scope)?;
    for (i, spec) in m.scope.specs.iter().enumerate() {
        let obj = m.cr_object(spec);
        let mut etcd = crate::api::Etcd::new();
        if let Err(e) = etcd.create(&m.kinds, &obj) {
            return Err(format!(
                "scope spec #{i} {spec} is rejected by the CRD's rules: {e}"
            ));
        }
        let stored = etcd
            .objects
            .values()
            .next()
            .cloned()
            .ok_or("create stored nothing")?;
        let Some(cr) = typed::<R::R>(&stored) else {
            return Err(format!(
                "scope spec #{i} {spec} does not decode as the controller's custom resource"
            ));
        };
        if let Err(e) = R::validate(&cr) {
            return Err(format!(
                "scope spec #{i} {spec} is rejected by the reconciler's validate: {e}"
            ));
        }
    }
    Ok(())
}

/// The properties checked for `spec` on `m`.
pub fn properties<R, X>(
    m: &ClusterMachine<R, X>,
    spec: &ControllerSpec<R, X>,
) -> Vec<Property<ClusterMachine<R, X>>>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let mut props = Vec::new();
    for (c, key) in m.cr_keys().iter().cloned().enumerate() {
        let k1 = key.clone();
        let desired = move |s: &StateOf<R, X>| {
            s.etcd
                .objects
                .get(&k1)
                .is_some_and(|o| o.metadata().deletion_timestamp.is_none())
        };
        let matches = spec.matches.clone();
        let current = move |s: &StateOf<R, X>| {
            let Some(o) = s.etcd.objects.get(&key) else {
                return false;
            };
            // (The identity of `matches` is part of the tag: two specs checked in one thread
            // never share entries.)
            let tag = std::any::TypeId::of::<(R, X)>();
            crate::model::memo::memo_matches(
                tag,
                Arc::as_ptr(&matches) as *const () as usize,
                o,
                &s.etcd,
                &s.external,
                || typed::<R::R>(o).is_some_and(|cr| matches(&cr, &s.etcd, &s.external)),
            )
        };
        props.push(Property::stable_leads_to_always(
            esr_name(&m.scope, c),
            desired,
            current,
        ));
    }
    let cr_kind = m.cr_kind().clone();
    let bound = m.scope.max_objects_per_kind;
    {
        let cr_kind = cr_kind.clone();
        props.push(Property::always(OBJECT_BOUND, move |s: &StateOf<R, X>| {
            crate::model::kinds_over_bound(&cr_kind, bound, s).is_empty()
        }));
    }
    if spec.no_lost_updates {
        props.push(Property::always(NO_LOST_UPDATES, |s: &StateOf<R, X>| {
            !crate::model::lost_update_in(s)
        }));
    }
    if spec.no_foreign_writes {
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
    for (name, inv) in &spec.step_invariants {
        let inv = inv.clone();
        props.push(Property::always_step(
            name.clone(),
            move |s: &StateOf<R, X>, t: &StateOf<R, X>| inv(s, t),
        ));
    }
    props
}

fn coverage_property<R, X>(
    m: &ClusterMachine<R, X>,
    spec: &ControllerSpec<R, X>,
    probe: Arc<CoverageProbe>,
) -> Property<ClusterMachine<R, X>>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let keys = m.cr_keys().to_vec();
    let specs = m.scope.specs.len();
    let matches = spec.matches.clone();
    Property::always(COVERAGE, move |s: &StateOf<R, X>| {
        for (c, key) in keys.iter().enumerate() {
            let Some(o) = s
                .etcd
                .objects
                .get(key)
                .filter(|o| o.metadata().deletion_timestamp.is_none())
            else {
                continue;
            };
            let Some(env) = s.env.crs.get(c) else {
                continue;
            };
            let i = c * specs + env.spec;
            if let Some(p) = probe.premise.get(i) {
                p.store(true, Ordering::Relaxed);
            }
            if let Some(flag) = probe.matched.get(i)
                && !flag.load(Ordering::Relaxed)
                && typed::<R::R>(o).is_some_and(|cr| matches(&cr, &s.etcd, &s.external))
            {
                flag.store(true, Ordering::Relaxed);
            }
        }
        true
    })
}

/// Builds the machine and checks ESR and the invariants of `spec` within `scope`. A scope
/// the CRD or `validate` rejects gives a report with `config_error` set and no results.
///
/// When the search pruned stale Creates of objects that stay (a reduction that assumes no
/// object that is not garbage is deleted or made garbage once the environment's deletion
/// budgets are spent, [`crate::model::stale`]) and a step did that, the check
/// is repeated without that pruning, and the report says so in its assumptions.
pub fn verify<R, X>(spec: ControllerSpec<R, X>, scope: Scope, opts: &CheckOptions) -> Report
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse> + Clone,
{
    let machine = || {
        ClusterMachine::<R, X>::new(spec.kinds.clone(), scope.clone(), spec.external.clone())
            .with_read_tracking(spec.no_lost_updates)
            .with_reductions(!opts.no_reductions)
    };
    let m = machine();
    let report = verify_on(&m, &spec, &scope, opts);
    if !m.create_pruning().must_repeat() {
        return report;
    }
    let first = report.results.first().map_or(0, |r| r.states);
    let mut report = verify_on(&machine().with_create_pruning(false), &spec, &scope, opts);
    report
        .assumptions
        .push(repeated_without_create_pruning(first));
    report
}

/// The note of a report whose check was repeated without pruning stale Creates, after a
/// first search of `first` states saw a deletion.
pub fn repeated_without_create_pruning(first: u64) -> String {
    format!(
        "after the last deletion by the user or other writers, a step deleted an object that was not garbage (or made one garbage), so the check was repeated without pruning stale Creates of existing objects (the first search, with that pruning, had explored {first} states)"
    )
}

fn verify_on<R, X>(
    m: &ClusterMachine<R, X>,
    spec: &ControllerSpec<R, X>,
    scope: &Scope,
    opts: &CheckOptions,
) -> Report
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse> + Clone,
{
    let mut assumptions: Vec<String> = ASSUMPTIONS.iter().map(|a| a.to_string()).collect();
    if m.reductions() {
        assumptions.push(REDUCTIONS.to_string());
        assumptions.push(DOOMED_STALE.to_string());
    }
    if let Err(e) = check_scope(m) {
        return Report {
            controller: spec.name.clone(),
            scope: scope.clone(),
            assumptions,
            config_error: Some(e),
            coverage: None,
            fingerprint_collision_bound: 0.0,
            results: Vec::new(),
        };
    }
    let props = properties(m, spec);
    let cells: Vec<(String, serde_json::Value)> = scope
        .cr_names()
        .into_iter()
        .flat_map(|cr| scope.specs.iter().map(move |s| (cr.clone(), s.clone())))
        .collect();
    let probe = Arc::new(CoverageProbe::new(cells.len()));
    let names = scope.cr_names();
    let esr_crs = (0..names.len())
        .map(|c| (esr_name(scope, c), names[c].clone()))
        .collect();
    let render = |cx: &Counterexample<ClusterMachine<R, X>>, cr: Option<&str>| {
        let cr = cr.and_then(|n| names.iter().position(|x| x == n));
        render_trace_matching(m, cx, &spec.matches, cr)
    };
    check_and_report(
        m,
        Checked {
            controller: spec.name.clone(),
            scope: scope.clone(),
            assumptions,
            coverage: coverage_property(m, spec, probe.clone()),
            props,
            probe,
            cells,
            esr_crs,
            render: &render,
        },
        opts,
    )
}
