//! The `RabbitmqCluster` custom resource (`rabbitmq.anvil.dev/v1`, short name `rbmq`) and its
//! CRD.
//!
//! Field names follow the RabbitMQ cluster-operator's `RabbitmqCluster` and the upstream Anvil
//! RabbitMQ controller (`replicas`, `image`, `persistence`, `rabbitmqConfig`, `affinity`,
//! `tolerations`, `labels`, `annotations`, `resources`, `podManagementPolicy`,
//! `persistentVolumeClaimRetentionPolicy`), with the operator's defaults (1 replica, 10Gi of
//! storage, `Parallel` pod management). The CRD carries CEL rules that the API server
//! enforces; the cluster model evaluates the same rules from the CRD itself ([`crd_rules`]),
//! and so does [`validate_spec`]:
//!
//! * `replicas >= 0`;
//! * `replicas` never decreases (`self >= oldSelf`): RabbitMQ clusters are never scaled down;
//! * `persistence.storage`, `persistence.storageClassName` (including setting or unsetting it)
//!   and `podManagementPolicy` are immutable (the StatefulSet's volume claim templates and pod
//!   management policy cannot change either);
//! * `podManagementPolicy` is `OrderedReady` or `Parallel`.

use anvil_cluster_model::CrdValidator;
use anvil_objects::DynamicObject;
use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// API group of the custom resource.
pub const GROUP: &str = "rabbitmq.anvil.dev";
/// `apiVersion` of the custom resource.
pub const API_VERSION: &str = "rabbitmq.anvil.dev/v1";

/// Desired state of a RabbitMQ cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "rabbitmq.anvil.dev",
    version = "v1",
    kind = "RabbitmqCluster",
    namespaced,
    status = "RabbitmqClusterStatus",
    shortname = "rbmq",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RabbitmqClusterSpec {
    /// Number of RabbitMQ nodes; at least 0, and never decreased (scale-down is not
    /// supported).
    #[serde(default = "default_replicas")]
    #[x_kube(
        validation = Rule::new("self >= 0").message("replicas must be non-negative"),
        validation = Rule::new("self >= oldSelf").message("replicas cannot be decreased: scaling down a RabbitMQ cluster is not supported")
    )]
    pub replicas: i32,
    /// Container image of the nodes.
    #[serde(default = "default_image")]
    pub image: String,
    /// Storage of the nodes' data; immutable.
    #[serde(default)]
    pub persistence: RabbitmqPersistence,
    /// RabbitMQ configuration written to the server-conf ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_config: Option<RabbitmqConfig>,
    /// Scheduling affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Extra labels on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Compute resources of the RabbitMQ container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Pod management policy of the StatefulSet (`OrderedReady` or `Parallel`, default
    /// `Parallel` as in the RabbitMQ cluster-operator); immutable.
    #[serde(default = "default_pod_management_policy")]
    #[x_kube(
        validation = Rule::new("self == 'OrderedReady' || self == 'Parallel'").message("podManagementPolicy must be OrderedReady or Parallel"),
        validation = Rule::new("self == oldSelf").message("podManagementPolicy is immutable")
    )]
    pub pod_management_policy: String,
    /// What happens to the nodes' PersistentVolumeClaims when the StatefulSet is deleted or
    /// scaled (the StatefulSet's `persistentVolumeClaimRetentionPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy:
        Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
}

/// Storage of the nodes' data directory: one PersistentVolumeClaim per node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("storageClassName is immutable")
)]
pub struct RabbitmqPersistence {
    /// Storage class of the claims (default: the cluster's default class); immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// Size of each claim (default `10Gi`); immutable.
    #[serde(default = "default_storage")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage is immutable"))]
    pub storage: String,
}

impl Default for RabbitmqPersistence {
    fn default() -> Self {
        RabbitmqPersistence {
            storage_class_name: None,
            storage: default_storage(),
        }
    }
}

