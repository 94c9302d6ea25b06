//! Fair-cycle detection on the reachable graph.
//!
//! Every liveness shape is reduced to: *is there a reachable fair cycle that
//! stays inside a region `R` and (optionally) visits an accepting set `A`?*
//! This is the product with a two-state tableau, specialised per shape:
//!
//! | property      | region `R` (cycle states)                          | `A`  | prefix                                 |
//! |---------------|----------------------------------------------------|------|----------------------------------------|
//! | `<>P`         | `!P` states reachable from an initial state via `!P` | --   | through `!P` states only                |
//! | `[]<>P`       | `!P`                                               | --   | any                                    |
//! | `<>[]P`       | all                                                | `!P` | any                                    |
//! | `P ~> Q`      | reachable from a `P /\ !Q` state via `!Q` states   | --   | any, to the trigger, then `!Q` to cycle |
//! | `P ~> []Q`    | reachable from a `P` state                          | `!Q` | any, through a `P` state               |
//! | `[]P ~> []Q`  | `P`                                                | `!Q` | any                                    |
//!
//! **Stuttering.** Every state may stutter forever (TLA+ behaviours are
//! stuttering-closed), so every single state is a cycle of the graph; it is a
//! *fair* cycle iff no weakly or strongly fair instance is enabled in it
//! (deadlocks and states where only unfair actions are enabled can therefore
//! stutter forever).
//!
//! **Steps taken finitely often** ([`crate::Fairness::Finite`], faults that
//! eventually stop) lead anywhere in a prefix but are on no cycle: the
//! components below are those of the graph without them.
//!
//! **Fairness on a cycle** (a cycle is judged on the states and steps it
//! actually uses, never on its whole component):
//! weak instance `k` is violated iff `k` is enabled in every state of the
//! cycle and no step of the cycle has key `k`; strong instance `k` is violated
//! iff `k` is enabled in some state of the cycle and no step has key `k`.
//! Enabled/taken count non-stuttering transitions only (self-loops are not in
//! the graph).
//!
//! **Algorithm** (Emerson--Lei style refinement): compute the SCCs of the
//! region (iterative Tarjan). For an SCC `C` (with `A`-state if required):
//! if some weak `k` is enabled in all of `C` and never taken inside `C`, no
//! cycle in `C` is fair (every sub-cycle has the same defect); if some strong
//! `k` is enabled somewhere in `C` but never taken inside, every fair cycle of
//! `C` must avoid the states enabling `k`: remove them and recurse on the SCCs
//! of the rest; otherwise the cycle that visits all of `C`'s relevant states
//! and takes one edge of every key taken in `C` is fair. A weakly fair
//! obligation only gets easier with more states and steps, so that maximal
//! cycle is the right witness.
//!
//! **Lasso.** Among the fair components, the one containing the state
//! closest to the initial states is used; shortest path (BFS parents) to
//! its first-discovered state, the loop state, then a cycle
//! inside `C` that greedily walks to the nearest unmet target (an accepting
//! state, a state disabling an enabled-but-untaken weak key, or an edge of a
//! key that is taken in `C`) and returns to the loop state.

use crate::store::{FINITE, Graph, NONE, UNFAIR};
use std::collections::{HashMap, VecDeque};

/// The shapes of liveness properties, with predicate bit indices.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    Eventually(usize),
    AlwaysEventually(usize),
    EventuallyAlways(usize),
    LeadsTo(usize, usize),
    LeadsToAlways(usize, usize),
    StableLeadsToAlways(usize, usize),
}

/// A lasso over node ids: `prefix[0] = (root, None)`; each other entry is
/// (node reached, action index used; `None` = stuttering step).
pub(crate) struct LassoIds {
    pub prefix: Vec<(u32, Option<u32>)>,
    pub cycle: Vec<(u32, Option<u32>)>,
}

struct Scratch {
    index: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
    set_mark: Vec<u32>,
    comp_mark: Vec<u32>,
    stamp: u32,
}

