//! The checks behind `anvil verify fluent`, `fluentbit`, `fluentbit-config` and the broken
//! variants, on scopes small enough for a debug-build test (the default scopes are measured in
//! the controller's README): both controllers hold together and alone, each broken variant
//! is caught with a validated counterexample naming the violated property, and a scope that
//! does not fit the set is a configuration error.

use anvil_cluster_model::esr::CheckOptions;
use anvil_cluster_model::render::trace_text;
use anvil_cluster_model::{Faults, Report, Scope};
use anvil_fluent::verify::{
    self, broken_scope, fluent_scope, verify_config, verify_config_writes_daemon_set,
    verify_early_daemon_set, verify_fluent, verify_fluent_bit,
};
use anvil_fluent::{FluentBitConfigController, FluentBitController};

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

fn holds(r: &Report) {
    show(r);
    assert!(r.config_error.is_none(), "{:?}", r.config_error);
    for p in &r.results {
        assert_eq!(p.verdict, "holds", "{}", p.property);
        assert!(p.complete);
    }
    let cov = r.coverage.as_ref().expect("coverage");
    assert!(cov.gaps().is_empty(), "{:?}", cov.gaps());
}

fn caught(r: &Report, property: &str, mentions: &str) {
    show(r);
    let p = r
        .result(property)
        .unwrap_or_else(|| panic!("no property {property}"));
    assert_eq!(p.verdict, "violated", "{property}");
    assert_eq!(
        p.counterexample_validated,
        Some(true),
        "{:?}",
        p.validation_error
    );
    let text = trace_text(p.counterexample.as_ref().expect("a counterexample"));
    assert!(text.contains(mentions), "{mentions} not in\n{text}");
}

/// Both controllers in one model, each custom resource created once, no faults.
fn no_faults() -> Scope {
    let s = broken_scope();
    assert_eq!(s.faults, Faults::default());
    assert_eq!(s.specs, fluent_scope().specs[..1]);
    s
}

