//! Parallel level-synchronous BFS over fingerprints.
//!
//! * **Seen set.** A sharded hash table (`SHARDS` mutex-protected
//!   `HashMap<u64, u64>` with an identity hasher) from 64-bit fingerprint to a
//!   value: in safety-only runs the value is the parent's fingerprint (`0` for
//!   initial states), like Stateright and TLC -- 16 bytes per slot and no
//!   states are kept except the BFS frontier; in liveness runs the value is a
//!   dense state id.
//! * **Levels.** Each BFS level's frontier is split into chunks that the
//!   worker threads claim from an atomic counter; new states go to per-worker
//!   next-frontier vectors. All states of depth `d` are expanded before any of
//!   depth `d+1`, so parent links give shortest paths.
//! * **Liveness graph.** Only when a liveness property is present, every
//!   expanded state also records its successor edges (target id, interned
//!   fairness key, action index; 12 bytes each; stuttering self-loops and
//!   duplicate (target, key) pairs are dropped), a parent id (4 bytes), and one
//!   bit per liveness predicate (8 bytes). States themselves are *not* kept;
//!   counterexample states are re-derived by replaying actions from an
//!   initial state.

use crate::fingerprint::fingerprint;
use crate::machine::{Fairness, Machine};
use crate::property::Predicate;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

const SHARDS: usize = 128;
const CHUNK: usize = 512;
/// Unfair edge key.
pub(crate) const UNFAIR: u32 = u32::MAX;
/// "No parent" marker.
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);
impl Hasher for IdHasher {
    fn write(&mut self, _: &[u8]) {
        unreachable!()
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
type Shard = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

/// Sharded fingerprint table.
pub(crate) struct Table {
    shards: Vec<Mutex<Shard>>,
}

impl Table {
    fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
    #[inline]
    fn shard(fp: u64) -> usize {
        // bits independent of those hashbrown uses (low bits: bucket, top 7: tag)
        ((fp >> 32) as usize) % SHARDS
    }
    /// Insert `fp` if absent, with value `val()`. Returns (inserted, value).
    #[inline]
    fn insert_with(&self, fp: u64, val: impl FnOnce() -> u64) -> (bool, u64) {
        let mut s = self.shards[Self::shard(fp)].lock().unwrap();
        match s.entry(fp) {
            std::collections::hash_map::Entry::Occupied(e) => (false, *e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let v = val();
                e.insert(v);
                (true, v)
            }
        }
    }
    pub(crate) fn get(&self, fp: u64) -> Option<u64> {
        self.shards[Self::shard(fp)]
            .lock()
            .unwrap()
            .get(&fp)
            .copied()
    }
    /// Bytes allocated by the table (hashbrown: 16-byte slot + 1 control byte).
    fn bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().capacity() as u64 * 17)
            .sum()
    }
}

/// One successor edge of the liveness graph.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    pub to: u32,
    pub key: u32,
    pub action: u32,
}

/// The reachable graph kept for liveness checking.
#[derive(Default)]
pub(crate) struct Graph {
    /// `offsets[i]..offsets[i+1]` are the edges of state `i`.
    pub offsets: Vec<u64>,
    pub edges: Vec<Edge>,
    pub parent: Vec<u32>,
    /// Bit `j` = liveness predicate `j` holds.
    pub preds: Vec<u64>,
    /// Ids of initial states.
    pub roots: Vec<u32>,
    /// Per interned key: is it strong?
    pub key_strong: Vec<bool>,
    /// Per interned key: human-readable key (for messages).
    pub key_names: Vec<String>,
}

impl Graph {
    pub fn n(&self) -> usize {
        self.parent.len()
    }
    #[inline]
    pub fn out(&self, v: u32) -> &[Edge] {
        &self.edges[self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize]
    }
    fn bytes(&self) -> u64 {
        (self.offsets.capacity() * 8
            + self.edges.capacity() * 12
            + self.parent.capacity() * 4
            + self.preds.capacity() * 8) as u64
    }
}

struct Item<S> {
    state: S,
    fp: u64,
    id: u32,
    parent: u32,
}