fn tarjan(
    g: &Graph,
    nodes: &[u32],
    member: impl Fn(u32) -> bool,
    sc: &mut Scratch,
) -> Vec<Vec<u32>> {
    let mut comps = Vec::new();
    let mut counter = 0u32;
    let mut stack: Vec<u32> = Vec::new();
    let mut calls: Vec<(u32, u64)> = Vec::new();
    for &s in nodes {
        if sc.index[s as usize] != NONE {
            continue;
        }
        sc.index[s as usize] = counter;
        sc.low[s as usize] = counter;
        counter += 1;
        stack.push(s);
        sc.on_stack[s as usize] = true;
        calls.push((s, g.offsets[s as usize]));
        while let Some(&(v, pos)) = calls.last() {
            let end = g.offsets[v as usize + 1];
            if pos < end {
                calls.last_mut().unwrap().1 = pos + 1;
                let e = g.edges[pos as usize];
                let w = e.to;
                // a step taken only finitely often is on no cycle
                if !member(w) || e.key == FINITE {
                    continue;
                }
                if sc.index[w as usize] == NONE {
                    sc.index[w as usize] = counter;
                    sc.low[w as usize] = counter;
                    counter += 1;
                    stack.push(w);
                    sc.on_stack[w as usize] = true;
                    calls.push((w, g.offsets[w as usize]));
                } else if sc.on_stack[w as usize] {
                    sc.low[v as usize] = sc.low[v as usize].min(sc.index[w as usize]);
                }
            } else {
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    sc.low[u as usize] = sc.low[u as usize].min(sc.low[v as usize]);
                }
                if sc.low[v as usize] == sc.index[v as usize] {
                    let mut comp = Vec::new();
                    loop {
                        let w = stack.pop().unwrap();
                        sc.on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comps.push(comp);
                }
            }
        }
    }
    for &s in nodes {
        sc.index[s as usize] = NONE;
    }
    comps
}

/// Whether an edge key is a fairness obligation (not [`UNFAIR`] nor [`FINITE`]).
fn fair_key(k: u32) -> bool {
    k != UNFAIR && k != FINITE
}

/// Per-key statistics inside a component: (states enabling it, taken inside).
type KeyInfo = HashMap<u32, (usize, bool)>;

fn find_fair_component(
    g: &Graph,
    region: Vec<u32>,
    accept: &Option<Vec<bool>>,
    sc: &mut Scratch,
) -> Option<(Vec<u32>, KeyInfo)> {
    let mut work = vec![region];
    let mut keys_here: Vec<u32> = Vec::new();
    let mut best: Option<(u32, Vec<u32>, KeyInfo)> = None;
    while let Some(set) = work.pop() {
        sc.stamp += 1;
        let st = sc.stamp;
        for &v in &set {
            sc.set_mark[v as usize] = st;
        }
        let set_mark = std::mem::take(&mut sc.set_mark);
        let comps = tarjan(g, &set, |w| set_mark[w as usize] == st, sc);
        sc.set_mark = set_mark;
        for comp in comps {
            if let Some(a) = accept
                && !comp.iter().any(|&v| a[v as usize])
            {
                continue;
            }
            if let [v] = comp[..] {
                // A single state (no self-loops in the graph) cycles only by stuttering: fair
                // iff no fair instance is enabled in it (a weak one would be enabled in all of
                // the component and never taken; a strong one removes the state). Most
                // components are such states: decide them without the per-key table.
                if g.out(v).iter().all(|e| !fair_key(e.key))
                    && best.as_ref().is_none_or(|(m, _, _)| v < *m)
                {
                    best = Some((v, comp, KeyInfo::new()));
                }
                continue;
            }
            sc.stamp += 1;
            let cs = sc.stamp;
            for &v in &comp {
                sc.comp_mark[v as usize] = cs;
            }
            let mut info: KeyInfo = HashMap::new();
            for &v in &comp {
                keys_here.clear();
                for e in g.out(v) {
                    if !fair_key(e.key) {
                        continue;
                    }
                    let inside = sc.comp_mark[e.to as usize] == cs;
                    let ent = info.entry(e.key).or_insert((0, false));
                    ent.1 |= inside;
                    if !keys_here.contains(&e.key) {
                        keys_here.push(e.key);
                        ent.0 += 1;
                    }
                }
            }
            let weak_violated = info.iter().any(|(k, (cnt, taken))| {
                !g.key_strong[*k as usize] && *cnt == comp.len() && !taken
            });
            if weak_violated {
                continue;
            }
            let bad_strong: Vec<u32> = info
                .iter()
                .filter(|(k, (cnt, taken))| g.key_strong[**k as usize] && *cnt > 0 && !taken)
                .map(|(k, _)| *k)
                .collect();
            if bad_strong.is_empty() {
                // keep the fair component closest to the initial states
                // (ids are in BFS order), for a short prefix
                let min = *comp.iter().min().unwrap();
                if best.as_ref().is_none_or(|(m, _, _)| min < *m) {
                    best = Some((min, comp, info));
                }
                continue;
            }
            let rest: Vec<u32> = comp
                .into_iter()
                .filter(|&v| !g.out(v).iter().any(|e| bad_strong.contains(&e.key)))
                .collect();
            if !rest.is_empty() {
                work.push(rest);
            }
        }
    }
    best.map(|(_, c, i)| (c, i))
}

