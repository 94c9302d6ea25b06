//! Expanding states: the work of one BFS level, shared by the worker threads.
//!
//! A worker claims chunks of the frontier from an atomic counter and, for
//! every state of the chunk: evaluates the invariants not yet violated,
//! computes the liveness predicate bits (liveness runs), then generates every
//! successor, canonicalises and fingerprints it, evaluates the step
//! properties not yet violated on every non-stuttering transition, inserts
//! the successor into the seen set and, in liveness runs, records the edge.
//! The first violation of each safety property is recorded once (see
//! [`Violation`]).

use crate::fingerprint::fingerprint;
use crate::machine::{Fairness, Machine};
use crate::property::{Predicate, StepPredicate};
use crate::store::{Edge, FINITE, Table, UNFAIR};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Frontier states claimed per chunk.
pub(crate) const CHUNK: usize = 512;

/// Splits a level's states into chunks of [`CHUNK`] for [`Shared::work`], moving them.
pub(crate) fn chunked<S>(items: Vec<Item<S>>) -> Vec<Mutex<Vec<Item<S>>>> {
    let mut chunks = Vec::with_capacity(items.len().div_ceil(CHUNK));
    let mut it = items.into_iter();
    loop {
        let chunk: Vec<Item<S>> = it.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(Mutex::new(chunk));
    }
    chunks
}

/// The first (hence shortest) violation of a safety property.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Violation {
    /// The state with this fingerprint violates an invariant.
    State(u64),
    /// The step from state `from` by the action at index `action` (in the
    /// order of [`Machine::actions`]) to state `to` violates a step property.
    Step { from: u64, action: u32, to: u64 },
}

pub(crate) struct Item<S> {
    pub state: S,
    pub fp: u64,
    pub id: u32,
    pub parent: u32,
}

pub(crate) struct Shared<'a, M: Machine> {
    pub m: &'a M,
    pub table: Table,
    pub liveness: bool,
    pub invariants: &'a [(usize, Predicate<M::State>)],
    pub step_invariants: &'a [(usize, StepPredicate<M::State>)],
    /// Per property index: already violated (no need to evaluate again).
    pub decided: Vec<AtomicBool>,
    /// Safety properties not yet violated.
    pub undecided: AtomicUsize,
    pub stop_when_all_violated: bool,
    pub stop_at_first_violation: bool,
    pub live_preds: &'a [Predicate<M::State>],
    pub stop: AtomicBool,
    pub states: AtomicU64,
    pub transitions: AtomicU64,
    pub next_chunk: AtomicUsize,
    #[allow(clippy::type_complexity)]
    pub keys: Mutex<(
        HashMap<Fairness<M::FairnessKey>, u32>,
        Vec<bool>,
        Vec<String>,
    )>,
    pub violations: Mutex<Vec<Option<Violation>>>,
    pub stopped: Mutex<Option<String>>,
    pub state_limit: u64,
}

pub(crate) struct ChunkOut<S> {
    pub idx: usize,
    pub deg: Vec<u32>,
    pub edges: Vec<Edge>,
    pub preds: Vec<u64>,
    pub next: Vec<Item<S>>,
}

