//! The checker builder, and how one run turns into per-property verdicts.
//!
//! One exploration decides every property on its own:
//!
//! * safety properties (`[]P`, `[][A]_s`) are evaluated during the BFS; a
//!   violated one keeps its first -- hence shortest -- counterexample and the
//!   search goes on for the others. The search stops early only when every
//!   property is a safety property and every one of them is violated (or a
//!   state/memory limit is hit);
//! * liveness properties are checked on the complete reachable graph, each
//!   independently;
//! * when the search stops early (limit), violated properties stay
//!   `Violated` (a counterexample is definitive) and all others are
//!   `Unknown`.

use crate::engine::{self, Config};
use crate::fingerprint::collision_probability;
use crate::liveness::{self, Shape};
use crate::machine::Machine;
use crate::property::{Predicate, Property, PropertyKind};
use crate::result::*;
use crate::store::peak_rss;
use crate::trace::{replay, replay_from, violation_path};
use std::time::Instant;

/// Builder and entry point: `Checker::new(&machine).property(..).run()`.
pub struct Checker<'a, M: Machine> {
    pub(crate) machine: &'a M,
    pub(crate) properties: Vec<Property<M>>,
    pub(crate) state_limit: Option<u64>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) threads: usize,
    pub(crate) progress: Option<crate::result::ProgressFn<'a>>,
    pub(crate) progress_interval: std::time::Duration,
    pub(crate) stop_at_first_violation: bool,
}

