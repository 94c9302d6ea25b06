//! `verify` in-process: the demo holds, every broken variant is caught with a counterexample
//! the trace validator accepts.

use anvil::registry;
use anvil_cluster_model::esr::CheckOptions;
use anvil_cluster_model::{Faults, Scope};
use anvil_demo::DemoController;
use anvil_demo::verify::{default_scope, verify_reconciler};

fn reduced_demo_scope() -> Scope {
    // The default scope with one edit, one stale request, Timeout-only failures, no lost
    // responses and no other writer, to keep the dev-profile test short; the full default
    // scope is checked by `anvil verify demo` (see the report in BENCHMARKS).
    let mut s = default_scope();
    s.faults.transient = false;
    s.faults.lost_response = false;
    s.faults.other_updates = 0;
    s.max_edits = 1;
    s.max_stale_requests = 1;
    s
}

#[test]
fn demo_holds() {
    let r =
        verify_reconciler::<DemoController>("demo", reduced_demo_scope(), &CheckOptions::default());
    for p in &r.results {
        assert_eq!(p.verdict, "holds", "{}: {:?}", p.property, p.counterexample);
        assert!(p.complete);
    }
}

#[test]
fn demo_holds_with_delete_and_recreate() {
    // crashes and one stale request: small enough for the dev profile (`anvil verify
    // demo-recreate` adds every other fault of the default scope)
    let mut s = anvil_demo::verify::recreate_scope();
    s.faults = Faults {
        crash: true,
        ..Faults::default()
    };
    s.max_stale_requests = 1;
    let r = verify_reconciler::<DemoController>("demo", s, &CheckOptions::default());
    assert!(r.holds(), "{:?}", r.results);
}

fn caught(name: &str, property: &str) {
    let c = registry::find(name).expect("registered");
    // A known bug only needs its counterexample: stop at the first safety violation (ESR
    // variants are liveness violations and still explore everything).
    let r = c.verify(&CheckOptions {
        stop_at_first_violation: true,
        ..Default::default()
    });
    let p = r.result(property).expect("property");
    assert_eq!(p.verdict, "violated", "{name}");
    assert_eq!(
        p.counterexample_validated,
        Some(true),
        "{name}: {:?}",
        p.validation_error
    );
    assert!(p.counterexample.is_some());
}

#[test]
fn stale_update_is_caught() {
    caught("demo-stale-update", "no_lost_updates");
}

#[test]
fn already_exists_fatal_is_caught() {
    caught("demo-alreadyexists-fatal", "esr");
}

#[test]
fn adopt_orphan_is_caught() {
    caught("demo-adopt-orphan", "no_foreign_writes");
}

#[test]
fn no_done_on_failure_is_caught() {
    caught("demo-no-done-on-failure", "esr");
}

#[test]
fn fluent_early_daemonset_is_caught() {
    caught("fluent-early-daemonset", "esr:fluent-bit");
}

/// The FluentBitConfig controller that writes the FluentBit's DaemonSet breaks both
/// non-interference invariants (and reads a kind it does not declare); every property gets
/// its own verdict and validated counterexample.
#[test]
fn fluent_config_writes_daemonset_is_caught() {
    let c = registry::find("fluent-config-writes-daemonset").expect("registered");
    let r = c.verify(&CheckOptions::default());
    for property in [
        "no_foreign_writes:fluentbit-config",
        "no_shared_writes",
        "declared_reads:fluentbit-config",
    ] {
        let p = r.result(property).expect("property");
        assert_eq!(p.verdict, "violated", "{property}");
        assert_eq!(p.counterexample_validated, Some(true), "{property}");
    }
    for property in ["no_foreign_writes:fluentbit", "declared_reads:fluentbit"] {
        assert_eq!(r.result(property).expect("property").verdict, "holds");
    }
}
