//! Running on a real cluster: the shim configuration. `run` watches the custom resource and
//! the kinds the controller owns, and `manifests` grants exactly the permissions declared here
//! (plus the runtime's own watches and Events).

use crate::resource::Website;
use anvil::shim::ShimConfig;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;

/// The shim configuration: the controller owns ConfigMaps and StatefulSets (a change of one
/// triggers a reconcile of its owner); its requests read, create and update both, read the
/// `Website` and update its status.
pub fn shim_config() -> ShimConfig {
    anvil::shim::register_resource::<Website>();
    ShimConfig::new("website")
        .owns::<ConfigMap>()
        .owns::<StatefulSet>()
        .may::<ConfigMap>(&["get", "create", "update"])
        .may::<StatefulSet>(&["get", "create", "update"])
        .may::<Website>(&["get"])
        .may_status::<Website>(&["update"])
}