impl<'a, M: Machine> Checker<'a, M> {
    /// A checker for `machine` with no properties, no limits and one thread
    /// per available core.
    pub fn new(machine: &'a M) -> Self {
        Checker {
            machine,
            properties: Vec::new(),
            state_limit: None,
            memory_limit: None,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            progress: None,
            progress_interval: std::time::Duration::from_millis(500),
            stop_at_first_violation: false,
        }
    }
    /// Add a property.
    pub fn property(mut self, p: Property<M>) -> Self {
        self.properties.push(p);
        self
    }
    /// Add several properties.
    pub fn properties(mut self, ps: impl IntoIterator<Item = Property<M>>) -> Self {
        self.properties.extend(ps);
        self
    }
    /// Stop (with an incomplete result) once this many distinct states exist.
    pub fn state_limit(mut self, n: u64) -> Self {
        self.state_limit = Some(n);
        self
    }
    /// Stop (with an incomplete result) once the process's resident memory
    /// (or, where it cannot be read, the checker's estimate) exceeds `bytes`.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }
    /// Number of worker threads (default: available cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// Progress callback, called from the calling thread about every
    /// `interval` (default 500 ms) and once at the end of exploration.
    pub fn progress(mut self, f: impl FnMut(&Progress) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
    /// Interval between progress callbacks.
    pub fn progress_interval(mut self, d: std::time::Duration) -> Self {
        self.progress_interval = d;
        self
    }

    /// Stop the whole search at the first violation of a safety property (its shortest
    /// counterexample is kept; every property not yet decided is then `Unknown`). Off by
    /// default: each property gets its own verdict. Useful to confirm a known bug quickly.
    pub fn stop_at_first_violation(mut self, on: bool) -> Self {
        self.stop_at_first_violation = on;
        self
    }

    /// Run the check.
    pub fn run(self) -> CheckResult<M> {
        run(self)
    }
}

fn run<M: Machine>(c: Checker<'_, M>) -> CheckResult<M> {
    let start = Instant::now();
    let m = c.machine;
    let mut invariants = Vec::new();
    let mut step_invariants = Vec::new();
    let mut live_preds: Vec<Predicate<M::State>> = Vec::new();
    let mut shapes: Vec<Option<Shape>> = Vec::new();
    for (i, p) in c.properties.iter().enumerate() {
        let mut add = |f: &Predicate<M::State>| {
            live_preds.push(f.clone());
            live_preds.len() - 1
        };
        let shape = match &p.kind {
            PropertyKind::Always(f) => {
                invariants.push((i, f.clone()));
                None
            }
            PropertyKind::AlwaysStep(a) => {
                step_invariants.push((i, a.clone()));
                None
            }
            PropertyKind::Eventually(f) => Some(Shape::Eventually(add(f))),
            PropertyKind::AlwaysEventually(f) => Some(Shape::AlwaysEventually(add(f))),
            PropertyKind::EventuallyAlways(f) => Some(Shape::EventuallyAlways(add(f))),
            PropertyKind::LeadsTo(f, g) => Some(Shape::LeadsTo(add(f), add(g))),
            PropertyKind::LeadsToAlways(f, g) => Some(Shape::LeadsToAlways(add(f), add(g))),
            PropertyKind::StableLeadsToAlways(f, g) => {
                Some(Shape::StableLeadsToAlways(add(f), add(g)))
            }
        };
        shapes.push(shape);
    }
    assert!(
        live_preds.len() <= 64,
        "at most 64 liveness predicates per run"
    );
    let liveness = shapes.iter().any(|s| s.is_some());
    let mut ex = engine::explore(Config {
        machine: m,
        properties: c.properties.len(),
        invariants,
        step_invariants,
        stop_when_all_violated: !liveness,
        stop_at_first_violation: c.stop_at_first_violation,
        live_preds,
        liveness,
        threads: c.threads,
        state_limit: c.state_limit,
        memory_limit: c.memory_limit,
        progress: c.progress,
        progress_interval: c.progress_interval,
    });
    let mut statuses: Vec<PropertyStatus<M>> = Vec::with_capacity(c.properties.len());
    for (i, p) in c.properties.iter().enumerate() {
        let status = if let Some(v) = ex.violations[i] {
            PropertyStatus::Violated(Counterexample::Path {
                property: p.name.clone(),
                steps: violation_path(m, &ex, v),
            })
        } else if !ex.complete {
            PropertyStatus::Unknown
        } else if let Some(shape) = shapes[i] {
            if let Some(cb) = ex.progress.as_mut() {
                let secs = start.elapsed().as_secs_f64();
                cb(&Progress {
                    states: ex.states,
                    transitions: ex.transitions,
                    queue: 0,
                    depth: ex.max_depth,
                    states_per_second: ex.states as f64 / secs.max(1e-9),
                    seconds: secs,
                    phase: "liveness",
                });
            }
            let g = ex.graph.as_ref().unwrap();
            match liveness::check(g, shape) {
                None => PropertyStatus::Holds,
                Some(l) => {
                    let prefix = replay(m, &ex, g, &l.prefix);
                    let loop_state = prefix.last().unwrap().state.clone();
                    let cycle = replay_from(m, &ex, loop_state, &l.cycle);
                    PropertyStatus::Violated(Counterexample::Lasso {
                        property: p.name.clone(),
                        prefix,
                        cycle,
                    })
                }
            }
        } else {
            PropertyStatus::Holds
        };
        statuses.push(status);
    }
    // the overall verdict: the first violated property in the order given;
    // otherwise holds iff complete
    let verdict = match statuses.iter().find_map(|s| match s {
        PropertyStatus::Violated(cx) => Some(cx.clone()),
        _ => None,
    }) {
        Some(cx) => Verdict::Violated(cx),
        None if ex.complete => Verdict::Holds,
        None => Verdict::Incomplete {
            reason: format!(
                "{}; explored {} distinct states, {} generated, to depth {} -- nothing is claimed",
                ex.stopped.as_deref().unwrap_or("exploration stopped early"),
                ex.states,
                ex.transitions,
                ex.max_depth
            ),
        },
    };
    CheckResult {
        verdict,
        complete: ex.complete,
        properties: c
            .properties
            .iter()
            .map(|p| p.name.clone())
            .zip(statuses)
            .collect(),
        states: ex.states,
        transitions: ex.transitions,
        max_depth: ex.max_depth,
        seconds: start.elapsed().as_secs_f64(),
        peak_memory_bytes: peak_rss().unwrap_or(ex.estimated_bytes),
        collision_probability: collision_probability(ex.states),
        stopped: ex.stopped.clone(),
    }
}