#[test]
fn both_controllers_hold_together_without_faults() {
    let r = verify_fluent("fluent", no_faults(), &CheckOptions::default());
    holds(&r);
    let names: Vec<&str> = r.results.iter().map(|p| p.property.as_str()).collect();
    for expected in [
        "esr:fluent-bit",
        "esr:fluent-bit-config",
        "object_bound",
        "no_foreign_writes:fluentbit",
        "no_foreign_writes:fluentbit-config",
        "no_shared_writes",
        "declared_reads:fluentbit",
        "declared_reads:fluentbit-config",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    let text = r.scope.to_string();
    assert!(text.contains("controller fluentbit-config"), "{text}");
}

#[test]
fn both_controllers_hold_together_with_crashes() {
    let mut s = no_faults();
    s.faults.crash = true;
    s.max_stale_requests = 1;
    holds(&verify_fluent("fluent", s, &CheckOptions::default()));
}

/// An edit of the configuration (a new flush interval, whose hash must reach the DaemonSet's
/// pod template: the pods roll) under crashes of each controller and a stale request. (One
/// edit of each custom resource under every fault class is `anvil verify fluent`.)
#[test]
fn both_controllers_hold_together_with_a_configuration_edit() {
    let mut s = verify::fluent_scope();
    s.specs.truncate(1);
    s.max_edits = 0;
    s.faults = Faults {
        crash: true,
        ..Faults::default()
    };
    s.max_stale_requests = 1;
    let r = verify_fluent("fluent", s, &CheckOptions::default());
    holds(&r);
    assert_eq!(r.coverage.as_ref().unwrap().specs.len(), 3);
}

#[test]
fn the_fluent_bit_controller_holds_alone() {
    let mut s = verify::fluent_bit_scope();
    s.faults = Faults::default();
    s.max_edits = 1;
    holds(&verify_fluent_bit::<FluentBitController>(
        "fluentbit",
        s,
        &CheckOptions::default(),
    ));
}

#[test]
fn the_config_controller_holds_alone() {
    let mut s = verify::config_scope();
    s.max_edits = 1;
    holds(&verify_config(
        "fluentbit-config",
        s,
        &CheckOptions::default(),
    ));
}

#[test]
fn a_daemonset_created_before_its_config_is_caught() {
    let r = verify_early_daemon_set(broken_scope(), &CheckOptions::default());
    caught(&r, "esr:fluent-bit", "DaemonSet");
    assert!(r.violated());
}

#[test]
fn a_config_controller_writing_the_daemonset_is_caught() {
    let r = verify_config_writes_daemon_set(no_faults(), &CheckOptions::default());
    caught(&r, "no_foreign_writes:fluentbit-config", "DaemonSet");
    caught(&r, "no_shared_writes", "DaemonSet");
}

#[test]
fn a_scope_that_does_not_fit_the_set_is_a_configuration_error() {
    let mut s = no_faults();
    s.others.clear();
    let r = verify_fluent("fluent", s, &CheckOptions::default());
    let e = r.config_error.expect("a configuration error");
    assert!(e.contains("2 members"), "{e}");
    assert!(r.results.is_empty());
    let mut bad = no_faults();
    bad.specs = vec![serde_json::json!({"fluentBitConfigName": ""})];
    let r = verify_fluent("fluent", bad, &CheckOptions::default());
    let e = r.config_error.expect("a configuration error");
    assert!(e.contains("fluentBitConfigName must not be empty"), "{e}");
}

/// The controller-set machine with one member explores exactly the states of the
/// single-controller machine (same runtime, faults and reductions), here on the
/// FluentBitConfig controller with crashes, drops and other writers.
#[test]
fn a_set_of_one_explores_the_same_states_as_the_single_machine() {
    use anvil_checker::Checker;
    use anvil_cluster_model::model::set_machine::SetMachine;
    use anvil_cluster_model::{ClusterMachine, NoExternalModel};
    let s = verify::config_scope();
    let single = ClusterMachine::<FluentBitConfigController, NoExternalModel>::new(
        verify::kinds(),
        s.clone(),
        NoExternalModel,
    );
    let set = SetMachine::<FluentBitConfigController, NoExternalModel>::new(
        verify::kinds(),
        s,
        NoExternalModel,
    )
    .expect("a set of one");
    let a = Checker::new(&single).run();
    let b = Checker::new(&set).run();
    assert!(a.complete && b.complete);
    assert_eq!(a.states, b.states);
    assert_eq!(a.transitions, b.transitions);
}

type Check = fn(Scope, &CheckOptions) -> Report;

/// Checks `scope` with and without the model's reductions and asserts the same verdict for
/// every property, with no more states reduced; returns the reduced and the full report.
fn same_verdicts_with_and_without_reductions(
    name: &str,
    check: Check,
    s: &Scope,
) -> (Report, Report) {
    let reduced = check(s.clone(), &CheckOptions::default());
    let full = check(
        s.clone(),
        &CheckOptions {
            no_reductions: true,
            ..Default::default()
        },
    );
    let verdicts = |r: &Report| {
        r.results
            .iter()
            .map(|p| (p.property.clone(), p.verdict.clone(), p.complete))
            .collect::<Vec<_>>()
    };
    println!(
        "{name}: {} states reduced, {} without reductions",
        reduced.results[0].states, full.results[0].states
    );
    assert_eq!(verdicts(&reduced), verdicts(&full), "{name}");
    assert!(reduced.results[0].states <= full.results[0].states);
    (reduced, full)
}

/// The pair holds every property on `s` with and without the reductions, with fewer states
/// reduced.
fn the_pair_holds_with_fewer_states_reduced(s: &Scope) {
    let fluent: Check = |s, o| verify_fluent("fluent", s, o);
    let (reduced, full) = same_verdicts_with_and_without_reductions("fluent", fluent, s);
    assert!(
        reduced
            .results
            .iter()
            .all(|p| p.verdict == "holds" && p.complete)
    );
    assert!(reduced.results[0].states < full.results[0].states);
}

/// The model's reductions stay verdict-preserving with two controllers: every property gets
/// the same verdict with and without them (crashes of each controller and dropped requests,
/// no stale request), for the pair and for a broken variant.
#[test]
fn the_reductions_keep_every_verdict_with_two_controllers() {
    let mut s = no_faults();
    s.faults.crash = true;
    s.faults.drop = true;
    let fluent: Check = |s, o| verify_fluent("fluent", s, o);
    for (name, check) in [
        ("fluent", fluent),
        ("fluent-early-daemonset", verify_early_daemon_set as Check),
        (
            "fluent-config-writes-daemonset",
            verify_config_writes_daemon_set as Check,
        ),
    ] {
        same_verdicts_with_and_without_reductions(name, check, &s);
    }
}

/// The same with a stale request (crashes of each controller, no drops), where the reductions
/// also forget doomed stale requests (`anvil_cluster_model::model::stale`) and
/// `no_shared_writes` ignores stale writes that would fail, and the order of tokens is
/// forgotten: the pair only (2,288 states reduced, 315,844 without; the broken variants pass 2
/// million states unreduced).
#[test]
fn the_reductions_keep_every_verdict_with_two_controllers_and_a_stale_request() {
    let mut s = no_faults();
    s.faults.crash = true;
    s.max_stale_requests = 1;
    the_pair_holds_with_fewer_states_reduced(&s);
}

/// The same with a deletion: the FluentBitConfig deleted and re-created once, no faults, so
/// its Secret is the garbage collector's, whose judgement the reductions take together with
/// its delete (`anvil_cluster_model::model::gc`) in the controller-set machine too (1,136
/// states reduced, 225,191 without).
#[test]
fn the_reductions_keep_every_verdict_with_two_controllers_and_a_delete() {
    let mut s = no_faults();
    s.others[0].max_deletes = 1;
    the_pair_holds_with_fewer_states_reduced(&s);
}

/// The canonical renaming of tokens is a bisimulation on the two controllers in one model:
/// non-canonical copies of reachable states (tokens permuted at random onto numbers with
/// gaps, since the model forgets the order of tokens; order-preservingly without the
/// reductions) give the same canonical successors and fairness keys, at the default scope
/// (one edit of each custom resource, every fault class, two stale requests).
#[test]
fn renaming_tokens_is_a_bisimulation_with_two_controllers() {
    use anvil_cluster_model::NoExternalModel;
    use anvil_cluster_model::model::set_machine::SetMachine;
    use anvil_cluster_model::tokens::check_set_renaming_bisimulation;
    for (reduce, limit) in [(true, 1500), (false, 400)] {
        let m = SetMachine::<verify::Fluent, NoExternalModel>::new(
            verify::kinds(),
            fluent_scope(),
            NoExternalModel,
        )
        .expect("the pair's scope")
        .with_reductions(reduce);
        let r = check_set_renaming_bisimulation(&m, limit).unwrap_or_else(|e| panic!("{e}"));
        println!("reductions {reduce}: {r:?}");
        assert_eq!(r.states, limit);
        assert!(r.renamed_states * 10 >= r.states * 9, "{r:?}");
        assert!(r.max_tokens >= 5, "{r:?}");
    }
}