/// Multi-source BFS restricted to `allowed`; returns visited flags and BFS
/// parents (sources have parent `NONE`).
fn restricted_bfs(
    g: &Graph,
    sources: impl Iterator<Item = u32>,
    allowed: impl Fn(u32) -> bool,
) -> (Vec<bool>, Vec<u32>) {
    let n = g.n();
    let mut seen = vec![false; n];
    let mut parent = vec![NONE; n];
    let mut q = VecDeque::new();
    for s in sources {
        if allowed(s) && !seen[s as usize] {
            seen[s as usize] = true;
            q.push_back(s);
        }
    }
    while let Some(v) = q.pop_front() {
        for e in g.out(v) {
            let w = e.to;
            if !seen[w as usize] && allowed(w) {
                seen[w as usize] = true;
                parent[w as usize] = v;
                q.push_back(w);
            }
        }
    }
    (seen, parent)
}

/// Look for a fair lasso violating `shape`.
pub(crate) fn check(g: &Graph, shape: Shape) -> Option<LassoIds> {
    let n = g.n();
    let bit = |v: u32, j: usize| (g.preds[v as usize] >> j) & 1 == 1;
    let all = || 0..n as u32;
    let (region, accept, rparent): (Vec<u32>, Option<Vec<bool>>, Option<Vec<u32>>) = match shape {
        Shape::Eventually(p) => {
            let (seen, par) = restricted_bfs(g, g.roots.iter().copied(), |v| !bit(v, p));
            (
                all().filter(|&v| seen[v as usize]).collect(),
                None,
                Some(par),
            )
        }
        Shape::AlwaysEventually(p) => (all().filter(|&v| !bit(v, p)).collect(), None, None),
        Shape::EventuallyAlways(p) => (
            all().collect(),
            Some(all().map(|v| !bit(v, p)).collect()),
            None,
        ),
        Shape::LeadsTo(p, q) => {
            let (seen, par) = restricted_bfs(g, all().filter(|&v| bit(v, p) && !bit(v, q)), |v| {
                !bit(v, q)
            });
            (
                all().filter(|&v| seen[v as usize]).collect(),
                None,
                Some(par),
            )
        }
        Shape::LeadsToAlways(p, q) => {
            let (seen, par) = restricted_bfs(g, all().filter(|&v| bit(v, p)), |_| true);
            (
                all().filter(|&v| seen[v as usize]).collect(),
                Some(all().map(|v| !bit(v, q)).collect()),
                Some(par),
            )
        }
        Shape::StableLeadsToAlways(p, q) => (
            all().filter(|&v| bit(v, p)).collect(),
            Some(all().map(|v| !bit(v, q)).collect()),
            None,
        ),
    };
    if region.is_empty() {
        return None;
    }
    let mut sc = Scratch {
        index: vec![NONE; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        set_mark: vec![0; n],
        comp_mark: vec![0; n],
        stamp: 0,
    };
    let (comp, info) = find_fair_component(g, region, &accept, &mut sc)?;
    sc.stamp += 1;
    let cs = sc.stamp;
    for &v in &comp {
        sc.comp_mark[v as usize] = cs;
    }
    let in_comp = |v: u32| sc.comp_mark[v as usize] == cs;
    // loop state: smallest id (ids are assigned in BFS order, so smallest depth)
    let c = *comp.iter().min().unwrap();

    // prefix: restricted parents (if any) back to a source, then BFS parents
    let mut rev = vec![c];
    let mut v = c;
    if let Some(rp) = &rparent {
        while rp[v as usize] != NONE {
            v = rp[v as usize];
            rev.push(v);
        }
    }
    while g.parent[v as usize] != NONE {
        v = g.parent[v as usize];
        rev.push(v);
    }
    rev.reverse();
    let edge_action = |from: u32, to: u32| {
        g.out(from)
            .iter()
            .find(|e| e.to == to)
            .map(|e| e.action)
            .unwrap()
    };
    let mut prefix = vec![(rev[0], None)];
    for w in rev.windows(2) {
        prefix.push((w[1], Some(edge_action(w[0], w[1]))));
    }

    // cycle targets
    let mut need_accept = accept.is_some();
    let mut need_disabled: Vec<u32> = Vec::new(); // weak keys, enabled somewhere, never taken
    let mut need_edge: Vec<u32> = Vec::new(); // keys taken inside comp
    for (k, (cnt, taken)) in &info {
        if *cnt == 0 {
            continue;
        }
        if *taken {
            need_edge.push(*k);
        } else {
            need_disabled.push(*k);
        }
    }
    need_edge.sort();
    need_disabled.sort();
    let acc = |v: u32| accept.as_ref().is_some_and(|a| a[v as usize]);
    let visit = |v: u32, need_accept: &mut bool, need_disabled: &mut Vec<u32>| {
        if acc(v) {
            *need_accept = false;
        }
        need_disabled.retain(|k| g.out(v).iter().any(|e| e.key == *k));
    };
    visit(c, &mut need_accept, &mut need_disabled);
    let mut cycle: Vec<(u32, Option<u32>)> = Vec::new();
    let mut cur = c;
    let mut bpar: HashMap<u32, (u32, u32)> = HashMap::new();
    loop {
        let done = !need_accept && need_disabled.is_empty() && need_edge.is_empty();
        // BFS inside comp from cur to the nearest useful node (or back to c when done)
        bpar.clear();
        let mut q = VecDeque::from([cur]);
        let mut found: Option<(u32, Option<(u32, u32)>)> = None; // node, then optional extra edge (to, action)
        bpar.insert(cur, (NONE, NONE));
        while let Some(u) = q.pop_front() {
            if done {
                if u == c && u != cur {
                    found = Some((u, None));
                    break;
                }
            } else {
                if u != cur
                    && (acc(u) && need_accept
                        || need_disabled
                            .iter()
                            .any(|k| !g.out(u).iter().any(|e| e.key == *k)))
                {
                    found = Some((u, None));
                    break;
                }
                if let Some(e) = g
                    .out(u)
                    .iter()
                    .find(|e| need_edge.contains(&e.key) && in_comp(e.to))
                {
                    found = Some((u, Some((e.to, e.action))));
                    break;
                }
            }
            for e in g.out(u) {
                if in_comp(e.to) && e.key != FINITE && !bpar.contains_key(&e.to) {
                    bpar.insert(e.to, (u, e.action));
                    q.push_back(e.to);
                }
            }
        }
        let Some((u, extra)) = found else {
            // done and cur == c (nothing to do), or unreachable (cannot happen in an SCC)
            break;
        };
        let mut path = Vec::new();
        let mut x = u;
        while x != cur {
            let (p, a) = bpar[&x];
            path.push((x, Some(a)));
            x = p;
        }
        path.reverse();
        for &(x, a) in &path {
            let prev = cycle.last().map_or(cur, |l: &(u32, Option<u32>)| l.0);
            let _ = prev;
            cycle.push((x, a));
        }
        // discharge along the path
        let mut prev = cur;
        for &(x, a) in &path {
            if let Some(e) = g
                .out(prev)
                .iter()
                .find(|e| e.to == x && Some(e.action) == a)
            {
                need_edge.retain(|k| *k != e.key);
            }
            visit(x, &mut need_accept, &mut need_disabled);
            prev = x;
        }
        cur = u;
        if let Some((to, a)) = extra {
            let e = g
                .out(u)
                .iter()
                .find(|e| e.to == to && e.action == a)
                .unwrap();
            need_edge.retain(|k| *k != e.key);
            cycle.push((to, Some(a)));
            visit(to, &mut need_accept, &mut need_disabled);
            cur = to;
        }
        if done {
            break;
        }
    }
    if cycle.is_empty() {
        cycle.push((c, None)); // stutter forever
    }
    Some(LassoIds { prefix, cycle })
}
