//! The example controllers of this repository and the `anvil` binary's [`cli`]: a user of the
//! same public API ([`Cli`], [`Controller`]) as an operator crate outside the repository.
//!
//! To add a controller, append a [`Controller`] to [`controllers`].

use crate::controller::{RunContext, RunFuture, Runnable};
use crate::{Cli, Controller};
use anvil_shim::ShimConfig;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;

/// The `anvil` binary: the example controllers, and `new`.
pub fn cli() -> Cli {
    controllers()
        .into_iter()
        .fold(Cli::new("anvil"), Cli::controller)
        .about(env!("CARGO_PKG_DESCRIPTION"))
        .version(env!("CARGO_PKG_VERSION"))
        .image(crate::manifests::DEFAULT_IMAGE)
        .with_new_command()
}

/// The shim configuration of the demo: it owns ConfigMaps and StatefulSets; its requests
/// read, create and update both, read the `DemoApp` and update its status.
pub fn demo_config() -> ShimConfig {
    anvil_shim::register_resource::<anvil_demo::DemoApp>();
    ShimConfig::new("demo")
        .owns::<ConfigMap>()
        .owns::<StatefulSet>()
        .may::<ConfigMap>(&["get", "create", "update"])
        .may::<StatefulSet>(&["get", "create", "update"])
        .may::<anvil_demo::DemoApp>(&["get"])
        .may_status::<anvil_demo::DemoApp>(&["update"])
}

fn run_zookeeper(ctx: RunContext) -> RunFuture {
    let zk_address = ctx.option("zk-address").map(str::to_string);
    Box::pin(anvil_zookeeper::run::run(
        ctx.client, ctx.config, zk_address,
    ))
}

fn run_rabbitmq(ctx: RunContext) -> RunFuture {
    Box::pin(anvil_rabbitmq::run::run(ctx.client, ctx.config))
}

fn run_fluent(ctx: RunContext) -> RunFuture {
    Box::pin(anvil_fluent::run::run_both(ctx.client, ctx.config))
}