/// RabbitMQ configuration (the cluster-operator's `spec.rabbitmq`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct RabbitmqConfig {
    /// Extra `rabbitmq.conf` settings (`userDefinedConfiguration.conf`, applied after the
    /// operator's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100000))]
    pub additional_config: Option<String>,
    /// `advanced.config` (Erlang terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100000))]
    pub advanced_config: Option<String>,
    /// `rabbitmq-env.conf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100000))]
    pub env_config: Option<String>,
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RabbitmqClusterStatus {
    /// Ready replicas of the StatefulSet.
    pub ready_replicas: i32,
}

/// Default image (the RabbitMQ series that `scripts/provision-rabbitmq.sh` installs for the
/// end-to-end tests, with the management plugin).
pub const DEFAULT_IMAGE: &str = "rabbitmq:3.10-management";

fn default_replicas() -> i32 {
    1
}
fn default_image() -> String {
    DEFAULT_IMAGE.into()
}
fn default_storage() -> String {
    "10Gi".into()
}
fn default_pod_management_policy() -> String {
    "Parallel".into()
}

impl RabbitmqClusterSpec {
    /// A spec with every default and `replicas` replicas.
    pub fn with_replicas(replicas: i32) -> Self {
        RabbitmqClusterSpec {
            replicas,
            image: default_image(),
            persistence: RabbitmqPersistence::default(),
            rabbitmq_config: None,
            affinity: None,
            tolerations: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            resources: None,
            pod_management_policy: default_pod_management_policy(),
            persistent_volume_claim_retention_policy: None,
        }
    }
}

impl Default for RabbitmqClusterSpec {
    fn default() -> Self {
        RabbitmqClusterSpec::with_replicas(default_replicas())
    }
}

/// The CRD, with the CEL rules the API server enforces.
pub fn crd() -> CustomResourceDefinition {
    RabbitmqCluster::crd()
}

/// The CRD's rules, compiled once from [`crd`] (its schema and CEL rules, evaluated with the
/// `cel` crate; see [`anvil_cluster_model::crd`]).
pub fn crd_rules() -> &'static CrdValidator {
    static RULES: OnceLock<CrdValidator> = OnceLock::new();
    RULES.get_or_init(|| {
        CrdValidator::from_typed_crd(&crd())
            .unwrap_or_else(|e| panic!("the RabbitmqCluster CRD: {e}"))
    })
}

/// `Err` with the API server's message when `spec` breaks one of the CRD's creation rules
/// (evaluated from the CRD itself by [`crd_rules`]: there is no second copy of the rules).
pub fn validate_spec(spec: &RabbitmqClusterSpec) -> Result<(), String> {
    let obj = DynamicObject::from_typed(&RabbitmqCluster::new("validate", spec.clone()))
        .map_err(|e| e.to_string())?;
    crd_rules().validate(&obj, None)
}

