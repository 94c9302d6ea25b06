//! Parallel level-synchronous BFS over fingerprints.
//!
//! * **Seen set.** See [`crate::store::Table`]: fingerprint -> parent
//!   fingerprint (safety-only runs) or dense state id (liveness runs).
//! * **Levels.** Each BFS level's frontier is split into chunks that the
//!   worker threads claim from an atomic counter; a claimed chunk leaves the
//!   frontier and each of its states is dropped once expanded, so memory holds
//!   the unexpanded rest of one level and the part of the next found so far
//!   (not two whole levels). New states go to per-worker next-frontier
//!   vectors. The worker threads are spawned once per search and expand every
//!   level ([`crate::workers`]), so what the machine keeps per thread (its memo
//!   caches) survives from one level to the next. All states of depth `d` are
//!   expanded before any of depth `d+1`, so parent links give shortest paths.
//! * **Liveness graph.** Only when a liveness property is present, every
//!   expanded state also records its successor edges (target id, interned
//!   fairness key, action index; 12 bytes each; stuttering self-loops and
//!   duplicate (target, key) pairs are dropped), a parent id (4 bytes), and one
//!   bit per liveness predicate (8 bytes). States themselves are *not* kept;
//!   counterexample states are re-derived by replaying actions from an
//!   initial state.
//! * **Safety.** Invariants are evaluated on every expanded state, step
//!   properties on every generated non-stuttering transition. The first
//!   violation of a property is recorded (it is at the smallest depth, hence
//!   has a shortest counterexample) and the property is not evaluated again;
//!   the search goes on for the other properties and only stops early when
//!   [`Config::stop_when_all_violated`] is set and every safety property is
//!   violated.
//! * **Completeness.** [`Explored::complete`] is true iff every chunk of
//!   every level was expanded and the last frontier is empty, i.e. the whole
//!   reachable space was explored (whatever stop was requested meanwhile).

pub(crate) use crate::expand::Violation;
use crate::expand::{CHUNK, ChunkOut, Item, Shared, chunked};
use crate::fingerprint::fingerprint;
use crate::machine::Machine;
use crate::property::{Predicate, StepPredicate};
use crate::store::{Graph, NONE, Table, current_rss};
use crate::workers::{KeyCache, Workers};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Config<'a, M: Machine> {
    pub machine: &'a M,
    /// Number of properties (violations are indexed by property index).
    pub properties: usize,
    /// `[]P` properties: (property index, `P`).
    pub invariants: Vec<(usize, Predicate<M::State>)>,
    /// `[][A]_s` properties: (property index, `A`).
    pub step_invariants: Vec<(usize, StepPredicate<M::State>)>,
    /// Stop as soon as every safety property is violated (set when there
    /// are no liveness properties).
    pub stop_when_all_violated: bool,
    /// Stop at the first safety violation.
    pub stop_at_first_violation: bool,
    pub live_preds: Vec<Predicate<M::State>>,
    pub liveness: bool,
    pub threads: usize,
    pub state_limit: Option<u64>,
    pub memory_limit: Option<u64>,
    pub progress: Option<crate::result::ProgressFn<'a>>,
    pub progress_interval: Duration,
}

pub(crate) struct Explored<'a> {
    /// The progress callback, handed back for the liveness phase.
    pub progress: Option<crate::result::ProgressFn<'a>>,
    pub table: Table,
    pub graph: Option<Graph>,
    pub states: u64,
    pub transitions: u64,
    pub max_depth: u64,
    /// Per property index: its first violation, if any.
    pub violations: Vec<Option<Violation>>,
    /// True iff the whole reachable state space was explored.
    pub complete: bool,
    /// Why the search stopped early (set iff `!complete`).
    pub stopped: Option<String>,
    pub estimated_bytes: u64,
}

