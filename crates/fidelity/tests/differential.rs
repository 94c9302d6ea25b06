//! Property-based differential test: generated request sequences run against the executable
//! API server model and a real kube-apiserver (one fresh namespace per sequence); every answer
//! and the final store contents must agree up to the normalisation and the known differences
//! listed in FIDELITY.md.
//!
//! `cargo test -p anvil-fidelity` runs 100 sequences; `ANVIL_FIDELITY_CASES=1000 cargo test
//! -p anvil-fidelity --release` runs 1,000. A failure prints the shrunk sequence and the trace
//! of both sides' answers up to the first difference.

use anvil_fidelity::run::Stats;
use anvil_fidelity::{DEFAULT_CASES, Harness, cases, ops};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::Mutex;
use std::time::Instant;

#[test]
fn model_agrees_with_the_real_api_server() {
    let h = Harness::get();
    let n = cases("ANVIL_FIDELITY_CASES", DEFAULT_CASES);
    let mut runner = TestRunner::new(Config {
        cases: n,
        max_shrink_iters: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let total = Mutex::new(Stats::default());
    let began = Instant::now();
    let result = runner.run(&ops::sequence(4..=24), |seq| {
        let stats = h.run_sequence(&seq).map_err(TestCaseError::fail)?;
        total.lock().unwrap().merge(&stats);
        Ok(())
    });
    let total = total.into_inner().unwrap();
    eprintln!(
        "{} sequences passed ({} requests) in {:?}\n  successes: {:?}\n  errors (same reason on both sides): {:?}\n  StatefulSet controller writes replayed: {}\n  known differences accepted (FIDELITY.md): {:?}",
        total.sequences,
        total.requests,
        began.elapsed(),
        total.successes,
        total.errors,
        total.builtin_writes,
        total.known
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
