//! Verification from `cargo test`: assertions on a verification [`Report`] that print the whole
//! report -- scope, coverage, every verdict and each counterexample step by step -- when they
//! fail.
//!
//! ```no_run
//! # fn my_controller() -> anvil::Controller { unimplemented!() }
//! use anvil::model::esr::CheckOptions;
//!
//! #[test]
//! fn esr_holds_at_the_default_scope() {
//!     let report = my_controller().verify(&CheckOptions::default());
//!     anvil::testing::assert_holds(&report);
//! }
//! ```

use crate::verify::{EXIT_HOLDS, exit_code, report_text};
use anvil_cluster_model::esr::Report;

/// Panics, printing the report (and its counterexamples), unless every property holds after a
/// complete search with full coverage (no violation, nothing vacuous or incomplete, no
/// configuration error): exactly when `verify` would exit with code 0.
#[track_caller]
pub fn assert_holds(report: &Report) {
    if exit_code(report) != EXIT_HOLDS {
        panic!(
            "`{}` does not verify ({}):\n{}",
            report.controller,
            verdict(report),
            report_text(report)
        );
    }
}

/// Panics, printing the report, unless `property` (e.g. `"esr"`, `"no_foreign_writes"`) is
/// violated with a counterexample: for tests that a deliberately broken variant is caught.
#[track_caller]
pub fn assert_violated(report: &Report, property: &str) {
    let caught = report
        .result(property)
        .is_some_and(|p| p.verdict == "violated" && p.counterexample.is_some());
    if !caught {
        let known: Vec<_> = report.results.iter().map(|p| p.property.as_str()).collect();
        panic!(
            "`{}`: expected property `{property}` to be violated with a counterexample \
             (properties: {}):\n{}",
            report.controller,
            known.join(", "),
            report_text(report)
        );
    }
}

/// One word for the report's overall outcome.
fn verdict(r: &Report) -> &'static str {
    if r.config_error.is_some() {
        "configuration error"
    } else if r.violated() {
        "a property is violated"
    } else if r.vacuous() {
        "a property is vacuous"
    } else {
        "the search was incomplete"
    }
}
