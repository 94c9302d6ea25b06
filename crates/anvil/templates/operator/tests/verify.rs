//! Verification from `cargo test`: the same check as `{{name}} verify website`, and the
//! checker catching a deliberately broken variant.

use anvil::model::esr::CheckOptions;
use anvil::reconciler::NoExternal;
use anvil::reconciler::chain::{ChainReconciler, Step};
use anvil::testing::{assert_holds, assert_violated};
use {{crate}}::Website;
use {{crate}}::reconciler::STEPS;
use {{crate}}::verify::{check_reconciler, default_scope};

/// ESR and every safety invariant hold within the default scope (on failure the report is
/// printed, with a counterexample).
#[test]
fn website_verifies_at_its_default_scope() {
    let report = {{crate}}::controller().verify(&CheckOptions::default());
    assert_holds(&report);
}

/// A broken variant: the chain without its status step never writes the status.
struct NoStatus;

impl ChainReconciler for NoStatus {
    type R = Website;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<Website, NoExternal, NoExternal>] {
        &STEPS[..2]
    }
}

/// The checker catches it, with a counterexample: the cluster never matches the `Website`.
#[test]
fn a_controller_that_never_writes_the_status_is_caught() {
    let mut scope = default_scope();
    scope.max_edits = 0;
    scope.specs.truncate(1);
    let report = check_reconciler::<NoStatus>("website-no-status", scope, &CheckOptions::default());
    assert_violated(&report, "esr");
}
