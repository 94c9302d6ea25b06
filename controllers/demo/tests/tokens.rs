//! The canonical renaming of tokens (resourceVersions and uids) is a bisimulation that keeps
//! fairness keys, on the demo controller and on a broken variant with its own local state:
//! non-canonical copies of the reachable states (tokens permuted at random onto numbers with
//! gaps, since the model forgets the order of tokens) have the same canonical successors and
//! fairness keys
//! ([`check_renaming_bisimulation`]); every local state, request, response and external state
//! met satisfies the `Tokens` contract (the guard of `anvil_reconciler::tokens`).

use anvil_cluster_model::tokens::{BisimulationCheck, check_renaming_bisimulation};
use anvil_cluster_model::{ClusterMachine, ModelReconciler, NoExternalModel, Scope};
use anvil_demo::DemoController;
use anvil_demo::broken::{AlreadyExistsFatal, StaleUpdate};
use anvil_demo::verify::{default_scope, kinds};
use anvil_reconciler::NoExternal;

/// The default scope (an edit, a delete and re-create, crashes and drops) plus one
/// other-writer deletion, so that responses carry Conflict and NotFound errors too.
fn scope() -> Scope {
    let mut s = default_scope();
    s.faults.other_deletes = 1;
    s
}

fn check<R>(limit: usize) -> BisimulationCheck
where
    R: ModelReconciler<ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
{
    let m = ClusterMachine::<R, NoExternalModel>::new(kinds(), scope(), NoExternalModel);
    let r = check_renaming_bisimulation(&m, limit).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}: {r:?}", std::any::type_name::<R>());
    assert_eq!(r.states, limit, "the scope has more states than the limit");
    assert!(r.renamed_states * 10 >= r.states * 9, "{r:?}");
    assert!(r.max_tokens >= 4, "{r:?}");
    r
}

#[test]
fn the_canonical_renaming_is_a_bisimulation_on_the_demo() {
    check::<DemoController>(5000);
}

#[test]
fn the_canonical_renaming_is_a_bisimulation_on_broken_variants() {
    check::<AlreadyExistsFatal>(3000);
    check::<StaleUpdate>(3000);
}
