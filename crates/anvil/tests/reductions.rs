//! The model's reductions (fault switches turned off in a fixed order, spent switches off,
//! reads of a crashed controller dropped) never change a verdict: every property of every
//! small registered check, with and without them, on scopes that switch every fault class on.
//! Each reduced search explores no more states than the full one, and a violation found with
//! the reductions is a validated counterexample of the unreduced model too (the trace
//! validator replays it step by step).

use anvil::registry;
use anvil_cluster_model::Scope;
use anvil_cluster_model::esr::{CheckOptions, Report};

/// `scope` with crashes, transient failures and lost responses on (three fault switches to
/// order), one stale request (reads to drop, stale requests to fail).
fn faulty(mut s: Scope) -> Scope {
    s.faults.crash = true;
    s.faults.drop = true;
    s.faults.lost_response = true;
    s.max_stale_requests = s.max_stale_requests.max(1);
    s
}

fn verdicts(r: &Report) -> Vec<(String, String)> {
    r.results
        .iter()
        .map(|p| (p.property.clone(), p.verdict.clone()))
        .collect()
}

fn compare(name: &str, scope: Scope) {
    let c = registry::find(name).expect("registered");
    let full = (c.check)(
        scope.clone(),
        &CheckOptions {
            no_reductions: true,
            ..Default::default()
        },
    );
    let reduced = (c.check)(scope, &CheckOptions::default());
    assert!(
        full.config_error.is_none(),
        "{name}: {:?}",
        full.config_error
    );
    assert_eq!(
        verdicts(&reduced),
        verdicts(&full),
        "{name}: verdicts differ"
    );
    for (r, f) in reduced.results.iter().zip(&full.results) {
        assert!(
            r.complete && f.complete,
            "{name}: {} incomplete",
            r.property
        );
        assert!(
            r.states <= f.states,
            "{name}: reduced {} > full {} states",
            r.states,
            f.states
        );
        if r.verdict == "violated" {
            assert_eq!(
                r.counterexample_validated,
                Some(true),
                "{name}: {:?}",
                r.validation_error
            );
        }
    }
    eprintln!(
        "{name}: {:?}; states {} reduced, {} full",
        verdicts(&reduced),
        reduced.results[0].states,
        full.results[0].states
    );
}

#[test]
fn demo_verdicts_are_unchanged() {
    // one spec, no edit, and a pod loss too (a budgeted fault whose switch goes off when it is
    // spent): 18,946 states reduced, 99,472 unreduced
    let mut s = faulty(anvil_demo::verify::default_scope());
    s.specs.truncate(1);
    s.max_edits = 0;
    s.max_deletes = 0;
    s.faults.transient = false;
    s.faults.pod_losses = 1;
    compare("demo", s);
}

#[test]
fn demo_broken_variants_verdicts_are_unchanged() {
    for name in [
        "demo-stale-update",
        "demo-alreadyexists-fatal",
        "demo-adopt-orphan",
        "demo-no-done-on-failure",
        "demo-shared-config",
    ] {
        let c = registry::find(name).expect("registered");
        let mut s = (c.scope)();
        s.faults.lost_response = true;
        if s.max_deletes == 0 && s.crs == 1 {
            s = faulty(s);
        }
        compare(name, s);
    }
}

#[test]
fn zookeeper_verdicts_are_unchanged() {
    // one spec, no edit: small enough for the dev profile
    let c = registry::find("zookeeper").expect("registered");
    let mut s = faulty((c.scope)());
    s.specs.truncate(1);
    s.max_edits = 0;
    s.faults.lost_response = false;
    compare("zookeeper", s.clone());
    compare("zookeeper-569", s);
}
