//! Running the controllers on a real cluster: their shim configurations (watched kinds and
//! the permissions their requests need).

use crate::resource::{FluentBit, FluentBitConfig};
use anvil_shim::{Permission, ShimConfig, ShimError};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

/// The CRD names, `<plural>.<group>`.
pub const CRD_NAMES: [&str; 2] = [
    "fluentbits.fluent.anvil.dev",
    "fluentbitconfigs.fluent.anvil.dev",
];

/// The shim configuration of the FluentBit controller. It owns its five objects and reads
/// the configuration Secret (which it does not own; a change of the Secret reaches it through
/// the FluentBitConfig's next reconcile and the periodic requeue). Creating the Role needs
/// what the Role grants (get pods).
pub fn fluent_bit_config() -> ShimConfig {
    anvil_shim::register_resource::<FluentBit>();
    let write = &["get", "create", "update"];
    ShimConfig::new("fluentbit")
        .owns::<ServiceAccount>()
        .owns::<Role>()
        .owns::<RoleBinding>()
        .owns::<Service>()
        .owns::<DaemonSet>()
        .may::<Secret>(&["get"])
        .may::<ServiceAccount>(write)
        .may::<Role>(write)
        .may::<RoleBinding>(write)
        .may::<Service>(write)
        .may::<DaemonSet>(write)
        .may::<FluentBit>(&["get"])
        .may_status::<FluentBit>(&["update"])
        .may_permission(Permission::new("", "pods", "get"))
}

/// The shim configuration of the FluentBitConfig controller: it owns its Secret (it writes
/// no status: its reconciles never read the `FluentBitConfig` themselves; the shim's own
/// quorum read of it is granted by `anvil manifests` anyway).
pub fn fluent_bit_config_config() -> ShimConfig {
    anvil_shim::register_resource::<FluentBitConfig>();
    ShimConfig::new("fluentbit-config")
        .owns::<Secret>()
        .may::<Secret>(&["get", "create", "update"])
}

/// The shim configuration of `anvil run fluent` (both controllers in one process) as the
/// command sees it: the FluentBit controller's, with the FluentBitConfig controller's owned
/// kind and permissions added, so that `anvil manifests fluent` grants what both need.
pub fn fluent_config() -> ShimConfig {
    let fbc = fluent_bit_config_config();
    let mut c = fluent_bit_config().owns::<Secret>();
    c.controller_name = "fluent".into();
    c.permissions.extend(fbc.permissions);
    c
}

/// The FluentBitConfig controller's configuration for a process whose FluentBit controller
/// runs with `fb` (as `anvil run fluent` configured it): same namespace, requeue, timeouts,
/// crash injection, shutdown and health.
pub fn config_config_like(fb: &ShimConfig) -> ShimConfig {
    let mut c = fluent_bit_config_config();
    c.namespace = fb.namespace.clone();
    c.requeue_after = fb.requeue_after;
    c.backoff_base = fb.backoff_base;
    c.backoff_max = fb.backoff_max;
    c.crash_after_writes = fb.crash_after_writes;
    c.handle_signals = fb.handle_signals;
    c.shutdown = fb.shutdown.clone();
    c.health = fb.health.clone();
    c.request_timeout = fb.request_timeout;
    c.probe_interval = fb.probe_interval;
    c
}

/// Runs both controllers in one process until shutdown (or an injected crash of either):
/// the FluentBit controller with `config` (as `anvil run fluent` configured it, see
/// [`fluent_config`]) and the FluentBitConfig controller with the same settings. Leader
/// election is not supported for the pair (`Err`).
pub async fn run_both(client: kube::Client, config: ShimConfig) -> Result<(), ShimError> {
    if config.leader_election.is_some() {
        return Err(ShimError::Config(
            "`fluent` runs two controllers in one process; leader election is not supported for it (run `fluentbit` and `fluentbit-config` separately)".into(),
        ));
    }
    let fbc = config_config_like(&config);
    let mut fb = config;
    fb.controller_name = "fluentbit".into();
    let a = anvil_shim::run::<crate::FluentBitController>(
        client.clone(),
        fb,
        anvil_shim::NoExternalShim,
    );
    let b = anvil_shim::run::<crate::FluentBitConfigController>(
        client,
        fbc,
        anvil_shim::NoExternalShim,
    );
    // the first to end (an injected crash, an error, or the shutdown) ends the process
    tokio::select! {
        r = a => r,
        r = b => r,
    }
}
