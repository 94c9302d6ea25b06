//! Running the controller on a real cluster (`anvil run zookeeper`): the shim configuration
//! and the ZooKeeper API shim.

use crate::reconciler::ZookeeperController;
use crate::resource::ZookeeperCluster;
use crate::zk::{ZkRequest, ZkResponse};
use crate::zk_client::ZkClient;
use anvil_shim::{BoxFuture, ExternalShim, ShimConfig, ShimError};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};

/// The CRD's name, `<plural>.<group>` (what `anvil_shim::check_cluster` looks for).
pub const CRD_NAME: &str = "zookeeperclusters.zookeeper.anvil.dev";

impl ExternalShim<ZkRequest, ZkResponse> for ZkClient {
    fn call(&self, req: ZkRequest) -> BoxFuture<'_, ZkResponse> {
        Box::pin(async move { self.execute(&req).await })
    }
}

/// The shim configuration of the controller: it watches its CR and the kinds it owns
/// (Services, ConfigMaps, StatefulSets), and declares the permissions its requests need
/// (`anvil manifests zookeeper` grants them; `crates/anvil/tests/permissions.rs` checks them
/// against every request of the model's verification scope).
pub fn shim_config() -> ShimConfig {
    anvil_shim::register_resource::<ZookeeperCluster>();
    ShimConfig::new("zookeeper")
        .owns::<Service>()
        .owns::<ConfigMap>()
        .owns::<StatefulSet>()
        .may::<Service>(&["get", "create", "update"])
        .may::<ConfigMap>(&["get", "create", "update"])
        .may::<StatefulSet>(&["get", "create", "update"])
        .may::<ZookeeperCluster>(&["get"])
        .may_status::<ZookeeperCluster>(&["update"])
}

/// Runs the controller until shutdown (or an injected crash). `zk_address`: `None` sends
/// each ZooKeeper request to the ensemble's client Service
/// (`<name>-client.<namespace>.svc.cluster.local:<port>`, resolvable inside the cluster);
/// `Some(addr)` sends every request to `addr` (`anvil run zookeeper --zk-address ...`).
pub async fn run(
    client: kube::Client,
    config: ShimConfig,
    zk_address: Option<String>,
) -> Result<(), ShimError> {
    anvil_shim::run::<ZookeeperController>(client, config, ZkClient::new(zk_address)).await
}
