//! `cargo run --release -p anvil-checker --example two_phase_commit -- N [THREADS] [--liveness]`
//!
//! Checks the consistency invariant of two-phase commit with N resource
//! managers (and, with `--liveness`, `<>[] all RMs decided` under weak
//! fairness, which makes the checker keep the reachable graph) and prints
//! one JSON line.
use anvil_checker::{Checker, models::TwoPhaseCommit};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let liveness = args.iter().any(|a| a == "--liveness");
    let nums: Vec<usize> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().expect("number"))
        .collect();
    let n = nums.first().copied().unwrap_or(3);
    let m = TwoPhaseCommit::new(n);
    let mut checker = Checker::new(&m).property(TwoPhaseCommit::consistent());
    if liveness {
        checker = checker.property(TwoPhaseCommit::eventually_all_decided());
    }
    if let Some(t) = nums.get(1) {
        checker = checker.threads(*t);
    }
    let r = checker.run();
    let j = r.summary_json();
    println!("{{\"rms\":{n},\"liveness\":{liveness},{}", &j[1..]);
}
