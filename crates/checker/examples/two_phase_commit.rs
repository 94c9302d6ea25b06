//! `cargo run --release -p anvil-checker --example two_phase_commit -- N [THREADS]`
//!
//! Checks the consistency invariant of two-phase commit with N resource
//! managers and prints one JSON line.
use anvil_checker::{Checker, models::TwoPhaseCommit};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N"))
        .unwrap_or(3);
    let m = TwoPhaseCommit::new(n);
    let mut checker = Checker::new(&m).property(TwoPhaseCommit::consistent());
    if let Some(t) = std::env::args().nth(2) {
        checker = checker.threads(t.parse().expect("THREADS"));
    }
    let r = checker.run();
    let j = r.summary_json();
    println!("{{\"rms\":{n},{}", &j[1..]);
}
