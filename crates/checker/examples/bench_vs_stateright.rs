//! Two-phase commit: anvil-checker vs Stateright on the same model, same run.
//!
//! `cargo run --release -p anvil-checker --example bench_vs_stateright -- 7 9`
//!
//! Each checker runs in its own child process (this binary re-executed) so
//! that the peak resident set size (`VmHWM`) of each is measured separately.
//! Both use all available cores and breadth-first search, no symmetry.
use anvil_checker::{Checker, models::TwoPhaseCommit};
use std::process::Command;
use std::time::Instant;

mod sr {
    use stateright::{Model, Property};
    use std::collections::BTreeSet;
    use std::ops::Range;

    type R = usize;
    #[derive(Clone)]
    pub struct TwoPhaseSys {
        pub rms: Range<R>,
    }
    #[derive(Clone, Debug, Eq, Hash, PartialEq)]
    pub struct TwoPhaseState {
        rm_state: Vec<RmState>,
        tm_state: TmState,
        tm_prepared: Vec<bool>,
        msgs: BTreeSet<Message>,
    }
    #[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
    enum Message {
        Prepared { rm: R },
        Commit,
        Abort,
    }
    #[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
    enum RmState {
        Working,
        Prepared,
        Committed,
        Aborted,
    }
    #[derive(Clone, Debug, Eq, Hash, PartialEq)]
    enum TmState {
        Init,
        Committed,
        Aborted,
    }
    #[derive(Clone, Debug, PartialEq)]
    pub enum Action {
        TmRcvPrepared(R),
        TmCommit,
        TmAbort,
        RmPrepare(R),
        RmChooseToAbort(R),
        RmRcvCommitMsg(R),
        RmRcvAbortMsg(R),
    }
    impl Model for TwoPhaseSys {
        type State = TwoPhaseState;
        type Action = Action;
        fn init_states(&self) -> Vec<Self::State> {
            vec![TwoPhaseState {
                rm_state: self.rms.clone().map(|_| RmState::Working).collect(),
                tm_state: TmState::Init,
                tm_prepared: self.rms.clone().map(|_| false).collect(),
                msgs: Default::default(),
            }]
        }
        fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
            if state.tm_state == TmState::Init && state.tm_prepared.iter().all(|p| *p) {
                actions.push(Action::TmCommit);
            }
            if state.tm_state == TmState::Init {
                actions.push(Action::TmAbort);
            }
            for rm in self.rms.clone() {
                if state.tm_state == TmState::Init && state.msgs.contains(&Message::Prepared { rm })
                {
                    actions.push(Action::TmRcvPrepared(rm));
                }
                if state.rm_state.get(rm) == Some(&RmState::Working) {
                    actions.push(Action::RmPrepare(rm));
                }
                if state.rm_state.get(rm) == Some(&RmState::Working) {
                    actions.push(Action::RmChooseToAbort(rm));
                }
                if state.msgs.contains(&Message::Commit) {
                    actions.push(Action::RmRcvCommitMsg(rm));
                }
                if state.msgs.contains(&Message::Abort) {
                    actions.push(Action::RmRcvAbortMsg(rm));
                }
            }
        }
        fn next_state(
            &self,
            last_state: &Self::State,
            action: Self::Action,
        ) -> Option<Self::State> {
            let mut state = last_state.clone();
            match action {
                Action::TmRcvPrepared(rm) => state.tm_prepared[rm] = true,
                Action::TmCommit => {
                    state.tm_state = TmState::Committed;
                    state.msgs.insert(Message::Commit);
                }
                Action::TmAbort => {
                    state.tm_state = TmState::Aborted;
                    state.msgs.insert(Message::Abort);
                }
                Action::RmPrepare(rm) => {
                    state.rm_state[rm] = RmState::Prepared;
                    state.msgs.insert(Message::Prepared { rm });
                }
                Action::RmChooseToAbort(rm) => state.rm_state[rm] = RmState::Aborted,
                Action::RmRcvCommitMsg(rm) => state.rm_state[rm] = RmState::Committed,
                Action::RmRcvAbortMsg(rm) => state.rm_state[rm] = RmState::Aborted,
            }
            Some(state)
        }
        fn properties(&self) -> Vec<Property<Self>> {
            vec![Property::<Self>::always("consistent", |_, state| {
                !state.rm_state.iter().any(|s1| {
                    state
                        .rm_state
                        .iter()
                        .any(|s2| s1 == &RmState::Aborted && s2 == &RmState::Committed)
                })
            })]
        }
    }
}

fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn child(which: &str, n: usize) {
    let t0 = Instant::now();
    let (unique, generated, depth) = match which {
        "anvil" => {
            let m = TwoPhaseCommit::new(n);
            let r = Checker::new(&m)
                .threads(threads())
                .property(TwoPhaseCommit::consistent())
                .run();
            assert!(r.holds());
            (r.states, r.transitions, r.max_depth)
        }
        "stateright" => {
            use stateright::{Checker as _, Model as _};
            let c = sr::TwoPhaseSys { rms: 0..n }
                .checker()
                .threads(threads())
                .spawn_bfs()
                .join();
            c.assert_properties();
            (
                c.unique_state_count() as u64,
                c.state_count() as u64,
                c.max_depth() as u64,
            )
        }
        _ => unreachable!(),
    };
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{{\"checker\":\"{which}\",\"rms\":{n},\"unique_states\":{unique},\"generated_states\":{generated},\"max_depth\":{depth},\"seconds\":{secs:.3},\"states_per_second\":{:.0},\"peak_rss_bytes\":{}}}",
        unique as f64 / secs,
        peak_rss()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--child" {
        child(&args[2], args[3].parse().unwrap());
        return;
    }
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|a| a.parse().unwrap()).collect()
    } else {
        vec![7, 9]
    };
    let exe = std::env::current_exe().unwrap();
    println!(
        "| RMs | checker | distinct states | generated | depth | seconds | distinct states/s | peak RSS (MiB) | bytes/state |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        for which in ["anvil", "stateright"] {
            let out = Command::new(&exe)
                .args(["--child", which, &n.to_string()])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            eprintln!("{line}");
            let get = |k: &str| -> f64 {
                let i = line.find(&format!("\"{k}\":")).unwrap() + k.len() + 3;
                line[i..].split([',', '}']).next().unwrap().parse().unwrap()
            };
            let (u, g, d, s, sps, rss) = (
                get("unique_states"),
                get("generated_states"),
                get("max_depth"),
                get("seconds"),
                get("states_per_second"),
                get("peak_rss_bytes"),
            );
            println!(
                "| {n} | {which} | {u:.0} | {g:.0} | {d:.0} | {s:.2} | {sps:.0} | {:.0} | {:.0} |",
                rss / 1048576.0,
                rss / u
            );
        }
    }
}
