//! Reference models used by the validation suite, the example and the
//! benchmark.

use crate::machine::{Fairness, Machine};
use crate::property::Property;
use std::collections::BTreeSet;

/// State of a resource manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RmState {
    /// Working.
    Working,
    /// Prepared.
    Prepared,
    /// Committed.
    Committed,
    /// Aborted.
    Aborted,
}

/// State of the transaction manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TmState {
    /// Init.
    Init,
    /// Committed.
    Committed,
    /// Aborted.
    Aborted,
}

/// A message of two-phase commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Message {
    /// RM `rm` is prepared.
    Prepared(usize),
    /// TM decided commit.
    Commit,
    /// TM decided abort.
    Abort,
}

/// State of [`TwoPhaseCommit`] (same layout as Stateright's `2pc` example).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseState {
    /// Per-RM state.
    pub rm_state: Vec<RmState>,
    /// TM state.
    pub tm_state: TmState,
    /// Which RMs the TM knows to be prepared.
    pub tm_prepared: Vec<bool>,
    /// Messages sent (never removed).
    pub msgs: BTreeSet<Message>,
}

/// Actions of [`TwoPhaseCommit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TwoPhaseAction {
    /// TM receives `Prepared(rm)`.
    TmRcvPrepared(usize),
    /// TM commits.
    TmCommit,
    /// TM aborts.
    TmAbort,
    /// RM prepares.
    RmPrepare(usize),
    /// RM spontaneously aborts.
    RmChooseToAbort(usize),
    /// RM receives Commit.
    RmRcvCommitMsg(usize),
    /// RM receives Abort.
    RmRcvAbortMsg(usize),
}

/// Two-phase commit, as in TLA+'s `TwoPhase` spec and Stateright's `2pc`
/// example: 3 RMs give 288 distinct states (1,146 generated, depth 11),
/// 5 give 8,832, 7 give 296,448, 9 give 10,340,352.
///
/// Fairness (only used by liveness properties): every action is weakly fair
/// per action instance, except `RmChooseToAbort`, which is unfair (a fault).
#[derive(Clone, Debug)]
pub struct TwoPhaseCommit {
    /// Number of resource managers.
    pub rms: usize,
    /// If false, all actions are unfair (used to show a property needs
    /// fairness).
    pub fair: bool,
}

impl TwoPhaseCommit {
    /// `n` resource managers, with fairness.
    pub fn new(n: usize) -> Self {
        TwoPhaseCommit { rms: n, fair: true }
    }
    /// The consistency invariant: no RM committed while another aborted.
    pub fn consistent() -> Property<Self> {
        Property::always("consistent", |s: &TwoPhaseState| {
            !(s.rm_state.contains(&RmState::Aborted) && s.rm_state.contains(&RmState::Committed))
        })
    }
    /// `<>[]` all RMs decided (committed or aborted) -- holds under weak fairness.
    pub fn eventually_all_decided() -> Property<Self> {
        Property::eventually_always("all decided", |s: &TwoPhaseState| {
            s.rm_state
                .iter()
                .all(|r| matches!(r, RmState::Committed | RmState::Aborted))
        })
    }
}

impl Machine for TwoPhaseCommit {
    type State = TwoPhaseState;
    type Action = TwoPhaseAction;
    type FairnessKey = TwoPhaseAction;

    fn init_states(&self) -> Vec<TwoPhaseState> {
        vec![TwoPhaseState {
            rm_state: vec![RmState::Working; self.rms],
            tm_state: TmState::Init,
            tm_prepared: vec![false; self.rms],
            msgs: BTreeSet::new(),
        }]
    }

    fn actions(&self, s: &TwoPhaseState, out: &mut Vec<TwoPhaseAction>) {
        use TwoPhaseAction::*;
        if s.tm_state == TmState::Init && s.tm_prepared.iter().all(|p| *p) {
            out.push(TmCommit);
        }
        if s.tm_state == TmState::Init {
            out.push(TmAbort);
        }
        for rm in 0..self.rms {
            if s.tm_state == TmState::Init && s.msgs.contains(&Message::Prepared(rm)) {
                out.push(TmRcvPrepared(rm));
            }
            if s.rm_state[rm] == RmState::Working {
                out.push(RmPrepare(rm));
                out.push(RmChooseToAbort(rm));
            }
            if s.msgs.contains(&Message::Commit) {
                out.push(RmRcvCommitMsg(rm));
            }
            if s.msgs.contains(&Message::Abort) {
                out.push(RmRcvAbortMsg(rm));
            }
        }
    }

