//! The controllers `anvil` knows: name, description, how to verify it, how to print its CRD.
//!
//! To add a controller, append a [`Controller`] to [`controllers`].

use anvil_cluster_model::esr::{CheckOptions, Report};

/// One verifiable controller.
#[derive(Clone, Copy)]
pub struct Controller {
    /// Name on the command line (`anvil verify <name>`).
    pub name: &'static str,
    /// One line for `anvil list`.
    pub description: &'static str,
    /// Runs the checker at the controller's default scope.
    pub verify: fn(&CheckOptions) -> Report,
    /// The CRD as YAML, if the controller has one of its own.
    pub crd: Option<fn() -> String>,
}

fn demo_crd() -> String {
    serde_yaml::to_string(&anvil_demo::crd()).expect("the CRD serialises")
}

fn zookeeper_crd() -> String {
    serde_yaml::to_string(&anvil_zookeeper::crd()).expect("the CRD serialises")
}

/// Every controller, in `anvil list` order.
pub fn controllers() -> Vec<Controller> {
    use anvil_demo::broken;
    vec![
        Controller {
            name: "demo",
            description: "DemoApp: a ConfigMap and a StatefulSet kept in sync with the custom resource",
            verify: anvil_demo::verify::verify,
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-stale-update",
            description: "broken demo: unconditional StatefulSet update built from a (stale) read",
            verify: broken::verify_stale_update,
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-alreadyexists-fatal",
            description: "broken demo: AlreadyExists on create (after a crash) is treated as fatal forever",
            verify: broken::verify_already_exists_fatal,
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-adopt-orphan",
            description: "broken demo: adopts objects left behind by a deleted DemoApp of the same name",
            verify: broken::verify_adopt_orphan,
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-no-done-on-failure",
            description: "broken demo: a failed write leaves the reconcile waiting forever",
            verify: broken::verify_no_done_on_failure,
            crd: Some(demo_crd),
        },
        Controller {
            name: "zookeeper",
            description: "ZookeeperCluster: Services, ConfigMap, cluster-size znode (ZooKeeper API), StatefulSet, status",
            verify: anvil_zookeeper::verify::verify,
            crd: Some(zookeeper_crd),
        },
        Controller {
            name: "zookeeper-569",
            description: "broken zookeeper: znode written only right after a StatefulSet write; a crash in between loses it (zookeeper-operator #569)",
            verify: anvil_zookeeper::verify::verify_569,
            crd: Some(zookeeper_crd),
        },
        Controller {
            name: "zookeeper-adopt",
            description: "broken zookeeper: updates a StatefulSet without checking its owner (CR deleted and re-created)",
            verify: anvil_zookeeper::verify::verify_adopt,
            crd: Some(zookeeper_crd),
        },
    ]
}

/// The controller called `name`.
pub fn find(name: &str) -> Option<Controller> {
    controllers().into_iter().find(|c| c.name == name)
}
