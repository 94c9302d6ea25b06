//! `Machine::representative`: symmetry reduction and counter abstraction.
use anvil_checker::models::*;
use anvil_checker::*;

/// Two-phase commit with symmetry reduction over resource managers: RMs are
/// sorted by (state, tm_prepared, sent Prepared) and renamed accordingly --
/// a true canonical form. RM indices are renamed, so fairness keys must not
/// name them (see `Machine::representative`): here every action kind is one
/// weakly fair group ("some RM prepares", ...), a key stable under renaming.
struct Sym(TwoPhaseCommit);

impl Machine for Sym {
    type State = TwoPhaseState;
    type Action = TwoPhaseAction;
    type FairnessKey = std::mem::Discriminant<TwoPhaseAction>;
    fn init_states(&self) -> Vec<TwoPhaseState> {
        self.0.init_states()
    }
    fn actions(&self, s: &TwoPhaseState, out: &mut Vec<TwoPhaseAction>) {
        self.0.actions(s, out)
    }
    fn next_state(&self, s: &TwoPhaseState, a: &TwoPhaseAction) -> Option<TwoPhaseState> {
        self.0.next_state(s, a)
    }
    fn fairness(
        &self,
        s: &TwoPhaseState,
        a: &TwoPhaseAction,
    ) -> Fairness<std::mem::Discriminant<TwoPhaseAction>> {
        match self.0.fairness(s, a) {
            Fairness::Weak(_) => Fairness::Weak(std::mem::discriminant(a)),
            _ => Fairness::Unfair,
        }
    }
    fn representative(&self, s: TwoPhaseState) -> TwoPhaseState {
        let n = s.rm_state.len();
        let mut idx: Vec<usize> = (0..n).collect();
        let key = |i: usize| {
            (
                s.rm_state[i],
                s.tm_prepared[i],
                s.msgs.contains(&Message::Prepared(i)),
            )
        };
        idx.sort_by_key(|&i| key(i));
        let mut new_of = vec![0; n];
        for (new, &old) in idx.iter().enumerate() {
            new_of[old] = new;
        }
        TwoPhaseState {
            rm_state: idx.iter().map(|&i| s.rm_state[i]).collect(),
            tm_state: s.tm_state,
            tm_prepared: idx.iter().map(|&i| s.tm_prepared[i]).collect(),
            msgs: s
                .msgs
                .iter()
                .map(|m| match m {
                    Message::Prepared(i) => Message::Prepared(new_of[*i]),
                    m => *m,
                })
                .collect(),
        }
    }
}

#[test]
fn symmetry_reduction_keeps_verdicts() {
    let m = Sym(TwoPhaseCommit::new(5));
    let r = Checker::new(&m)
        .property(Property::always("consistent", |s: &TwoPhaseState| {
            !(s.rm_state.contains(&RmState::Aborted) && s.rm_state.contains(&RmState::Committed))
        }))
        .property(Property::eventually_always(
            "all decided",
            |s: &TwoPhaseState| {
                s.rm_state
                    .iter()
                    .all(|r| matches!(r, RmState::Committed | RmState::Aborted))
            },
        ))
        .run();
    assert!(r.holds(), "{:?}", r.verdict);
    assert!(r.states < 8832, "{}", r.states);
    eprintln!("2pc(5) with symmetry: {} states", r.states);
    // representative must be idempotent
    let full = Checker::new(&TwoPhaseCommit::new(3)).run();
    assert_eq!(full.states, 288);
}

/// A writer bumps a global "resourceVersion" on every write; a reader
/// remembers the version it last saw and compares it with the current one.
/// Versions are only compared, so an order-preserving renaming into 0.. is a
/// sound abstraction that makes the state space finite.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Rv {
    rv: u64,
    seen: u64,
    fault_on: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RvAct {
    Write,
    Read,
    StopWrites,
}

struct RvMachine {
    canonical: bool,
}

impl Machine for RvMachine {
    type State = Rv;
    type Action = RvAct;
    type FairnessKey = RvAct;
    fn init_states(&self) -> Vec<Rv> {
        vec![Rv {
            rv: 1,
            seen: 0,
            fault_on: true,
        }]
    }
    fn actions(&self, _s: &Rv, out: &mut Vec<RvAct>) {
        out.extend([RvAct::Write, RvAct::Read, RvAct::StopWrites]);
    }
    fn next_state(&self, s: &Rv, a: &RvAct) -> Option<Rv> {
        let mut n = s.clone();
        match a {
            RvAct::Write if s.fault_on => n.rv += 1,
            RvAct::Read if s.seen != s.rv => n.seen = s.rv,
            RvAct::StopWrites if s.fault_on => n.fault_on = false,
            _ => return None,
        }
        Some(n)
    }
    fn fairness(&self, _s: &Rv, a: &RvAct) -> Fairness<RvAct> {
        match a {
            RvAct::Write => Fairness::Unfair,
            a => Fairness::Weak(*a),
        }
    }
    fn representative(&self, s: Rv) -> Rv {
        if !self.canonical {
            return s;
        }
        // order-preserving renaming of the values {seen, rv} into 0..
        let mut vals = vec![s.seen, s.rv];
        vals.sort();
        vals.dedup();
        let r = |v: u64| vals.iter().position(|x| *x == v).unwrap() as u64;
        Rv {
            rv: r(s.rv),
            seen: r(s.seen),
            fault_on: s.fault_on,
        }
    }
}

#[test]
fn counter_abstraction_makes_space_finite() {
    let up_to_date = || Property::eventually_always("reader catches up", |s: &Rv| s.seen == s.rv);
    let r = Checker::new(&RvMachine { canonical: false })
        .state_limit(10_000)
        .property(up_to_date())
        .run();
    assert!(
        matches!(r.verdict, Verdict::Incomplete { .. }),
        "unbounded counter must not be reported as holding"
    );
    let m = RvMachine { canonical: true };
    let r = Checker::new(&m).property(up_to_date()).run();
    assert!(r.complete);
    assert!(r.holds(), "{:?}", r.verdict);
    assert!(r.states <= 4, "{}", r.states);
}
