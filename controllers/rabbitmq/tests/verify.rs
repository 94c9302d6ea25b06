//! The checks behind `anvil verify rabbitmq` and its broken variants, on scopes small enough
//! for a test (the default scope is measured in `README.md`): each broken variant is caught
//! with a validated counterexample on the smallest scope that exposes it, and the controller
//! holds on small scopes.
//!
//! The scope that exposes `rabbitmq-stale-scale-down` needs a crash with a stale request in
//! flight and an edit, and its counterexample is deep, so a breadth-first search explores
//! nearly all of it. With the model's eager steps it fits the test command (about 15 s each
//! for it and for the correct controller on the same scope; they were release-only before).
//! The mechanism is also replayed by hand by `tests/reconcile.rs`
//! (`a_stale_update_scales_down_only_when_it_is_unconditional`).

use anvil_cluster_model::esr::{CheckOptions, ESR, NO_FOREIGN_WRITES};
use anvil_cluster_model::render::trace_text;
use anvil_cluster_model::{Faults, Report, Scope};
use anvil_rabbitmq::RabbitmqController;
use anvil_rabbitmq::broken::{
    ConfigNoRoll, CookieRotation, StaleScaleDown, config_no_roll_scope, cookie_rotation_scope,
    stale_scale_down_scope,
};
use anvil_rabbitmq::verify::{
    REPLICAS_NEVER_DECREASE, SECRETS_NEVER_ROTATED, default_scope, verify_reconciler,
};
use serde_json::json;

fn show(r: &Report) {
    println!("{}", r.scope);
    if let Some(e) = &r.config_error {
        println!("configuration error: {e}");
    }
    for p in &r.results {
        println!(
            "{} {} complete={} states={} transitions={} {:.2}s",
            p.property, p.verdict, p.complete, p.states, p.transitions, p.seconds
        );
        if let Some(t) = &p.counterexample {
            println!("{}", trace_text(t));
        }
    }
}

fn scope(specs: Vec<serde_json::Value>, edits: u8, faults: Faults, stale: usize) -> Scope {
    let mut s = default_scope();
    s.specs = specs;
    s.max_edits = edits;
    s.faults = faults;
    s.max_stale_requests = stale;
    s
}

/// Created with 1 replica, edited once to 2 replicas; crashes and drops, with no request in
/// flight at a crash (no stale request).
fn scale_with_faults() -> Scope {
    scope(
        vec![json!({"replicas": 1}), json!({"replicas": 2})],
        1,
        Faults {
            crash: true,
            drop: true,
            ..Faults::default()
        },
        0,
    )
}

/// Created with 1 replica, edited once to 2 replicas; crashes; 1 stale request (the scope of
/// `anvil verify rabbitmq-stale-scale-down`).
fn scale_with_crashes() -> Scope {
    stale_scale_down_scope()
}

/// Created with 1 replica, edited once to a configuration change; no faults (the scope of
/// `anvil verify rabbitmq-config-no-roll`).
fn config_change() -> Scope {
    config_no_roll_scope()
}

fn assert_violated(r: &Report, property: &str, trace_mentions: &str) {
    let p = r
        .result(property)
        .unwrap_or_else(|| panic!("no {property}"));
    assert_eq!(p.verdict, "violated", "{property}");
    assert_eq!(
        p.counterexample_validated,
        Some(true),
        "{:?}",
        p.validation_error
    );
    let trace = trace_text(p.counterexample.as_ref().unwrap());
    assert!(trace.contains(trace_mentions), "{trace}");
}

#[test]
fn the_controller_holds_on_the_small_scopes() {
    for s in [config_change(), scale_with_faults()] {
        let r = verify_reconciler::<RabbitmqController>("rabbitmq", s, &CheckOptions::default());
        show(&r);
        assert!(r.holds(), "every property holds");
        assert!(r.results.iter().all(|p| p.complete));
    }
}

#[test]
fn the_controller_holds_with_a_stale_request() {
    let r = verify_reconciler::<RabbitmqController>(
        "rabbitmq",
        scale_with_crashes(),
        &CheckOptions::default(),
    );
    show(&r);
    assert!(r.holds(), "every property holds");
    assert!(r.results.iter().all(|p| p.complete));
}

#[test]
fn stale_scale_down_is_caught() {
    let r = verify_reconciler::<StaleScaleDown>(
        "rabbitmq-stale-scale-down",
        scale_with_crashes(),
        &CheckOptions::default(),
    );
    show(&r);
    assert_violated(&r, REPLICAS_NEVER_DECREASE, "StatefulSet");
    let trace = trace_text(
        r.result(REPLICAS_NEVER_DECREASE)
            .unwrap()
            .counterexample
            .as_ref()
            .unwrap(),
    );
    assert!(trace.to_lowercase().contains("crash"), "{trace}");
    assert_eq!(r.result(NO_FOREIGN_WRITES).unwrap().verdict, "holds");
}

#[test]
fn cookie_rotation_is_caught() {
    // no faults, no edits: the second reconcile already rotates the cookie
    let s = cookie_rotation_scope();
    let r = verify_reconciler::<CookieRotation>(
        "rabbitmq-cookie-rotation",
        s,
        &CheckOptions::default(),
    );
    show(&r);
    assert_violated(&r, SECRETS_NEVER_ROTATED, "erlang-cookie");
    assert_eq!(
        r.result(ESR).unwrap().verdict,
        "holds",
        "ESR alone cannot see it"
    );
}

#[test]
fn config_change_without_roll_is_caught() {
    let r = verify_reconciler::<ConfigNoRoll>(
        "rabbitmq-config-no-roll",
        config_change(),
        &CheckOptions::default(),
    );
    show(&r);
    let esr = r.result(ESR).unwrap();
    assert_eq!(esr.verdict, "violated");
    assert_eq!(
        esr.counterexample_validated,
        Some(true),
        "{:?}",
        esr.validation_error
    );
    // without the configuration change the variant converges
    let s = scope(
        vec![json!({"replicas": 1}), json!({"replicas": 2})],
        1,
        Faults::default(),
        0,
    );
    let r =
        verify_reconciler::<ConfigNoRoll>("rabbitmq-config-no-roll", s, &CheckOptions::default());
    show(&r);
    assert!(r.holds());
}

#[test]
fn a_scope_the_crd_rejects_is_a_configuration_error() {
    let s = scope(vec![json!({"replicas": -1})], 0, Faults::default(), 0);
    let r = verify_reconciler::<RabbitmqController>("rabbitmq", s, &CheckOptions::default());
    let e = r.config_error.expect("rejected");
    assert!(e.contains("replicas must be non-negative"), "{e}");
}