/// Every controller, in `anvil list` order.
pub fn controllers() -> Vec<Controller> {
    use anvil_demo::broken;
    let demo_crd = anvil_demo::crd;
    let zookeeper_crd = anvil_zookeeper::crd;
    let rabbitmq_crd = anvil_rabbitmq::crd;
    vec![
        Controller::new(
            "demo",
            "DemoApp: a ConfigMap and a StatefulSet kept in sync with the custom resource",
            anvil_demo::verify::default_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<anvil_demo::DemoController>("demo", s, o)
            },
        )
        .crd(demo_crd)
        .runs::<anvil_demo::DemoController>(demo_config),
        Controller::new(
            "demo-recreate",
            "DemoApp deleted and re-created once, under every fault of the default scope (crashes, transient failures, lost responses, 2 stale requests, an other-writer update)",
            anvil_demo::verify::recreate_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<anvil_demo::DemoController>(
                    "demo-recreate",
                    s,
                    o,
                )
            },
        )
        .crd(demo_crd),
        Controller::new(
            "demo-stale-update",
            "broken demo: unconditional StatefulSet update built from a (stale) read",
            broken::stale_update_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::StaleUpdate>(
                    "demo-stale-update",
                    s,
                    o,
                )
            },
        )
        .crd(demo_crd),
        Controller::new(
            "demo-alreadyexists-fatal",
            "broken demo: AlreadyExists on create (after a crash) is treated as fatal forever",
            broken::already_exists_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::AlreadyExistsFatal>(
                    "demo-alreadyexists-fatal",
                    s,
                    o,
                )
            },
        )
        .crd(demo_crd),
        Controller::new(
            "demo-adopt-orphan",
            "broken demo: adopts objects left behind by a deleted DemoApp of the same name",
            broken::adopt_orphan_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::AdoptOrphan>(
                    "demo-adopt-orphan",
                    s,
                    o,
                )
            },
        )
        .crd(demo_crd),
        Controller::new(
            "demo-no-done-on-failure",
            "broken demo: a failed write leaves the reconcile waiting forever",
            broken::no_done_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::NoDoneOnFailure>(
                    "demo-no-done-on-failure",
                    s,
                    o,
                )
            },
        )
        .crd(demo_crd),
        Controller::new(
            "demo-shared-config",
            "broken demo: one ConfigMap name for every DemoApp (caught with two custom resources)",
            broken::shared_config_scope,
            |s, o| {
                anvil_demo::verify::verify_reconciler::<broken::SharedConfig>(
                    "demo-shared-config",
                    s,
                    o,
                )
            },
        )
        .crd(demo_crd),
        Controller::new(
            "zookeeper",
            "ZookeeperCluster: Services, ConfigMap, cluster-size znode (ZooKeeper API), StatefulSet, status",
            anvil_zookeeper::verify::default_scope,
            |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::ZookeeperController>(
                    "zookeeper",
                    s,
                    o,
                )
            },
        )
        .crd(zookeeper_crd)
        .runs_with::<anvil_zookeeper::ZookeeperCluster>(
            anvil_zookeeper::run::shim_config,
            run_zookeeper,
        )
        .run_option(
            "zk-address",
            "the ZooKeeper ensemble to talk to (`host:port`); default: the ensemble's client Service",
        ),
        Controller::new(
            "zookeeper-569",
            "broken zookeeper: znode written only right after a StatefulSet write; a crash in between loses it (zookeeper-operator #569)",
            anvil_zookeeper::verify::scope_569,
            |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::broken::Zookeeper569>(
                    "zookeeper-569",
                    s,
                    o,
                )
            },
        )
        .crd(zookeeper_crd),
        Controller::new(
            "zookeeper-recreate",
            "ZookeeperCluster deleted and re-created once, with crashes, dropped requests and a stale request",
            anvil_zookeeper::verify::recreate_faults_scope,
            |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::ZookeeperController>(
                    "zookeeper-recreate",
                    s,
                    o,
                )
            },
        )
        .crd(zookeeper_crd),
        Controller::new(
            "zookeeper-adopt",
            "broken zookeeper: updates a StatefulSet without checking its owner (CR deleted and re-created)",
            anvil_zookeeper::verify::recreate_scope,
            |s, o| {
                anvil_zookeeper::verify::verify_reconciler::<anvil_zookeeper::broken::ZookeeperAdopt>(
                    "zookeeper-adopt",
                    s,
                    o,
                )
            },
        )
        .crd(zookeeper_crd),
        Controller::new(
            "rabbitmq",
            "RabbitmqCluster: Services, generated cookie/user Secrets, ConfigMaps, RBAC, a StatefulSet that never scales down, status",
            anvil_rabbitmq::verify::default_scope,
            |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::RabbitmqController>(
                    "rabbitmq", s, o,
                )
            },
        )
        .crd(rabbitmq_crd)
        .runs_with::<anvil_rabbitmq::RabbitmqCluster>(
            anvil_rabbitmq::run::shim_config,
            run_rabbitmq,
        ),
        Controller::new(
            "rabbitmq-stale-scale-down",
            "broken rabbitmq: unconditional StatefulSet writes from a stale CR snapshot scale the cluster down",
            anvil_rabbitmq::broken::stale_scale_down_scope,
            |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::broken::StaleScaleDown>(
                    "rabbitmq-stale-scale-down",
                    s,
                    o,
                )
            },
        )
        .crd(rabbitmq_crd),
        Controller::new(
            "rabbitmq-cookie-rotation",
            "broken rabbitmq: the Erlang cookie is regenerated on every reconcile",
            anvil_rabbitmq::broken::cookie_rotation_scope,
            |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::broken::CookieRotation>(
                    "rabbitmq-cookie-rotation",
                    s,
                    o,
                )
            },
        )
        .crd(rabbitmq_crd),
        Controller::new(
            "rabbitmq-config-no-roll",
            "broken rabbitmq: a configuration change never reaches the pod template, so the pods are not rolled",
            anvil_rabbitmq::broken::config_no_roll_scope,
            |s, o| {
                anvil_rabbitmq::verify::verify_reconciler::<anvil_rabbitmq::broken::ConfigNoRoll>(
                    "rabbitmq-config-no-roll",
                    s,
                    o,
                )
            },
        )
        .crd(rabbitmq_crd),
        Controller::new(
            "fluent",
            "FluentBit and FluentBitConfig controllers checked together in one model (a config Secret; a DaemonSet mounting it), one edit of each under every fault class and two stale requests",
            anvil_fluent::verify::fluent_scope,
            |s, o| anvil_fluent::verify::verify_fluent("fluent", s, o),
        )
        .crd(anvil_fluent::fluent_bit_crd)
        .crd(anvil_fluent::fluent_bit_config_crd)
        .runs_with::<anvil_fluent::FluentBit>(anvil_fluent::run::fluent_config, run_fluent),
        Controller::new(
            "fluent-other-writer",
            "FluentBit and FluentBitConfig together, one edit of each, crashes, drops, a stale request and another writer's update of a managed object",
            anvil_fluent::verify::fluent_other_writer_scope,
            |s, o| anvil_fluent::verify::verify_fluent("fluent-other-writer", s, o),
        )
        .crd(anvil_fluent::fluent_bit_crd)
        .crd(anvil_fluent::fluent_bit_config_crd),
        Controller::new(
            "fluentbit",
            "FluentBit alone: ServiceAccount, Role, RoleBinding, Service and a DaemonSet mounting an existing config Secret",
            anvil_fluent::verify::fluent_bit_scope,
            |s, o| {
                anvil_fluent::verify::verify_fluent_bit::<anvil_fluent::FluentBitController>(
                    "fluentbit", s, o,
                )
            },
        )
        .crd(anvil_fluent::fluent_bit_crd)
        .runs::<anvil_fluent::FluentBitController>(anvil_fluent::run::fluent_bit_config),
        Controller::new(
            "fluentbit-config",
            "FluentBitConfig alone: the Fluent Bit configuration rendered into a Secret",
            anvil_fluent::verify::config_scope,
            |s, o| anvil_fluent::verify::verify_config("fluentbit-config", s, o),
        )
        .crd(anvil_fluent::fluent_bit_config_crd)
        .runs::<anvil_fluent::FluentBitConfigController>(
            anvil_fluent::run::fluent_bit_config_config,
        ),
        Controller::new(
            "fluent-early-daemonset",
            "broken fluent: the DaemonSet is created before the config Secret exists and its mount is never fixed",
            anvil_fluent::verify::broken_scope,
            anvil_fluent::verify::verify_early_daemon_set,
        )
        .crd(anvil_fluent::fluent_bit_crd),
        Controller::new(
            "fluent-config-writes-daemonset",
            "broken fluent: the FluentBitConfig controller writes into the FluentBit controller's DaemonSet",
            anvil_fluent::verify::broken_scope,
            anvil_fluent::verify::verify_config_writes_daemon_set,
        )
        .crd(anvil_fluent::fluent_bit_crd),
    ]
}

/// The controller called `name`.
pub fn find(name: &str) -> Option<Controller> {
    controllers().into_iter().find(|c| c.name == name)
}

/// What `anvil run` and `anvil manifests` need of the runnable controller called `name`.
pub fn runnable(name: &str) -> Option<Runnable> {
    find(name)?.runnable().ok()
}
