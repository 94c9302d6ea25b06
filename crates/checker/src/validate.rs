//! Independent replay of counterexamples against the machine.
//!
//! [`validate`] re-executes a [`Counterexample`] with the machine's own
//! methods, without using anything the checker computed, and checks that:
//!
//! 1. it is a real behaviour: the first state is (the representative of) an
//!    initial state, every step's action is listed by `actions`, enabled, and
//!    leads to the recorded state (after `representative`); a step without an
//!    action is a stuttering step and must repeat the previous state (only
//!    allowed in a lasso's cycle);
//! 2. a lasso's cycle is non-empty and ends in the loop state;
//! 3. the lasso's cycle satisfies every fairness assumption (weak: no instance
//!    enabled -- by a non-stuttering step -- in every cycle state without being
//!    taken on a non-stuttering cycle step; strong: none enabled in some
//!    cycle state without being taken);
//! 4. the behaviour violates the property: for `[]P` the last state of the
//!    path violates `P`; for `[][A]_s` the path has at least one step and
//!    its last step is a non-stuttering step `s -> t` with `!A(s, t)`; for a
//!    liveness property the lasso violates it.

use crate::machine::{Fairness, Machine};
use crate::property::{Property, PropertyKind};
use crate::result::{Counterexample, Step};
use std::collections::HashSet;

/// Check that `cx` is a genuine (and, for lassos, fair) behaviour of `m` that
/// violates `property`. Returns a description of the first problem found.
pub fn validate<M: Machine>(
    m: &M,
    property: &Property<M>,
    cx: &Counterexample<M>,
) -> Result<(), String> {
    match cx {
        Counterexample::Path { steps, .. } => {
            check_prefix(m, steps)?;
            match &property.kind {
                PropertyKind::Always(p) => {
                    if p(&steps.last().unwrap().state) {
                        return Err("the last state of the path satisfies the invariant".into());
                    }
                    Ok(())
                }
                PropertyKind::AlwaysStep(a) => {
                    let [.., s, t] = &steps[..] else {
                        return Err(
                            "a step property is violated by a step: the path has none".into()
                        );
                    };
                    if s.state == t.state {
                        return Err(
                            "the last step is a stuttering step, which satisfies [A]_s".into()
                        );
                    }
                    if a(&s.state, &t.state) {
                        return Err("the last step of the path satisfies the step predicate".into());
                    }
                    Ok(())
                }
                _ => Err("a finite path can only violate a safety property".into()),
            }
        }
        Counterexample::Lasso { prefix, cycle, .. } => {
            check_prefix(m, prefix)?;
            if cycle.is_empty() {
                return Err("empty cycle".into());
            }
            let loop_state = &prefix.last().unwrap().state;
            if &cycle.last().unwrap().state != loop_state {
                return Err("the cycle does not return to the loop state".into());
            }
            let mut cur = loop_state;
            for (i, st) in cycle.iter().enumerate() {
                check_step(m, cur, st, true).map_err(|e| format!("cycle step {i}: {e}"))?;
                cur = &st.state;
            }
            check_fairness(m, cycle)?;
            check_violation(property, prefix, cycle)
        }
    }
}

fn check_prefix<M: Machine>(m: &M, steps: &[Step<M>]) -> Result<(), String> {
    let first = steps.first().ok_or("empty trace")?;
    if first.action.is_some() {
        return Err("the first step must have no action".into());
    }
    if !m
        .init_states()
        .into_iter()
        .any(|s| m.representative(s) == first.state)
    {
        return Err("the first state is not an initial state".into());
    }
    for (i, w) in steps.windows(2).enumerate() {
        check_step(m, &w[0].state, &w[1], false).map_err(|e| format!("step {}: {e}", i + 1))?;
    }
    Ok(())
}

