//! Runs the ZooKeeper controller's checks without the `anvil` binary:
//! `cargo run --release -p anvil-zookeeper --example verify_zookeeper -- [zookeeper|zookeeper-569|zookeeper-adopt] [--small]`.

use anvil_cluster_model::esr::CheckOptions;
use anvil_cluster_model::report_text::report_text;
use anvil_zookeeper::verify;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("zookeeper");
    let small = args.iter().any(|a| a == "--small");
    let opts = CheckOptions {
        progress: Some(Arc::new(|p| eprintln!("{p:?}"))),
        ..Default::default()
    };
    let mut scope = match which {
        "zookeeper-adopt" => verify::recreate_scope(),
        "zookeeper-569" => verify::scope_569(),
        _ if args.iter().any(|a| a == "--recreate") => verify::recreate_scope(),
        _ => verify::default_scope(),
    };
    if small {
        scope.max_edits = 0;
        scope.faults.drop = false;
    }
    println!("{scope}");
    let report = match which {
        "zookeeper" => {
            verify::verify_reconciler::<anvil_zookeeper::ZookeeperController>(which, scope, &opts)
        }
        "zookeeper-569" => {
            verify::verify_reconciler::<anvil_zookeeper::broken::Zookeeper569>(which, scope, &opts)
        }
        "zookeeper-adopt" => verify::verify_reconciler::<anvil_zookeeper::broken::ZookeeperAdopt>(
            which, scope, &opts,
        ),
        other => panic!("unknown controller {other}"),
    };
    print!("{}", report_text(&report));
}
