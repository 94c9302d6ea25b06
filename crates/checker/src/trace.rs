//! Rebuilding counterexample traces from what the exploration stored.
//!
//! Safety-only runs keep fingerprints only (fingerprint -> parent
//! fingerprint); liveness runs keep the graph (ids, parent ids, edges with
//! action indices). Either way the concrete states of a trace are re-derived
//! by replaying the machine's actions from an initial state.

use crate::engine::{Explored, Violation};
use crate::fingerprint::fingerprint;
use crate::machine::Machine;
use crate::result::Step;
use crate::store::{Graph, NONE};

fn canonical_inits<M: Machine>(m: &M) -> Vec<M::State> {
    m.init_states()
        .into_iter()
        .map(|s| m.representative(s))
        .collect()
}

/// Rebuild the shortest path to the state with fingerprint `fp`.
pub(crate) fn safety_path<M: Machine>(m: &M, ex: &Explored<'_>, fp: u64) -> Vec<Step<M>> {
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
pub(crate) fn replay<M: Machine>(
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

pub(crate) fn replay_from<M: Machine>(
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

/// The shortest counterexample path of a safety violation: the path to the
/// violating state, or the path to the source state of the violating step
/// followed by that step.
pub(crate) fn violation_path<M: Machine>(m: &M, ex: &Explored<'_>, v: Violation) -> Vec<Step<M>> {
    match v {
        Violation::State(fp) => safety_path(m, ex, fp),
        Violation::Step { from, action, to } => {
            let mut steps = safety_path(m, ex, from);
            let cur = &steps.last().unwrap().state;
            let mut actions = Vec::new();
            m.actions(cur, &mut actions);
            let a = actions[action as usize].clone();
            let n = m.representative(m.next_state(cur, &a).expect("replay: action disabled"));
            assert_eq!(
                fingerprint(&n),
                to,
                "replay diverged (nondeterministic machine?)"
            );
            steps.push(Step {
                action: Some(a),
                state: n,
            });
            steps
        }
    }
}