fn check_step<M: Machine>(
    m: &M,
    from: &M::State,
    step: &Step<M>,
    stutter_ok: bool,
) -> Result<(), String> {
    match &step.action {
        None => {
            if !stutter_ok {
                return Err("missing action".into());
            }
            if &step.state != from {
                return Err("stuttering step changes the state".into());
            }
            Ok(())
        }
        Some(a) => {
            let mut acts = Vec::new();
            m.actions(from, &mut acts);
            if !acts.contains(a) {
                return Err(format!("action {a:?} is not offered"));
            }
            let n = m
                .next_state(from, a)
                .ok_or_else(|| format!("action {a:?} is not enabled"))?;
            if m.representative(n) != step.state {
                return Err(format!("action {a:?} leads to a different state"));
            }
            Ok(())
        }
    }
}

/// Fair instances enabled (by a non-stuttering step) in `s`.
fn enabled<M: Machine>(m: &M, s: &M::State) -> HashSet<Fairness<M::FairnessKey>> {
    let mut acts = Vec::new();
    m.actions(s, &mut acts);
    acts.iter()
        .filter_map(|a| {
            let n = m.representative(m.next_state(s, a)?);
            (n != *s).then(|| m.fairness(s, a)).filter(|f| f.is_fair())
        })
        .collect()
}

fn check_fairness<M: Machine>(m: &M, cycle: &[Step<M>]) -> Result<(), String> {
    // states of the cycle: the loop state is cycle.last()
    let states: Vec<&M::State> = cycle.iter().map(|s| &s.state).collect();
    let mut taken = HashSet::new();
    let mut prev = *states.last().unwrap();
    for st in cycle {
        if let Some(a) = &st.action
            && st.state != *prev
        {
            let f = m.fairness(prev, a);
            if f == Fairness::Finite {
                return Err(format!(
                    "cycle takes {a:?}, a step that happens only finitely often"
                ));
            }
            if f.is_fair() {
                taken.insert(f);
            }
        }
        prev = &st.state;
    }
    let en: Vec<HashSet<_>> = states.iter().map(|s| enabled(m, s)).collect();
    let union: HashSet<_> = en.iter().flatten().cloned().collect();
    for f in union {
        if taken.contains(&f) {
            continue;
        }
        match f {
            Fairness::Weak(_) if en.iter().all(|e| e.contains(&f)) => {
                return Err(format!(
                    "cycle is unfair: {f:?} is enabled in every cycle state and never taken"
                ));
            }
            Fairness::Strong(_) => {
                return Err(format!(
                    "cycle is unfair: {f:?} is enabled in some cycle state and never taken"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_violation<M: Machine>(
    property: &Property<M>,
    prefix: &[Step<M>],
    cycle: &[Step<M>],
) -> Result<(), String> {
    let pre: Vec<&M::State> = prefix.iter().map(|s| &s.state).collect();
    let cyc: Vec<&M::State> = cycle.iter().map(|s| &s.state).collect();
    let ok = match &property.kind {
        PropertyKind::Always(_) | PropertyKind::AlwaysStep(_) => {
            return Err("a safety property is violated by a path, not a lasso".into());
        }
        PropertyKind::Eventually(p) => !pre.iter().chain(&cyc).any(|s| p(s)),
        PropertyKind::AlwaysEventually(p) => !cyc.iter().any(|s| p(s)),
        PropertyKind::EventuallyAlways(p) => cyc.iter().any(|s| !p(s)),
        PropertyKind::LeadsTo(p, q) => {
            // some position i with P /\ no Q at or after i
            let cycle_no_q = !cyc.iter().any(|s| q(s));
            let trig_in_cycle = cycle_no_q && cyc.iter().any(|s| p(s));
            let trig_in_prefix =
                cycle_no_q && (0..pre.len()).any(|i| p(pre[i]) && !pre[i..].iter().any(|s| q(s)));
            trig_in_cycle || trig_in_prefix
        }
        PropertyKind::LeadsToAlways(p, q) => {
            pre.iter().chain(&cyc).any(|s| p(s)) && cyc.iter().any(|s| !q(s))
        }
        PropertyKind::StableLeadsToAlways(p, q) => {
            cyc.iter().all(|s| p(s)) && cyc.iter().any(|s| !q(s))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the lasso does not violate {:?}", property.name))
    }
}