pub(crate) struct Config<'a, M: Machine> {
    pub machine: &'a M,
    pub invariants: Vec<(usize, Predicate<M::State>)>,
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
    /// (property index, fingerprint of the violating state)
    pub violation: Option<(usize, u64)>,
    pub stopped: Option<String>,
    pub estimated_bytes: u64,
}

struct Shared<'a, M: Machine> {
    m: &'a M,
    table: Table,
    liveness: bool,
    invariants: &'a [(usize, Predicate<M::State>)],
    live_preds: &'a [Predicate<M::State>],
    stop: AtomicBool,
    states: AtomicU64,
    transitions: AtomicU64,
    next_chunk: AtomicUsize,
    #[allow(clippy::type_complexity)]
    keys: Mutex<(
        HashMap<Fairness<M::FairnessKey>, u32>,
        Vec<bool>,
        Vec<String>,
    )>,
    violation: Mutex<Option<(usize, u64)>>,
    stopped: Mutex<Option<String>>,
    state_limit: u64,
}

struct ChunkOut<S> {
    idx: usize,
    deg: Vec<u32>,
    edges: Vec<Edge>,
    preds: Vec<u64>,
    next: Vec<Item<S>>,
}

impl<'a, M: Machine> Shared<'a, M> {
    fn intern(
        &self,
        cache: &mut HashMap<Fairness<M::FairnessKey>, u32>,
        f: Fairness<M::FairnessKey>,
    ) -> u32 {
        if !f.is_fair() {
            return UNFAIR;
        }
        if let Some(&k) = cache.get(&f) {
            return k;
        }
        let mut g = self.keys.lock().unwrap();
        let n = g.0.len() as u32;
        let k = *g.0.entry(f.clone()).or_insert(n);
        if k == n {
            g.1.push(matches!(f, Fairness::Strong(_)));
            g.2.push(format!("{f:?}"));
        }
        drop(g);
        cache.insert(f, k);
        k
    }