pub(crate) fn explore<'a, M: Machine>(mut cfg: Config<'a, M>) -> Explored<'a> {
    let start = Instant::now();
    let mut progress = cfg.progress.take();
    let interval = cfg.progress_interval;
    let memory_limit = cfg.memory_limit;
    let m = cfg.machine;
    let sh = Shared {
        m,
        table: Table::new(),
        liveness: cfg.liveness,
        invariants: &cfg.invariants,
        step_invariants: &cfg.step_invariants,
        decided: (0..cfg.properties)
            .map(|_| AtomicBool::new(false))
            .collect(),
        undecided: AtomicUsize::new(cfg.invariants.len() + cfg.step_invariants.len()),
        stop_when_all_violated: cfg.stop_when_all_violated
            && !(cfg.invariants.is_empty() && cfg.step_invariants.is_empty()),
        stop_at_first_violation: cfg.stop_at_first_violation,
        live_preds: &cfg.live_preds,
        stop: AtomicBool::new(false),
        states: AtomicU64::new(0),
        transitions: AtomicU64::new(0),
        next_chunk: AtomicUsize::new(0),
        keys: Mutex::new((HashMap::new(), Vec::new(), Vec::new())),
        violations: Mutex::new(vec![None; cfg.properties]),
        stopped: Mutex::new(None),
        state_limit: cfg.state_limit.unwrap_or(u64::MAX),
    };
    let mut graph = if cfg.liveness {
        Some(Graph::default())
    } else {
        None
    };
    let mut frontier: Vec<Item<M::State>> = Vec::new();
    for s in m.init_states() {
        let s = m.representative(s);
        sh.transitions.fetch_add(1, Ordering::Relaxed);
        let fp = fingerprint(&s);
        let (new, id) = sh.insert(fp, 0);
        if new {
            if let Some(g) = graph.as_mut() {
                g.roots.push(id as u32);
            }
            frontier.push(Item {
                state: m.compact(s),
                fp,
                id: id as u32,
                parent: NONE,
            });
        }
    }
    if let Some(g) = graph.as_mut() {
        g.parent.extend(frontier.iter().map(|_| NONE));
        g.offsets.push(0);
    }
    let mut level_len = frontier.len();
    let mut frontier = Arc::new(chunked(frontier));
    let mut depth = 0u64;
    let mut last_progress = Instant::now();
    let mut est_peak = 0u64;
    let mut inline_cache: KeyCache<M::FairnessKey> = HashMap::new();
    let report = |progress: &mut Option<crate::result::ProgressFn<'_>>,
                  queue: u64,
                  depth: u64,
                  force: bool,
                  last: &mut Instant| {
        if let Some(p) = progress.as_mut()
            && (force || last.elapsed() >= interval)
        {
            *last = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            let states = sh.states.load(Ordering::Relaxed);
            p(&crate::Progress {
                states,
                transitions: sh.transitions.load(Ordering::Relaxed),
                queue,
                depth,
                states_per_second: states as f64 / secs.max(1e-9),
                seconds: secs,
                phase: "explore",
            });
        }
    };
    let check_memory = |graph: &Option<Graph>, frontier_len: usize| -> u64 {
        let est = sh.table.bytes()
            + graph.as_ref().map_or(0, |g| g.bytes())
            + (frontier_len as u64) * (std::mem::size_of::<Item<M::State>>() as u64 + 64);
        if let Some(limit) = memory_limit {
            let used = current_rss().unwrap_or(est);
            if used >= limit {
                sh.request_stop(format!(
                    "memory limit {limit} bytes reached ({used} bytes in use)"
                ));
            }
        }
        est
    };
    // every chunk of every level so far was expanded
    let mut all_expanded = true;
    std::thread::scope(|scope| {
        let workers = (cfg.threads > 1).then(|| {
            Workers::spawn(
                scope,
                &sh,
                (0..cfg.threads).map(|_| HashMap::new()).collect(),
            )
        });
        while !frontier.is_empty() && !sh.stop.load(Ordering::SeqCst) {
            depth += 1;
            sh.next_chunk.store(0, Ordering::SeqCst);
            let nchunks = frontier.len();
            let mut outs: Vec<ChunkOut<M::State>> = match &workers {
                None => sh.work(&frontier, &mut inline_cache),
                Some(w) => w.level(&sh, &frontier, || {
                    let q = (level_len
                        - (sh.next_chunk.load(Ordering::Relaxed) * CHUNK).min(level_len))
                        as u64;
                    est_peak = est_peak.max(check_memory(&graph, level_len));
                    report(&mut progress, q, depth, false, &mut last_progress);
                }),
            };
            all_expanded &= outs.len() == nchunks;
            outs.sort_unstable_by_key(|o| o.idx);
            let mut next: Vec<Item<M::State>> =
                Vec::with_capacity(outs.iter().map(|o| o.next.len()).sum());
            if let Some(g) = graph.as_mut() {
                for o in &mut outs {
                    let mut off = *g.offsets.last().unwrap();
                    for d in &o.deg {
                        off += *d as u64;
                        g.offsets.push(off);
                    }
                    g.edges.extend_from_slice(&o.edges);
                    g.preds.extend_from_slice(&o.preds);
                    next.append(&mut o.next);
                }
                next.sort_unstable_by_key(|i| i.id);
                g.parent.extend(next.iter().map(|i| i.parent));
            } else {
                for o in &mut outs {
                    next.append(&mut o.next);
                }
            }
            drop(outs);
            est_peak = est_peak.max(check_memory(&graph, next.len()));
            level_len = next.len();
            frontier = Arc::new(chunked(next));
            report(
                &mut progress,
                level_len as u64,
                depth,
                false,
                &mut last_progress,
            );
        }
    });
    report(
        &mut progress,
        level_len as u64,
        depth,
        true,
        &mut last_progress,
    );
    let violations = std::mem::take(&mut *sh.violations.lock().unwrap());
    let complete = all_expanded && frontier.is_empty();
    let stopped = if complete {
        None
    } else {
        Some(
            sh.stopped
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| "exploration stopped early".into()),
        )
    };
    if let Some(g) = graph.as_mut() {
        let k = sh.keys.lock().unwrap();
        g.key_strong = k.1.clone();
        g.key_names = k.2.clone();
    }
    let states = sh.states.load(Ordering::SeqCst);
    let transitions = sh.transitions.load(Ordering::SeqCst);
    Explored {
        progress,
        table: sh.table,
        graph,
        states,
        transitions,
        max_depth: depth,
        violations,
        complete,
        stopped,
        estimated_bytes: est_peak,
    }
}