impl<'a, M: Machine> Shared<'a, M> {
    pub(crate) fn intern(
        &self,
        cache: &mut HashMap<Fairness<M::FairnessKey>, u32>,
        f: Fairness<M::FairnessKey>,
    ) -> u32 {
        match f {
            Fairness::Unfair => return UNFAIR,
            Fairness::Finite => return FINITE,
            Fairness::Weak(_) | Fairness::Strong(_) => {}
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

    /// Record the first violation of property `pi` (later ones, at the same
    /// or a greater depth, are dropped).
    #[cold]
    pub(crate) fn record(&self, pi: usize, v: Violation) {
        let mut vs = self.violations.lock().unwrap();
        if vs[pi].is_some() {
            return;
        }
        vs[pi] = Some(v);
        self.decided[pi].store(true, Ordering::SeqCst);
        drop(vs);
        if self.undecided.fetch_sub(1, Ordering::SeqCst) == 1 && self.stop_when_all_violated {
            self.request_stop("every property is violated".into());
        } else if self.stop_at_first_violation {
            self.request_stop("stopped at the first violation (as requested)".into());
        }
    }

    pub(crate) fn request_stop(&self, reason: String) {
        let mut s = self.stopped.lock().unwrap();
        if s.is_none() {
            *s = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Insert a canonical state; returns (new?, id-or-value).
    #[inline]
    pub(crate) fn insert(&self, fp: u64, parent_fp: u64) -> (bool, u64) {
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

    /// The transition from `item` by `actions[ai]` to `n` (fingerprint `fp`): the step
    /// properties, the insert, the next frontier and, in liveness runs, the edge.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn visit(
        &self,
        item: &Item<M::State>,
        actions: &[M::Action],
        ai: usize,
        n: M::State,
        fp: u64,
        e0: usize,
        out: &mut ChunkOut<M::State>,
        cache: &mut HashMap<Fairness<M::FairnessKey>, u32>,
    ) {
        let s = &item.state;
        let stutter = fp == item.fp && n == *s;
        if !stutter {
            for (pi, p) in self.step_invariants {
                if !self.decided[*pi].load(Ordering::Relaxed) && !p(s, &n) {
                    let v = Violation::Step {
                        from: item.fp,
                        action: ai as u32,
                        to: fp,
                    };
                    self.record(*pi, v);
                }
            }
        }
        if self.liveness {
            if stutter {
                return; // stuttering self-loop
            }
            let key = self.intern(cache, self.m.fairness(s, &actions[ai]));
            let (new, id) = self.insert(fp, 0);
            let id = id as u32;
            if new {
                out.next.push(Item {
                    state: self.m.compact(n),
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
                    state: self.m.compact(n),
                    fp,
                    id: 0,
                    parent: 0,
                });
            }
        }
    }

    /// Expands chunks of `frontier` (claimed through `next_chunk`) until none is left or a
    /// stop is requested. A claimed chunk is taken out of the frontier and each of its states
    /// is dropped once expanded, so the level being expanded shrinks while the next grows.
    pub(crate) fn work(
        &self,
        frontier: &[Mutex<Vec<Item<M::State>>>],
        cache: &mut HashMap<Fairness<M::FairnessKey>, u32>,
    ) -> Vec<ChunkOut<M::State>> {
        let mut outs = Vec::new();
        let mut actions = Vec::new();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let idx = self.next_chunk.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = frontier.get(idx) else {
                break;
            };
            let items = std::mem::take(&mut *chunk.lock().unwrap_or_else(|e| e.into_inner()));
            let mut out = ChunkOut {
                idx,
                deg: Vec::new(),
                edges: Vec::new(),
                preds: Vec::new(),
                next: Vec::new(),
            };
            let mut generated = 0u64;
            for item in items {
                let item = &item;
                let s = &item.state;
                for (pi, p) in self.invariants {
                    if !self.decided[*pi].load(Ordering::Relaxed) && !p(s) {
                        self.record(*pi, Violation::State(item.fp));
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
                // each successor's slot in the table is prefetched while the next successor is
                // generated, then the successor is inserted (mostly cache misses otherwise)
                let mut pending: Option<(usize, M::State, u64)> = None;
                for (ai, a) in actions.iter().enumerate() {
                    let Some(n) = self.m.next_state(s, a) else {
                        continue;
                    };
                    let n = self.m.representative(n);
                    let fp = fingerprint(&n);
                    self.table.prefetch(fp);
                    generated += 1;
                    if let Some((pai, pn, pfp)) = pending.replace((ai, n, fp)) {
                        self.visit(item, &actions, pai, pn, pfp, e0, &mut out, cache);
                    }
                }
                if let Some((pai, pn, pfp)) = pending {
                    self.visit(item, &actions, pai, pn, pfp, e0, &mut out, cache);
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