    fn request_stop(&self, reason: String) {
        let mut s = self.stopped.lock().unwrap();
        if s.is_none() {
            *s = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Insert a canonical state; returns (new?, id-or-value).
    #[inline]
    fn insert(&self, fp: u64, parent_fp: u64) -> (bool, u64) {
        let liveness = self.liveness;
        let (new, v) = self.table.insert_with(fp, || {
            if liveness {
                self.states.fetch_add(1, Ordering::Relaxed)
            } else {
                self.states.fetch_add(1, Ordering::Relaxed);
                parent_fp
            }
        });
        if new && self.states.load(Ordering::Relaxed) >= self.state_limit {
            self.request_stop(format!("state limit {} reached", self.state_limit));
        }
        (new, v)
    }

    fn work(
        &self,
        frontier: &[Item<M::State>],
        cache: &mut HashMap<Fairness<M::FairnessKey>, u32>,
    ) -> Vec<ChunkOut<M::State>> {
        let mut outs = Vec::new();
        let mut actions = Vec::new();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let idx = self.next_chunk.fetch_add(1, Ordering::Relaxed);
            let lo = idx * CHUNK;
            if lo >= frontier.len() {
                break;
            }
            let hi = (lo + CHUNK).min(frontier.len());
            let mut out = ChunkOut {
                idx,
                deg: Vec::new(),
                edges: Vec::new(),
                preds: Vec::new(),
                next: Vec::new(),
            };
            let mut generated = 0u64;
            for item in &frontier[lo..hi] {
                let s = &item.state;
                for (pi, p) in self.invariants {
                    if !p(s) {
                        let mut v = self.violation.lock().unwrap();
                        if v.is_none() {
                            *v = Some((*pi, item.fp));
                        }
                        drop(v);
                        self.stop.store(true, Ordering::SeqCst);
                    }
                }
                if self.liveness {
                    let mut bits = 0u64;
                    for (j, p) in self.live_preds.iter().enumerate() {
                        if p(s) {
                            bits |= 1 << j;
                        }
                    }
                    out.preds.push(bits);
                }
                actions.clear();
                self.m.actions(s, &mut actions);
                let e0 = out.edges.len();
                for (ai, a) in actions.iter().enumerate() {
                    let Some(n) = self.m.next_state(s, a) else {
                        continue;
                    };
                    generated += 1;
                    let n = self.m.representative(n);
                    let fp = fingerprint(&n);
                    if self.liveness {
                        if fp == item.fp && n == *s {
                            continue; // stuttering self-loop
                        }
                        let key = self.intern(cache, self.m.fairness(s, a));
                        let (new, id) = self.insert(fp, 0);
                        let id = id as u32;
                        if new {
                            out.next.push(Item {
                                state: n,
                                fp,
                                id,
                                parent: item.id,
                            });
                        }
                        if !out.edges[e0..].iter().any(|e| e.to == id && e.key == key) {
                            out.edges.push(Edge {
                                to: id,
                                key,
                                action: ai as u32,
                            });
                        }
                    } else {
                        let (new, _) = self.insert(fp, item.fp);
                        if new {
                            out.next.push(Item {
                                state: n,
                                fp,
                                id: 0,
                                parent: 0,
                            });
                        }
                    }
                }
                if self.liveness {
                    out.deg.push((out.edges.len() - e0) as u32);
                }
            }
            self.transitions.fetch_add(generated, Ordering::Relaxed);
            outs.push(out);
        }
        outs
    }
}

/// Current resident set size in bytes (Linux), if readable.
pub(crate) fn current_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Peak resident set size in bytes (Linux `VmHWM`), if readable.
pub(crate) fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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
        live_preds: &cfg.live_preds,
        stop: AtomicBool::new(false),
        states: AtomicU64::new(0),
        transitions: AtomicU64::new(0),
        next_chunk: AtomicUsize::new(0),
        keys: Mutex::new((HashMap::new(), Vec::new(), Vec::new())),
        violation: Mutex::new(None),
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
                state: s,
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
    let mut depth = 0u64;
    let mut last_progress = Instant::now();
    let mut est_peak = 0u64;
    let mut caches: Vec<HashMap<Fairness<M::FairnessKey>, u32>> =
        (0..cfg.threads).map(|_| HashMap::new()).collect();
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
    while !frontier.is_empty() && !sh.stop.load(Ordering::SeqCst) {
        depth += 1;
        sh.next_chunk.store(0, Ordering::SeqCst);
        let nchunks = frontier.len().div_ceil(CHUNK);
        let mut outs: Vec<ChunkOut<M::State>> = if nchunks <= 1 || cfg.threads == 1 {
            sh.work(&frontier, &mut caches[0])
        } else {
            std::thread::scope(|scope| {
                let (tx, rx) = mpsc::channel();
                let fr = &frontier;
                let shr = &sh;
                let mut handles = Vec::new();
                for cache in caches.iter_mut() {
                    let tx = tx.clone();
                    handles.push(scope.spawn(move || {
                        let r = shr.work(fr, cache);
                        let _ = tx.send(());
                        r
                    }));
                }
                drop(tx);
                let mut done = 0;
                while done < handles.len() {
                    match rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(()) => done += 1,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let q = (frontier.len()
                                - (sh.next_chunk.load(Ordering::Relaxed) * CHUNK)
                                    .min(frontier.len()))
                                as u64;
                            est_peak = est_peak.max(check_memory(&graph, frontier.len()));
                            report(&mut progress, q, depth, false, &mut last_progress);
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            })
        };
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
        est_peak = est_peak.max(check_memory(&graph, frontier.len() + next.len()));
        frontier = next;
        report(
            &mut progress,
            frontier.len() as u64,
            depth,
            false,
            &mut last_progress,
        );
    }
    report(
        &mut progress,
        frontier.len() as u64,
        depth,
        true,
        &mut last_progress,
    );
    let violation = *sh.violation.lock().unwrap();
    let mut stopped = sh.stopped.lock().unwrap().take();
    if violation.is_none() && stopped.is_none() && !frontier.is_empty() {
        stopped = Some("exploration stopped early".into());
    }
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
        violation,
        stopped,
        estimated_bytes: est_peak,
    }
}
