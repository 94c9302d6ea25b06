//! The controllers `anvil` knows: name, description, how to verify it, how to print its CRD.
//!
//! To add a controller, append a [`Controller`] to [`controllers`].

use anvil_cluster_model::Scope;
use anvil_cluster_model::esr::{CheckOptions, Report};

/// One verifiable controller.
#[derive(Clone, Copy)]
pub struct Controller {
    /// Name on the command line (`anvil verify <name>`).
    pub name: &'static str,
    /// One line for `anvil list`.
    pub description: &'static str,
    /// The controller's default scope.
    pub scope: fn() -> Scope,
    /// Runs the checker within a scope (the default one, or one the user widened or narrowed
    /// with flags or a scope file).
    pub check: fn(Scope, &CheckOptions) -> Report,
    /// The CRD as YAML, if the controller has one of its own.
    pub crd: Option<fn() -> String>,
}

fn demo_crd() -> String {
    serde_yaml::to_string(&anvil_demo::crd()).expect("the CRD serialises")
}

fn zookeeper_crd() -> String {
    serde_yaml::to_string(&anvil_zookeeper::crd()).expect("the CRD serialises")
}

fn rabbitmq_crd() -> String {
    serde_yaml::to_string(&anvil_rabbitmq::crd()).expect("the CRD serialises")
}

/// Every controller, in `anvil list` order.
pub fn controllers() -> Vec<Controller> {
    use anvil_demo::broken;
    vec![
        Controller {
            name: "demo",
            description: "DemoApp: a ConfigMap and a StatefulSet kept in sync with the custom resource",
            scope: anvil_demo::verify::default_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<anvil_demo::DemoController>("demo", s, o)
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-recreate",
            description: "DemoApp deleted and re-created once, with crashes and dropped requests",
            scope: anvil_demo::verify::recreate_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<anvil_demo::DemoController>(
                    "demo-recreate",
                    s,
                    o,
                )
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-stale-update",
            description: "broken demo: unconditional StatefulSet update built from a (stale) read",
            scope: broken::stale_update_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::StaleUpdate>(
                    "demo-stale-update",
                    s,
                    o,
                )
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-alreadyexists-fatal",
            description: "broken demo: AlreadyExists on create (after a crash) is treated as fatal forever",
            scope: broken::already_exists_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::AlreadyExistsFatal>(
                    "demo-alreadyexists-fatal",
                    s,
                    o,
                )
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-adopt-orphan",
            description: "broken demo: adopts objects left behind by a deleted DemoApp of the same name",
            scope: broken::adopt_orphan_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::AdoptOrphan>(
                    "demo-adopt-orphan",
                    s,
                    o,
                )
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-no-done-on-failure",
            description: "broken demo: a failed write leaves the reconcile waiting forever",
            scope: broken::no_done_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::NoDoneOnFailure>(
                    "demo-no-done-on-failure",
                    s,
                    o,
                )
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "demo-shared-config",
            description: "broken demo: one ConfigMap name for every DemoApp (caught with two custom resources)",
            scope: broken::shared_config_scope,
            check: |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::SharedConfig>(
                    "demo-shared-config",
                    s,
                    o,
                )
            },
            crd: Some(demo_crd),
        },
        Controller {
            name: "zookeeper",
            description: "ZookeeperCluster: Services, ConfigMap, cluster-size znode (ZooKeeper API), StatefulSet, status",
            scope: anvil_zookeeper::verify::default_scope,
            check: |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::ZookeeperController>(
                    "zookeeper",
                    s,
                    o,
                )
            },
            crd: Some(zookeeper_crd),
        },
        Controller {
            name: "zookeeper-569",
            description: "broken zookeeper: znode written only right after a StatefulSet write; a crash in between loses it (zookeeper-operator #569)",
            scope: anvil_zookeeper::verify::default_scope,
            check: |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::broken::Zookeeper569>(
                    "zookeeper-569",
                    s,
                    o,
                )
            },
            crd: Some(zookeeper_crd),
        },
        Controller {
            name: "zookeeper-adopt",
            description: "broken zookeeper: updates a StatefulSet without checking its owner (CR deleted and re-created)",
            scope: anvil_zookeeper::verify::recreate_scope,
            check: |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::broken::ZookeeperAdopt>(
                    "zookeeper-adopt",
                    s,
                    o,
                )
            },
            crd: Some(zookeeper_crd),
        },
        Controller {
            name: "rabbitmq",
            description: "RabbitmqCluster: Services, generated cookie/user Secrets, ConfigMaps, RBAC, a StatefulSet that never scales down, status",
            scope: anvil_rabbitmq::verify::default_scope,
            check: |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::RabbitmqController>(
                    "rabbitmq", s, o,
                )
            },
            crd: Some(rabbitmq_crd),
        },
        Controller {
            name: "rabbitmq-stale-scale-down",
            description: "broken rabbitmq: unconditional StatefulSet writes from a stale CR snapshot scale the cluster down",
            scope: anvil_rabbitmq::broken::stale_scale_down_scope,
            check: |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::broken::StaleScaleDown>(
                    "rabbitmq-stale-scale-down",
                    s,
                    o,
                )
            },
            crd: Some(rabbitmq_crd),
        },
        Controller {
            name: "rabbitmq-cookie-rotation",
            description: "broken rabbitmq: the Erlang cookie is regenerated on every reconcile",
            scope: anvil_rabbitmq::broken::cookie_rotation_scope,
            check: |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::broken::CookieRotation>(
                    "rabbitmq-cookie-rotation",
                    s,
                    o,
                )
            },
            crd: Some(rabbitmq_crd),
        },
        Controller {
            name: "rabbitmq-config-no-roll",
            description: "broken rabbitmq: a configuration change never reaches the pod template, so the pods are not rolled",
            scope: anvil_rabbitmq::broken::config_no_roll_scope,
            check: |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::broken::ConfigNoRoll>(
                    "rabbitmq-config-no-roll",
                    s,
                    o,
                )
            },
            crd: Some(rabbitmq_crd),
        },
    ]
}

impl Controller {
    /// Runs the checker at the controller's default scope.
    pub fn verify(&self, opts: &CheckOptions) -> Report {
        (self.check)((self.scope)(), opts)
    }
}

/// The controller called `name`.
pub fn find(name: &str) -> Option<Controller> {
    controllers().into_iter().find(|c| c.name == name)
}
