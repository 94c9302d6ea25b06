//! The canonical renaming of tokens (resourceVersions and uids) is a bisimulation that keeps
//! fairness keys, on the ZooKeeper controller (with its external system, the znode store):
//! non-canonical copies of the reachable states (tokens permuted at random onto numbers with
//! gaps, since the model forgets the order of tokens) have the same canonical successors and
//! fairness keys
//! ([`check_renaming_bisimulation`]); every local state, request, response and external state
//! met satisfies the `Tokens` contract (the guard of `anvil_reconciler::tokens`).

use anvil_cluster_model::ClusterMachine;
use anvil_cluster_model::tokens::check_renaming_bisimulation;
use anvil_zookeeper::ZookeeperController;
use anvil_zookeeper::broken::Zookeeper569;
use anvil_zookeeper::verify::{ZkModel, default_scope, kinds};

#[test]
fn the_canonical_renaming_is_a_bisimulation_on_zookeeper() {
    let mut scope = default_scope();
    scope.faults.other_deletes = 1;
    let m = ClusterMachine::<ZookeeperController, ZkModel>::new(kinds(), scope, ZkModel);
    let limit = 5000;
    let r = check_renaming_bisimulation(&m, limit).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:?}");
    assert_eq!(r.states, limit, "the scope has more states than the limit");
    assert!(r.renamed_states * 10 >= r.states * 9, "{r:?}");
    assert!(r.max_tokens >= 4, "{r:?}");
}

#[test]
fn the_canonical_renaming_is_a_bisimulation_on_zookeeper_569() {
    let m = ClusterMachine::<Zookeeper569, ZkModel>::new(kinds(), default_scope(), ZkModel);
    let r = check_renaming_bisimulation(&m, 2000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.states, 2000);
}
