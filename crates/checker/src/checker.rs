//! The checker builder and the breadth-first exploration engine.

use crate::fingerprint::{collision_probability, fingerprint};
use crate::machine::Machine;
use crate::property::{Property, PropertyKind};
use crate::result::*;
use std::collections::HashMap;
use std::time::Instant;

/// Builder and entry point: `Checker::new(&machine).property(..).run()`.
pub struct Checker<'a, M: Machine> {
    pub(crate) machine: &'a M,
    pub(crate) properties: Vec<Property<M>>,
    pub(crate) state_limit: Option<u64>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) threads: usize,
    pub(crate) progress: Option<Box<dyn FnMut(&Progress) + Send + 'a>>,
    pub(crate) progress_interval: std::time::Duration,
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
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            progress: None,
            progress_interval: std::time::Duration::from_millis(500),
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

    /// Run the check.
    pub fn run(self) -> CheckResult<M> {
        run_sequential(self)
    }
}

/// Initial single-threaded engine (safety only); replaced by the parallel one.
fn run_sequential<M: Machine>(c: Checker<'_, M>) -> CheckResult<M> {
    let start = Instant::now();
    let m = c.machine;
    let mut seen: HashMap<u64, Option<(u64, M::Action)>> = HashMap::new();
    let mut frontier: Vec<M::State> = Vec::new();
    let mut transitions = 0u64;
    let mut depth = 0u64;
    let mut statuses: Vec<PropertyStatus<M>> = c.properties.iter().map(|_| PropertyStatus::Unknown).collect();
    let mut violation: Option<Counterexample<M>> = None;
    let mut incomplete: Option<String> = None;
    let check = |s: &M::State| -> Option<usize> {
        c.properties.iter().position(|p| matches!(&p.kind, PropertyKind::Always(f) if !f(s)))
    };
    let mut parents: HashMap<u64, M::State> = HashMap::new();
    for s in m.init_states() {
        let s = m.representative(s);
        transitions += 1;
        let fp = fingerprint(&s);
        if seen.insert(fp, None).is_none() {
            parents.insert(fp, s.clone());
            frontier.push(s);
        }
    }
    let mut actions = Vec::new();
    'outer: while !frontier.is_empty() {
        depth += 1;
        let mut next = Vec::new();
        for s in frontier.drain(..) {
            if let Some(i) = check(&s) {
                // rebuild path through stored states (sequential engine keeps them)
                let mut steps = vec![];
                let mut fp = fingerprint(&s);
                loop {
                    let st = parents[&fp].clone();
                    match seen[&fp].clone() {
                        None => {
                            steps.push(Step { action: None, state: st });
                            break;
                        }
                        Some((p, a)) => {
                            steps.push(Step { action: Some(a), state: st });
                            fp = p;
                        }
                    }
                }
                steps.reverse();
                violation = Some(Counterexample::Path { property: c.properties[i].name.clone(), steps });
                statuses[i] = PropertyStatus::Violated(violation.as_ref().unwrap().clone());
                break 'outer;
            }
            actions.clear();
            m.actions(&s, &mut actions);
            let pfp = fingerprint(&s);
            for a in &actions {
                if let Some(n) = m.next_state(&s, a) {
                    transitions += 1;
                    let n = m.representative(n);
                    let fp = fingerprint(&n);
                    if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(fp) {
                        e.insert(Some((pfp, a.clone())));
                        parents.insert(fp, n.clone());
                        next.push(n);
                    }
                }
            }
            if let Some(l) = c.state_limit {
                if seen.len() as u64 >= l {
                    incomplete = Some(format!("state limit {l} reached at depth {depth}"));
                    break 'outer;
                }
            }
        }
        frontier = next;
    }
    let complete = violation.is_none() && incomplete.is_none();
    let has_liveness = c.properties.iter().any(|p| !p.is_safety());
    if complete {
        for (st, p) in statuses.iter_mut().zip(&c.properties) {
            if p.is_safety() {
                *st = PropertyStatus::Holds;
            }
        }
    }
    let verdict = match (violation, incomplete) {
        (Some(v), _) => Verdict::Violated(v),
        (None, Some(r)) => Verdict::Incomplete { reason: r },
        (None, None) if has_liveness => Verdict::Incomplete { reason: "liveness not implemented yet".into() },
        _ => Verdict::Holds,
    };
    let states = seen.len() as u64;
    CheckResult {
        verdict,
        complete,
        properties: c.properties.iter().map(|p| p.name.clone()).zip(statuses).collect(),
        states,
        transitions,
        max_depth: depth,
        seconds: start.elapsed().as_secs_f64(),
        peak_memory_bytes: 0,
        collision_probability: collision_probability(states),
    }
}
