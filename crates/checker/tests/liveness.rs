//! Liveness cases with known verdicts. Every counterexample found here is
//! replayed by the independent validator.
use anvil_checker::models::*;
use anvil_checker::*;

/// A machine given by an explicit transition table (states are small ints).
struct Table {
    init: Vec<u8>,
    /// (from, to, name, fairness)
    trans: Vec<(u8, u8, &'static str, Fairness<&'static str>)>,
}

impl Machine for Table {
    type State = u8;
    type Action = (&'static str, u8);
    type FairnessKey = &'static str;
    fn init_states(&self) -> Vec<u8> {
        self.init.clone()
    }
    fn actions(&self, s: &u8, out: &mut Vec<(&'static str, u8)>) {
        for (f, t, n, _) in &self.trans {
            if f == s {
                out.push((n, *t));
            }
        }
    }
    fn next_state(&self, _s: &u8, a: &(&'static str, u8)) -> Option<u8> {
        Some(a.1)
    }
    fn fairness(&self, s: &u8, a: &(&'static str, u8)) -> Fairness<&'static str> {
        self.trans
            .iter()
            .find(|(f, t, n, _)| f == s && *t == a.1 && *n == a.0)
            .unwrap()
            .3
            .clone()
    }
}

fn w(k: &'static str) -> Fairness<&'static str> {
    Fairness::Weak(k)
}
fn sf(k: &'static str) -> Fairness<&'static str> {
    Fairness::Strong(k)
}
const U: Fairness<&'static str> = Fairness::Unfair;

fn holds<M: Machine>(m: &M, p: Property<M>) {
    for threads in [1, 2] {
        let r = Checker::new(m).threads(threads).property(p.clone()).run();
        assert!(r.complete);
        assert!(r.holds(), "{} should hold: {:?}", p.name, r.verdict);
    }
}

fn violated<M: Machine>(m: &M, p: Property<M>) -> Counterexample<M> {
    let mut last = None;
    for threads in [1, 2] {
        let r = Checker::new(m).threads(threads).property(p.clone()).run();
        let Verdict::Violated(cx) = &r.verdict else {
            panic!("{} should be violated: {:?}", p.name, r.verdict)
        };
        assert_eq!(cx.property(), p.name);
        validate(m, &p, cx)
            .unwrap_or_else(|e| panic!("invalid counterexample for {}: {e}\n{cx:?}", p.name));
        last = Some(cx.clone());
    }
    last.unwrap()
}

fn lasso<M: Machine>(cx: &Counterexample<M>) -> (&[Step<M>], &[Step<M>]) {
    match cx {
        Counterexample::Lasso { prefix, cycle, .. } => (prefix, cycle),
        _ => panic!("expected a lasso"),
    }
}

#[test]
fn two_phase_commit_decides_only_under_weak_fairness() {
    holds(
        &TwoPhaseCommit::new(3),
        TwoPhaseCommit::eventually_all_decided(),
    );
    let unfair = TwoPhaseCommit {
        rms: 3,
        fair: false,
    };
    let cx = violated(&unfair, TwoPhaseCommit::eventually_all_decided());
    // without fairness the system may simply stop: stutter forever at the initial state
    let (prefix, cycle) = lasso(&cx);
    assert_eq!(prefix.len(), 1);
    assert_eq!(cycle.len(), 1);
    assert!(cycle[0].action.is_none());
}

#[test]
fn tcommit_eventually_decides_under_weak_fairness() {
    let m = TCommit { rms: 3 };
    holds(
        &m,
        Property::eventually_always("all decided", |s: &Vec<RmState>| {
            s.iter()
                .all(|r| matches!(r, RmState::Committed | RmState::Aborted))
        }),
    );
}

#[test]
fn weak_fairness_needed_simple() {
    // 0 -go-> 1, property <>(s == 1)
    let fair = Table {
        init: vec![0],
        trans: vec![(0, 1, "go", w("go"))],
    };
    holds(&fair, Property::eventually("reach 1", |s: &u8| *s == 1));
    let unfair = Table {
        init: vec![0],
        trans: vec![(0, 1, "go", U)],
    };
    let cx = violated(&unfair, Property::eventually("reach 1", |s: &u8| *s == 1));
    let (_, cycle) = lasso(&cx);
    assert!(cycle.iter().all(|s| s.action.is_none() && s.state == 0));
}

#[test]
fn stuttering_at_deadlock_and_with_only_unfair_or_stuttering_actions() {
    // 1 is a deadlock: <>(s == 2) fails by stuttering at 1
    let m = Table {
        init: vec![0],
        trans: vec![(0, 1, "go", w("go")), (2, 2, "x", w("x"))],
    };
    let cx = violated(&m, Property::eventually("reach 2", |s: &u8| *s == 2));
    let (prefix, cycle) = lasso(&cx);
    assert_eq!(prefix.last().unwrap().state, 1);
    assert_eq!(cycle.len(), 1);
    assert!(cycle[0].action.is_none());
    // a weakly fair action that only stutters does not count as enabled:
    // stuttering forever at 1 is still fair
    let m2 = Table {
        init: vec![0],
        trans: vec![(0, 1, "go", w("go")), (1, 1, "noop", w("noop"))],
    };
    let cx = violated(&m2, Property::eventually("reach 2", |s: &u8| *s == 2));
    assert_eq!(lasso(&cx).0.last().unwrap().state, 1);
    // only an unfair action enabled at 1: stuttering is allowed
    let m3 = Table {
        init: vec![0],
        trans: vec![(0, 1, "go", w("go")), (1, 2, "env", U)],
    };
    violated(&m3, Property::eventually("reach 2", |s: &u8| *s == 2));
    // ...but a weakly fair one forbids stuttering there
    let m4 = Table {
        init: vec![0],
        trans: vec![(0, 1, "go", w("go")), (1, 2, "ctl", w("ctl"))],
    };
    holds(&m4, Property::eventually("reach 2", |s: &u8| *s == 2));
}

#[test]
fn fair_cycle_inside_larger_unfair_component() {
    // SCC {0,1,2}: the strong instance "exit" is enabled at 0 and never taken
    // inside, so the whole SCC is unfair; the sub-cycle 1 <-> 2 avoids 0 and
    // is fair. <>(s == 3) is violated by it.
    let m = Table {
        init: vec![0],
        trans: vec![
            (0, 1, "a", U),
            (1, 0, "b", U),
            (1, 2, "c", w("c")),
            (2, 1, "d", w("d")),
            (0, 3, "exit", sf("exit")),
        ],
    };
    let cx = violated(&m, Property::eventually("reach 3", |s: &u8| *s == 3));
    let (_, cycle) = lasso(&cx);
    assert!(
        cycle.iter().all(|s| s.state != 0),
        "cycle must avoid state 0: {cx:?}"
    );

    // the converse: the SCC of the whole graph is fair, but the violating
    // region ([]<>(s == 0) violated needs a cycle avoiding 0) is not: in
    // {1, 2} the weak instance "home" is enabled everywhere and never taken.
    let m2 = Table {
        init: vec![0],
        trans: vec![
            (0, 1, "a", w("a")),
            (1, 2, "c", U),
            (2, 1, "d", U),
            (1, 0, "home", w("home")),
            (2, 0, "home", w("home")),
        ],
    };
    holds(
        &m2,
        Property::always_eventually("visit 0", |s: &u8| *s == 0),
    );
}

#[test]
fn only_strong_fairness_rules_out_violation() {
    // 0 <-> 1 forever; "exit" to 2 is enabled at 0 only (intermittently)
    let mk = |f: Fairness<&'static str>| Table {
        init: vec![0],
        trans: vec![(0, 1, "a", w("a")), (1, 0, "b", w("b")), (0, 2, "exit", f)],
    };
    let p = || Property::eventually("reach 2", |s: &u8| *s == 2);
    holds(&mk(sf("exit")), p());
    let cx = violated(&mk(w("exit")), p());
    let (_, cycle) = lasso(&cx);
    assert!(
        cycle.len() >= 2,
        "weakly fair cycle must visit 1, where exit is disabled: {cx:?}"
    );
    violated(&mk(U), p());
}

#[test]
fn leads_to_with_several_triggers() {
    // triggers (P) at 1 and 3, Q at 2.
    // 0 -> 1 -> 2 (fair); 2 -> 3 (unfair env); 3 <-> 4 fair loop avoiding Q
    let m = Table {
        init: vec![0],
        trans: vec![
            (0, 1, "a", w("a")),
            (1, 2, "b", w("b")),
            (2, 3, "env", U),
            (3, 4, "c", w("c")),
            (4, 3, "d", w("d")),
        ],
    };
    let p = Property::leads_to("P ~> Q", |s: &u8| *s == 1 || *s == 3, |s: &u8| *s == 2);
    let cx = violated(&m, p);
    let (prefix, _) = lasso(&cx);
    assert!(prefix.iter().any(|s| s.state == 3));
    // restricted to the first trigger it holds
    holds(
        &m,
        Property::leads_to("1 ~> 2", |s: &u8| *s == 1, |s: &u8| *s == 2),
    );
    // with the loop broken by a fair exit to 2 it holds for both triggers
    let mut m2 = m;
    m2.trans.push((4, 2, "e", sf("e")));
    holds(
        &m2,
        Property::leads_to("P ~> Q", |s: &u8| *s == 1 || *s == 3, |s: &u8| *s == 2),
    );
}

/// A tiny "controller + fault" system with an ESR-shaped property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Sys {
    desired: u8,
    current: u8,
    fault_on: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    UserEdit(u8),
    Sync,
    Corrupt,
    DisableFault,
}

struct Ctl {
    /// Whether the fault switch can be turned off (weakly fair).
    switch: bool,
}

impl Machine for Ctl {
    type State = Sys;
    type Action = Act;
    type FairnessKey = &'static str;
    fn init_states(&self) -> Vec<Sys> {
        vec![Sys {
            desired: 0,
            current: 0,
            fault_on: true,
        }]
    }
    fn actions(&self, _s: &Sys, out: &mut Vec<Act>) {
        out.extend([Act::UserEdit(0), Act::UserEdit(1), Act::Sync, Act::Corrupt]);
        if self.switch {
            out.push(Act::DisableFault);
        }
    }
    fn next_state(&self, s: &Sys, a: &Act) -> Option<Sys> {
        let mut n = *s;
        match *a {
            Act::UserEdit(v) => n.desired = v,
            Act::Sync => n.current = s.desired,
            Act::Corrupt if s.fault_on => n.current = 2,
            Act::Corrupt => return None,
            Act::DisableFault if s.fault_on => n.fault_on = false,
            Act::DisableFault => return None,
        }
        Some(n)
    }
    fn fairness(&self, _s: &Sys, a: &Act) -> Fairness<&'static str> {
        match a {
            Act::UserEdit(_) | Act::Corrupt => Fairness::Unfair,
            Act::Sync => Fairness::Weak("sync"),
            Act::DisableFault => Fairness::Weak("disable fault"),
        }
    }
}

fn esr(v: u8) -> Property<Ctl> {
    Property::stable_leads_to_always(
        format!("ESR({v})"),
        move |s: &Sys| s.desired == v,
        move |s: &Sys| s.current == v,
    )
}

#[test]
fn esr_holds_with_eventually_disabled_fault_switch() {
    let m = Ctl { switch: true };
    holds(&m, esr(1));
    holds(&m, esr(0));
    // P ~> []Q form fails: the user may edit again after desired == 1
    violated(
        &m,
        Property::leads_to_always(
            "1 ~> []current 1",
            |s: &Sys| s.desired == 1,
            |s: &Sys| s.current == 1,
        ),
    );
    // and <>[] current == 1 fails: the user may keep desired == 0 forever
    violated(
        &m,
        Property::eventually_always("<>[] current 1", |s: &Sys| s.current == 1),
    );
}

#[test]
fn esr_fails_when_fault_never_stops() {
    let m = Ctl { switch: false };
    let cx = violated(&m, esr(1));
    let (_, cycle) = lasso(&cx);
    assert!(cycle.iter().any(|s| s.action == Some(Act::Corrupt)));
    assert!(
        cycle.iter().any(|s| s.action == Some(Act::Sync)),
        "the fair cycle must take the fair sync step: {cx:?}"
    );
}

#[test]
fn always_eventually_and_leads_to_always() {
    // 0 <-> 1 fair loop: []<>(s==0) holds, <>[](s==0) fails, 1 ~> [](s==1) fails
    let m = Table {
        init: vec![0],
        trans: vec![(0, 1, "a", w("a")), (1, 0, "b", w("b"))],
    };
    holds(&m, Property::always_eventually("[]<>0", |s: &u8| *s == 0));
    violated(&m, Property::eventually_always("<>[]0", |s: &u8| *s == 0));
    violated(
        &m,
        Property::leads_to_always("1 ~> []1", |s: &u8| *s == 1, |s: &u8| *s == 1),
    );
    // unfair loop: []<>0 fails by stuttering at 1
    let m2 = Table {
        init: vec![0],
        trans: vec![(0, 1, "a", w("a")), (1, 0, "b", U)],
    };
    let cx = violated(&m2, Property::always_eventually("[]<>0", |s: &u8| *s == 0));
    assert_eq!(lasso(&cx).1[0].state, 1);
}

#[test]
fn validator_rejects_bogus_lassos() {
    let m = Table {
        init: vec![0],
        trans: vec![(0, 1, "a", w("a")), (1, 0, "b", w("b"))],
    };
    let p = Property::eventually("reach 2", |s: &u8| *s == 2);
    // stuttering at 0 violates weak fairness of "a"
    let bogus = Counterexample::Lasso {
        property: p.name.clone(),
        prefix: vec![Step {
            action: None,
            state: 0,
        }],
        cycle: vec![Step {
            action: None,
            state: 0,
        }],
    };
    assert!(validate(&m, &p, &bogus).unwrap_err().contains("unfair"));
    // a step that does not exist
    let bogus = Counterexample::Lasso {
        property: p.name.clone(),
        prefix: vec![Step {
            action: None,
            state: 0,
        }],
        cycle: vec![Step {
            action: Some(("b", 0)),
            state: 0,
        }],
    };
    assert!(validate(&m, &p, &bogus).is_err());
    // a real fair lasso is accepted
    let ok = Counterexample::Lasso {
        property: p.name.clone(),
        prefix: vec![Step {
            action: None,
            state: 0,
        }],
        cycle: vec![
            Step {
                action: Some(("a", 1)),
                state: 1,
            },
            Step {
                action: Some(("b", 0)),
                state: 0,
            },
        ],
    };
    validate(&m, &p, &ok).unwrap();
}
