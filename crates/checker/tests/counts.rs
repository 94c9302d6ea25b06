use anvil_checker::models::*;
use anvil_checker::*;

#[test]
fn two_phase_commit_3() {
    let m = TwoPhaseCommit::new(3);
    let r = Checker::new(&m).property(TwoPhaseCommit::consistent()).run();
    eprintln!("{}", r.summary_json());
    assert!(r.holds());
    assert_eq!((r.states, r.transitions, r.max_depth), (288, 1146, 11));
}

#[test]
fn two_phase_commit_5() {
    let m = TwoPhaseCommit::new(5);
    let r = Checker::new(&m).property(TwoPhaseCommit::consistent()).run();
    assert!(r.holds());
    assert_eq!(r.states, 8832);
}

#[test]
fn tcommit_3() {
    let m = TCommit { rms: 3 };
    let r = Checker::new(&m).run();
    eprintln!("{}", r.summary_json());
    assert!(r.holds());
    assert_eq!((r.states, r.transitions, r.max_depth), (34, 94, 7));
}