/// `Err` with the API server's message when changing `old` into `new` breaks one of the
/// CRD's rules (creation rules on `new`, transition rules on the pair).
pub fn validate_update(old: &RabbitmqClusterSpec, new: &RabbitmqClusterSpec) -> Result<(), String> {
    let obj = |spec: &RabbitmqClusterSpec| {
        DynamicObject::from_typed(&RabbitmqCluster::new("validate", spec.clone()))
            .map_err(|e| e.to_string())
    };
    crd_rules().validate(&obj(new)?, Some(&obj(old)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_carries_the_cel_rules_and_defaults() {
        let yaml = serde_yaml::to_string(&crd()).unwrap();
        for rule in [
            "self >= 0",
            "self >= oldSelf",
            "storage is immutable",
            "storageClassName is immutable",
            "podManagementPolicy is immutable",
        ] {
            assert!(yaml.contains(rule), "{rule} missing in {yaml}");
        }
        assert!(yaml.contains("- rbmq"), "{yaml}");
        assert!(yaml.contains("default: 10Gi"), "{yaml}");
        assert!(yaml.contains("default: Parallel"), "{yaml}");
        assert!(yaml.contains("subresources"), "{yaml}");
    }

    #[test]
    fn serde_defaults_match_the_operator() {
        let spec: RabbitmqClusterSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, RabbitmqClusterSpec::default());
        assert_eq!(spec.replicas, 1);
        assert_eq!(spec.persistence.storage, "10Gi");
        assert_eq!(spec.pod_management_policy, "Parallel");
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("rabbitmqConfig").is_none());
        assert_eq!(json["persistence"], serde_json::json!({"storage": "10Gi"}));
    }

    /// The CRD's CEL rules (creation and `oldSelf` transition rules), evaluated by the model
    /// from the CRD itself.
    #[test]
    fn the_crd_rules_are_evaluated_from_the_crd() {
        let one = RabbitmqClusterSpec::with_replicas(1);
        assert_eq!(validate_spec(&one), Ok(()));
        assert_eq!(
            validate_spec(&RabbitmqClusterSpec::with_replicas(0)),
            Ok(())
        );
        assert_eq!(
            validate_spec(&RabbitmqClusterSpec::with_replicas(-1)),
            Err("spec.replicas: Invalid value: \"integer\": replicas must be non-negative".into())
        );
        let mut bad = one.clone();
        bad.pod_management_policy = "Sometimes".into();
        assert!(
            validate_spec(&bad)
                .unwrap_err()
                .contains("podManagementPolicy must be OrderedReady or Parallel")
        );
        // scale up, config change: fine
        let three = RabbitmqClusterSpec::with_replicas(3);
        assert_eq!(validate_update(&one, &three), Ok(()));
        let mut conf = three.clone();
        conf.rabbitmq_config = Some(RabbitmqConfig {
            additional_config: Some("channel_max = 1050\n".into()),
            ..Default::default()
        });
        assert_eq!(validate_update(&three, &conf), Ok(()));
        // scale down: rejected (but creating with fewer is fine)
        let e = validate_update(&three, &one).unwrap_err();
        assert!(e.contains("replicas cannot be decreased"), "{e}");
        // immutable storage, class (set, changed, unset) and pod management policy
        let mut storage = three.clone();
        storage.persistence.storage = "1Gi".into();
        assert!(
            validate_update(&three, &storage)
                .unwrap_err()
                .contains("storage is immutable")
        );
        let mut class = three.clone();
        class.persistence.storage_class_name = Some("fast".into());
        let mut other_class = three.clone();
        other_class.persistence.storage_class_name = Some("slow".into());
        for (old, new) in [(&three, &class), (&class, &three), (&class, &other_class)] {
            let e = validate_update(old, new).unwrap_err();
            assert!(e.contains("storageClassName is immutable"), "{e}");
        }
        assert_eq!(validate_update(&class, &class), Ok(()));
        let mut pmp = three.clone();
        pmp.pod_management_policy = "OrderedReady".into();
        assert!(
            validate_update(&three, &pmp)
                .unwrap_err()
                .contains("podManagementPolicy is immutable")
        );
        assert_eq!(validate_spec(&pmp), Ok(()), "a create");
    }

    /// The schema's defaults apply before the rules, as in the API server: an object written
    /// without `persistence` or `podManagementPolicy` (as the verification scope writes it)
    /// is compared with its defaults.
    #[test]
    fn defaults_apply_before_transition_rules() {
        let partial = |spec: serde_json::Value| {
            let mut o = DynamicObject::from_typed(&RabbitmqCluster::new("a", Default::default()))
                .unwrap()
                .to_json();
            o["spec"] = spec;
            DynamicObject::from_json(o).unwrap()
        };
        let old = partial(serde_json::json!({"replicas": 1}));
        let new = partial(serde_json::json!({"replicas": 3,
            "rabbitmqConfig": {"additionalConfig": "channel_max = 1050\n"}}));
        assert_eq!(crd_rules().validate(&new, Some(&old)), Ok(()));
        let explicit = partial(
            serde_json::json!({"replicas": 1, "podManagementPolicy": "Parallel",
            "persistence": {"storage": "10Gi"}}),
        );
        assert_eq!(crd_rules().validate(&explicit, Some(&old)), Ok(()));
        let moved =
            partial(serde_json::json!({"replicas": 1, "podManagementPolicy": "OrderedReady"}));
        assert!(crd_rules().validate(&moved, Some(&old)).is_err());
        let down = partial(serde_json::json!({"replicas": 0}));
        assert!(crd_rules().validate(&down, Some(&old)).is_err());
    }
}
