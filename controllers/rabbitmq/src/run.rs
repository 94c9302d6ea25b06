//! Running the controller on a real cluster (`anvil run rabbitmq`): the shim configuration
//! and the random source.

use crate::random::OsRandom;
use crate::reconciler::RabbitmqController;
use crate::resource::RabbitmqCluster;
use anvil_shim::{Permission, ShimConfig, ShimError};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

/// The CRD's name, `<plural>.<group>` (what `anvil_shim::check_cluster` looks for).
pub const CRD_NAME: &str = "rabbitmqclusters.rabbitmq.anvil.dev";

/// The shim configuration of the controller: it watches its CR and the kinds it owns, and
/// declares the permissions its requests need (`anvil manifests rabbitmq` grants them;
/// `crates/anvil/tests/permissions.rs` checks them against every request of the model's
/// verification scope). Creating the server's Role needs what that Role grants
/// ([`crate::reconciler::role_rules`]: Endpoints `get`, core Events `create`).
pub fn shim_config() -> ShimConfig {
    anvil_shim::register_resource::<RabbitmqCluster>();
    let write = &["get", "create", "update"];
    ShimConfig::new("rabbitmq")
        .owns::<Service>()
        .owns::<Secret>()
        .owns::<ConfigMap>()
        .owns::<ServiceAccount>()
        .owns::<Role>()
        .owns::<RoleBinding>()
        .owns::<StatefulSet>()
        .may::<Service>(write)
        .may::<Secret>(write)
        .may::<ConfigMap>(write)
        .may::<ServiceAccount>(write)
        .may::<Role>(write)
        .may::<RoleBinding>(write)
        .may::<StatefulSet>(write)
        .may::<RabbitmqCluster>(&["get"])
        .may_status::<RabbitmqCluster>(&["update"])
        .may_permission(Permission::new("", "endpoints", "get"))
        .may_permission(Permission::new("", "events", "create"))
}

/// Runs the controller until shutdown (or an injected crash), with the operating system's
/// random source for the generated Secrets.
pub async fn run(client: kube::Client, config: ShimConfig) -> Result<(), ShimError> {
    anvil_shim::run::<RabbitmqController>(client, config, OsRandom).await
}