    fn next_state(&self, last: &TwoPhaseState, a: &TwoPhaseAction) -> Option<TwoPhaseState> {
        use TwoPhaseAction::*;
        let mut s = last.clone();
        match *a {
            TmRcvPrepared(rm) => s.tm_prepared[rm] = true,
            TmCommit => {
                s.tm_state = TmState::Committed;
                s.msgs.insert(Message::Commit);
            }
            TmAbort => {
                s.tm_state = TmState::Aborted;
                s.msgs.insert(Message::Abort);
            }
            RmPrepare(rm) => {
                s.rm_state[rm] = RmState::Prepared;
                s.msgs.insert(Message::Prepared(rm));
            }
            RmChooseToAbort(rm) => s.rm_state[rm] = RmState::Aborted,
            RmRcvCommitMsg(rm) => s.rm_state[rm] = RmState::Committed,
            RmRcvAbortMsg(rm) => s.rm_state[rm] = RmState::Aborted,
        }
        Some(s)
    }

    fn fairness(&self, _s: &TwoPhaseState, a: &TwoPhaseAction) -> Fairness<TwoPhaseAction> {
        match a {
            _ if !self.fair => Fairness::Unfair,
            TwoPhaseAction::RmChooseToAbort(_) => Fairness::Unfair,
            _ => Fairness::Weak(*a),
        }
    }
}

/// TLA+'s `TCommit` spec (the abstract transaction commit): 3 RMs give 34
/// distinct states, 94 generated, depth 7.
#[derive(Clone, Debug)]
pub struct TCommit {
    /// Number of resource managers.
    pub rms: usize,
}

/// Actions of [`TCommit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TCommitAction {
    /// `Prepare(rm)`.
    Prepare(usize),
    /// First disjunct of `Decide(rm)`: commit.
    DecideCommit(usize),
    /// Second disjunct of `Decide(rm)`: abort.
    DecideAbort(usize),
}

impl Machine for TCommit {
    type State = Vec<RmState>;
    type Action = TCommitAction;
    type FairnessKey = TCommitAction;

    fn init_states(&self) -> Vec<Vec<RmState>> {
        vec![vec![RmState::Working; self.rms]]
    }
    fn actions(&self, _s: &Vec<RmState>, out: &mut Vec<TCommitAction>) {
        for rm in 0..self.rms {
            out.push(TCommitAction::Prepare(rm));
            out.push(TCommitAction::DecideCommit(rm));
            out.push(TCommitAction::DecideAbort(rm));
        }
    }
    fn next_state(&self, s: &Vec<RmState>, a: &TCommitAction) -> Option<Vec<RmState>> {
        let mut n = s.clone();
        match *a {
            TCommitAction::Prepare(rm) => {
                if s[rm] != RmState::Working {
                    return None;
                }
                n[rm] = RmState::Prepared;
            }
            TCommitAction::DecideCommit(rm) => {
                let can_commit = s
                    .iter()
                    .all(|r| matches!(r, RmState::Prepared | RmState::Committed));
                if s[rm] != RmState::Prepared || !can_commit {
                    return None;
                }
                n[rm] = RmState::Committed;
            }
            TCommitAction::DecideAbort(rm) => {
                let not_committed = s.iter().all(|r| *r != RmState::Committed);
                if !matches!(s[rm], RmState::Working | RmState::Prepared) || !not_committed {
                    return None;
                }
                n[rm] = RmState::Aborted;
            }
        }
        Some(n)
    }
    fn fairness(&self, _s: &Vec<RmState>, a: &TCommitAction) -> Fairness<TCommitAction> {
        Fairness::Weak(*a)
    }
}
