//! The checker builder and the breadth-first exploration engine.

use crate::engine::{self, Config, Explored, Graph, NONE};
use crate::fingerprint::{collision_probability, fingerprint};
use crate::liveness::{self, Shape};
use crate::machine::Machine;
use crate::property::{Predicate, Property, PropertyKind};
use crate::result::*;
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
        run(self)
    }
}

fn run<M: Machine>(c: Checker<'_, M>) -> CheckResult<M> {
    let start = Instant::now();
    let m = c.machine;
    let mut invariants = Vec::new();
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
        invariants,
        live_preds,
        liveness,
        threads: c.threads,
        state_limit: c.state_limit,
        memory_limit: c.memory_limit,
        progress: c.progress,
        progress_interval: c.progress_interval,
    });
    let mut statuses: Vec<PropertyStatus<M>> = c
        .properties
        .iter()
        .map(|_| PropertyStatus::Unknown)
        .collect();
    let mut verdict = None;
    if let Some((pi, fp)) = ex.violation {
        let steps = safety_path(m, &ex, fp);
        let cx = Counterexample::Path {
            property: c.properties[pi].name.clone(),
            steps,
        };
        statuses[pi] = PropertyStatus::Violated(cx.clone());
        verdict = Some(Verdict::Violated(cx));
    } else if let Some(reason) = &ex.stopped {
        verdict = Some(Verdict::Incomplete {
            reason: format!(
                "{reason}; explored {} distinct states, {} generated, to depth {} -- nothing is claimed",
                ex.states, ex.transitions, ex.max_depth
            ),
        });
    } else {
        for (i, p) in c.properties.iter().enumerate() {
            match shapes[i] {
                None => statuses[i] = PropertyStatus::Holds,
                Some(shape) => {
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
                        None => statuses[i] = PropertyStatus::Holds,
                        Some(l) => {
                            let prefix = replay(m, &ex, g, &l.prefix);
                            let loop_state = prefix.last().unwrap().state.clone();
                            let cycle = replay_from(m, &ex, loop_state, &l.cycle);
                            let cx = Counterexample::Lasso {
                                property: p.name.clone(),
                                prefix,
                                cycle,
                            };
                            statuses[i] = PropertyStatus::Violated(cx.clone());
                            if verdict.is_none() {
                                verdict = Some(Verdict::Violated(cx));
                            }
                        }
                    }
                }
            }
        }
    }
    let complete = ex.stopped.is_none() && ex.violation.is_none();
    let verdict = verdict.unwrap_or(Verdict::Holds);
    CheckResult {
        verdict,
        complete,
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
        peak_memory_bytes: engine::peak_rss().unwrap_or(ex.estimated_bytes),
        collision_probability: collision_probability(ex.states),
    }
}

fn canonical_inits<M: Machine>(m: &M) -> Vec<M::State> {
    m.init_states()
        .into_iter()
        .map(|s| m.representative(s))
        .collect()
}

/// Rebuild the shortest path to the state with fingerprint `fp`.
fn safety_path<M: Machine>(m: &M, ex: &Explored<'_>, fp: u64) -> Vec<Step<M>> {
    if let Some(g) = &ex.graph {
        // liveness mode: table values are ids
        let id = ex.table.get(fp).unwrap() as u32;
        let mut rev = vec![id];
        let mut v = id;
        while g.parent[v as usize] != NONE {
            v = g.parent[v as usize];
            rev.push(v);
        }
        rev.reverse();
        let mut ids = vec![(rev[0], None)];
        for w in rev.windows(2) {
            let a = g.out(w[0]).iter().find(|e| e.to == w[1]).unwrap().action;
            ids.push((w[1], Some(a)));
        }
        return replay(m, ex, g, &ids);
    }
    // safety mode: table values are parent fingerprints
    let mut chain = vec![fp];
    let mut f = fp;
    loop {
        let p = ex.table.get(f).expect("fingerprint in table");
        if p == 0 {
            break;
        }
        chain.push(p);
        f = p;
    }
    chain.reverse();
    let init = canonical_inits(m)
        .into_iter()
        .find(|s| fingerprint(s) == chain[0])
        .expect("initial state");
    let mut steps = vec![Step {
        action: None,
        state: init,
    }];
    let mut actions = Vec::new();
    for &target in &chain[1..] {
        let cur = &steps.last().unwrap().state;
        actions.clear();
        m.actions(cur, &mut actions);
        let step = actions
            .iter()
            .find_map(|a| {
                let n = m.representative(m.next_state(cur, a)?);
                (fingerprint(&n) == target).then(|| Step {
                    action: Some(a.clone()),
                    state: n,
                })
            })
            .expect("replay: successor not found (nondeterministic machine?)");
        steps.push(step);
    }
    steps
}

/// Re-derive concrete states for a path of node ids starting at a root.
fn replay<M: Machine>(
    m: &M,
    ex: &Explored<'_>,
    _g: &Graph,
    ids: &[(u32, Option<u32>)],
) -> Vec<Step<M>> {
    let root = ids[0].0 as u64;
    let init = canonical_inits(m)
        .into_iter()
        .find(|s| ex.table.get(fingerprint(s)) == Some(root))
        .expect("initial state of trace");
    let mut steps = vec![Step {
        action: None,
        state: init.clone(),
    }];
    steps.extend(replay_from(m, ex, init, &ids[1..]));
    steps
}

fn replay_from<M: Machine>(
    m: &M,
    ex: &Explored<'_>,
    mut cur: M::State,
    ids: &[(u32, Option<u32>)],
) -> Vec<Step<M>> {
    let mut out = Vec::new();
    let mut actions = Vec::new();
    for &(id, a) in ids {
        match a {
            None => out.push(Step {
                action: None,
                state: cur.clone(),
            }),
            Some(ai) => {
                actions.clear();
                m.actions(&cur, &mut actions);
                let a = actions[ai as usize].clone();
                let n = m.representative(m.next_state(&cur, &a).expect("replay: action disabled"));
                debug_assert_eq!(
                    ex.table.get(fingerprint(&n)),
                    Some(id as u64),
                    "replay diverged"
                );
                let _ = id;
                cur = n.clone();
                out.push(Step {
                    action: Some(a),
                    state: n,
                });
            }
        }
    }
    out
}
