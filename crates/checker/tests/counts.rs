use anvil_checker::models::*;
use anvil_checker::*;

#[test]
fn two_phase_commit_3() {
    let m = TwoPhaseCommit::new(3);
    let r = Checker::new(&m)
        .property(TwoPhaseCommit::consistent())
        .run();
    eprintln!("{}", r.summary_json());
    assert!(r.holds());
    assert_eq!((r.states, r.transitions, r.max_depth), (288, 1146, 11));
}

#[test]
fn two_phase_commit_5() {
    let m = TwoPhaseCommit::new(5);
    let r = Checker::new(&m)
        .property(TwoPhaseCommit::consistent())
        .run();
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

#[test]
fn safety_counterexample_is_shortest_and_valid() {
    let m = TwoPhaseCommit::new(3);
    let p = Property::always("nobody commits", |s: &TwoPhaseState| {
        !s.rm_state.contains(&RmState::Committed)
    });
    for (threads, live) in [(1, false), (2, false), (2, true)] {
        let mut c = Checker::new(&m).threads(threads).property(p.clone());
        if live {
            // a liveness property switches the engine to graph mode
            c = c.property(TwoPhaseCommit::eventually_all_decided());
        }
        let r = c.run();
        let cx = r.counterexample().expect("violated");
        // alone, the violated invariant stops the search (every property is
        // decided); with a liveness property the whole space is explored
        // (each property gets its own verdict)
        assert_eq!(r.complete, live);
        assert!(matches!(
            r.property("nobody commits"),
            Some(PropertyStatus::Violated(_))
        ));
        if live {
            assert!(matches!(
                r.property("all decided"),
                Some(PropertyStatus::Holds)
            ));
        }
        let Counterexample::Path { steps, .. } = cx else {
            panic!()
        };
        // 3 x RmPrepare, 3 x TmRcvPrepared, TmCommit, RmRcvCommitMsg: 8 steps
        assert_eq!(steps.len(), 9, "{cx:?}");
        validate(&m, &p, cx).unwrap();
    }
}

#[test]
fn state_limit_gives_incomplete_result() {
    let m = TwoPhaseCommit::new(5);
    let r = Checker::new(&m)
        .state_limit(1000)
        .property(TwoPhaseCommit::consistent())
        .run();
    assert!(!r.complete);
    assert!(!r.holds());
    let Verdict::Incomplete { reason } = &r.verdict else {
        panic!("{:?}", r.verdict)
    };
    assert!(reason.contains("state limit"), "{reason}");
    assert!(r.states >= 1000 && r.states < 8832);
    assert!(matches!(
        r.property("consistent"),
        Some(PropertyStatus::Unknown)
    ));
    // liveness too
    let r = Checker::new(&m)
        .state_limit(1000)
        .property(TwoPhaseCommit::eventually_all_decided())
        .run();
    assert!(matches!(r.verdict, Verdict::Incomplete { .. }));
}

#[test]
fn memory_limit_gives_incomplete_result() {
    let m = TwoPhaseCommit::new(5);
    let r = Checker::new(&m)
        .memory_limit(1)
        .property(TwoPhaseCommit::consistent())
        .run();
    let Verdict::Incomplete { reason } = &r.verdict else {
        panic!("{:?}", r.verdict)
    };
    assert!(reason.contains("memory limit"), "{reason}");
    assert!(!r.complete);
}

#[test]
fn progress_callback_is_called() {
    let m = TwoPhaseCommit::new(5);
    let mut calls = Vec::new();
    let r = Checker::new(&m).progress(|p| calls.push(p.clone())).run();
    assert!(r.holds());
    let last = calls.last().unwrap();
    assert_eq!(last.states, 8832);
    assert_eq!(last.transitions, 58146);
    assert_eq!(last.queue, 0);
}

#[test]
fn thread_counts_agree() {
    for n in [3, 4, 5] {
        let m = TwoPhaseCommit::new(n);
        let a = Checker::new(&m).threads(1).run();
        let b = Checker::new(&m).threads(2).run();
        let c = Checker::new(&m)
            .threads(2)
            .property(TwoPhaseCommit::eventually_all_decided())
            .run();
        assert_eq!(
            (a.states, a.transitions, a.max_depth),
            (b.states, b.transitions, b.max_depth)
        );
        assert_eq!(
            (a.states, a.transitions, a.max_depth),
            (c.states, c.transitions, c.max_depth)
        );
        assert!(c.holds());
    }
}

#[test]
fn progress_reports_liveness_phase() {
    let m = TwoPhaseCommit::new(3);
    let mut phases = Vec::new();
    let r = Checker::new(&m)
        .property(TwoPhaseCommit::eventually_all_decided())
        .progress(|p| phases.push(p.phase))
        .run();
    assert!(r.holds());
    assert_eq!(phases.last(), Some(&"liveness"));
}

/// Exact counts on a space large enough that the seen table's shards grow many times while
/// two workers insert into them (with prefetching), for safety-only runs (values: parent
/// fingerprints) and liveness runs (values: dense ids); Stateright and TLC give 296,448 states
/// for 7 RMs.
#[test]
fn two_phase_commit_7_with_two_workers() {
    let m = TwoPhaseCommit::new(7);
    let r = Checker::new(&m)
        .property(TwoPhaseCommit::consistent())
        .threads(2)
        .run();
    assert!(r.holds());
    assert_eq!(
        (r.states, r.transitions, r.max_depth),
        (296_448, 2_744_706, 23)
    );
    let r = Checker::new(&m)
        .property(TwoPhaseCommit::consistent())
        .property(TwoPhaseCommit::eventually_all_decided())
        .threads(2)
        .run();
    assert!(r.holds());
    assert!(r.complete);
    assert_eq!(r.states, 296_448);
}
