//! The canonical renaming of tokens (resourceVersions and uids) is a bisimulation that keeps
//! fairness keys, on the RabbitMQ controller (whose local state also holds values from the
//! random source): non-canonical copies of the reachable states have the same canonical
//! successors and fairness keys ([`check_renaming_bisimulation`]); every local state, request,
//! response and external state met satisfies the `Tokens` contract.

use anvil_cluster_model::ClusterMachine;
use anvil_cluster_model::tokens::check_renaming_bisimulation;
use anvil_rabbitmq::RabbitmqController;
use anvil_rabbitmq::broken::StaleScaleDown;
use anvil_rabbitmq::verify::{RandomModel, default_scope, kinds};

#[test]
fn the_canonical_renaming_is_a_bisimulation_on_rabbitmq() {
    let mut scope = default_scope();
    scope.faults.other_deletes = 1;
    let m = ClusterMachine::<RabbitmqController, RandomModel>::new(kinds(), scope, RandomModel);
    let limit = 1500;
    let r = check_renaming_bisimulation(&m, limit).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:?}");
    assert_eq!(r.states, limit, "the scope has more states than the limit");
    assert!(r.renamed_states * 10 >= r.states * 9, "{r:?}");
    assert!(r.max_tokens >= 4, "{r:?}");
}

#[test]
fn the_canonical_renaming_is_a_bisimulation_on_the_stale_scale_down_variant() {
    let m =
        ClusterMachine::<StaleScaleDown, RandomModel>::new(kinds(), default_scope(), RandomModel);
    let r = check_renaming_bisimulation(&m, 500).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.states, 500);
}
