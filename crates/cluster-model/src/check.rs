//! The report path shared by the single-controller harness ([`crate::esr::verify`]) and the
//! controller-set harness ([`crate::esr_set::verify_set`]): run the checker on a machine's
//! properties and report each one's verdict with completeness, coverage, counts and a
//! rendered, validated counterexample ([`check_and_report`]).

use crate::esr::{CheckOptions, Coverage, OBJECT_BOUND, PropertyReport, Report, SpecCoverage};
use crate::render::Trace;
use crate::scope::Scope;
use anvil_checker::{Checker, Counterexample, Machine, Property, PropertyStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Per-spec coverage flags, filled by a property that is true on every state (one cell per
/// custom resource and spec, see [`CoverageProbe::new`]).
pub struct CoverageProbe {
    /// Some reachable state had the cell's CR alive with the cell's spec.
    pub premise: Vec<AtomicBool>,
    /// ... and the desired state.
    pub matched: Vec<AtomicBool>,
}

impl CoverageProbe {
    /// A probe of `cells` cells, all unset.
    pub fn new(cells: usize) -> Self {
        CoverageProbe {
            premise: (0..cells).map(|_| AtomicBool::new(false)).collect(),
            matched: (0..cells).map(|_| AtomicBool::new(false)).collect(),
        }
    }
}

/// The properties of one run and how to report them: the input of [`check_and_report`],
/// shared by the single-controller [`verify`] and the controller-set
/// [`crate::esr_set::verify_set`].
pub struct Checked<'a, M: Machine> {
    /// Controller (or set) name.
    pub controller: String,
    /// The scope.
    pub scope: Scope,
    /// The modelling assumptions to print.
    pub assumptions: Vec<String>,
    /// The properties, each reported.
    pub props: Vec<Property<M>>,
    /// The coverage property (true everywhere; fills `probe`).
    pub coverage: Property<M>,
    /// Its flags.
    pub probe: Arc<CoverageProbe>,
    /// The coverage cells: (custom resource name, spec), in probe order.
    pub cells: Vec<(String, serde_json::Value)>,
    /// For each ESR property's name: the custom resource it is about.
    pub esr_crs: Vec<(String, String)>,
    /// Renders a counterexample of a property (with the custom resource of an ESR property).
    pub render: &'a dyn Fn(&Counterexample<M>, Option<&str>) -> Trace,
}

/// Runs the checker on `m` for the properties of `c` and reports each property's verdict with
/// completeness, coverage (an ESR property whose custom resource has coverage gaps is
/// `vacuous`), counts, and a rendered, validated counterexample.
pub fn check_and_report<M: Machine>(m: &M, c: Checked<'_, M>, opts: &CheckOptions) -> Report {
    let Checked {
        controller,
        scope,
        assumptions,
        props,
        coverage,
        probe,
        cells,
        esr_crs,
        render,
    } = c;
    let mut all = props.clone();
    all.push(coverage);
    let mut c = Checker::new(m).properties(all);
    if let Some(n) = opts.state_limit {
        c = c.state_limit(n);
    }
    if let Some(b) = opts.memory_limit {
        c = c.memory_limit(b);
    }
    if let Some(t) = opts.threads {
        c = c.threads(t);
    }
    c = c.stop_at_first_violation(opts.stop_at_first_violation);
    if let Some(p) = opts.progress.clone() {
        c = c.progress(move |pr| p(pr));
    }
    let r = c.run();
    let reason = match &r.verdict {
        anvil_checker::Verdict::Incomplete { reason } => Some(reason.clone()),
        _ => None,
    };
    let coverage = Coverage {
        specs: cells
            .into_iter()
            .enumerate()
            .map(|(i, (cr, spec))| SpecCoverage {
                cr,
                spec,
                premise_reached: probe.premise[i].load(Ordering::Relaxed),
                desired_state_reached: probe.matched[i].load(Ordering::Relaxed),
            })
            .collect(),
        complete: r.complete,
    };
    let bound_hit = r
        .properties
        .iter()
        .any(|(n, st)| n == OBJECT_BOUND && matches!(st, PropertyStatus::Violated(_)));
    let scope_json = scope.to_json();
    let results = props
        .iter()
        .zip(&r.properties)
        .map(|(p, (name, status))| {
            let (mut verdict, cx) = match status {
                PropertyStatus::Holds => ("holds", None),
                PropertyStatus::Violated(cx) => ("violated", Some(cx)),
                PropertyStatus::Unknown => ("incomplete", None),
            };
            let mut why = None;
            if !p.is_safety() && bound_hit && verdict != "incomplete" {
                // States above the object bound were not expanded: a liveness verdict is
                // neither a proof nor a real counterexample there.
                verdict = "incomplete";
                why = Some(format!(
                    "the object bound ({} per kind) was exceeded; states beyond it were not explored",
                    scope.max_objects_per_kind
                ));
            }
            let cx = if verdict == "violated" { cx } else { None };
            // an ESR property is vacuous when its own CR's coverage has gaps
            let cr = esr_crs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, cr)| cr.as_str());
            let gaps = cr.map_or_else(Vec::new, |cr| coverage.gaps_of(cr));
            if verdict == "holds" && !gaps.is_empty() {
                verdict = "vacuous";
                why = Some(format!("coverage gaps: {}", gaps.join("; ")));
            }
            let validation = cx.map(|cx| anvil_checker::validate(m, p, cx));
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
                reason: why.or_else(|| {
                    (verdict == "incomplete").then(|| {
                        reason.clone().unwrap_or_else(|| {
                            "the search stopped at another property's violation".into()
                        })
                    })
                }),
                counterexample: cx.map(|cx| render(cx, cr)),
                counterexample_validated: validation.as_ref().map(|v| v.is_ok()),
                validation_error: validation.and_then(|v| v.err()),
            }
        })
        .collect();
    Report {
        controller,
        scope,
        assumptions,
        config_error: None,
        coverage: Some(coverage),
        fingerprint_collision_bound: anvil_checker::fingerprint::collision_probability(r.states),
        results,
    }
}
