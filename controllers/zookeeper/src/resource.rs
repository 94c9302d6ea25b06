//! The `ZookeeperCluster` custom resource (`zookeeper.anvil.dev/v1`, short name `zk`) and its CRD.
//!
//! Field names and defaults follow the Pravega zookeeper-operator's `ZookeeperCluster`
//! (`replicas` 3, ports 2181/2888/3888/7000/8080, `initLimit` 10, `tickTime` 2000, ...). The
//! CRD carries CEL rules that the API server enforces; the cluster model evaluates the same
//! rules from the CRD itself ([`crd_rules`]), and so does [`validate_spec`].

use anvil_cluster_model::CrdValidator;
use anvil_objects::DynamicObject;
use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Desired state of a ZooKeeper ensemble.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zookeeper.anvil.dev",
    version = "v1",
    kind = "ZookeeperCluster",
    namespaced,
    status = "ZookeeperClusterStatus",
    shortname = "zk",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ZookeeperClusterSpec {
    /// Number of ZooKeeper servers; at least 3.
    #[serde(default = "default_replicas")]
    #[x_kube(validation = Rule::new("self >= 3").message("replicas must be at least 3"))]
    pub replicas: i32,
    /// Container image of the servers.
    #[serde(default = "default_image")]
    pub image: String,
    /// Ports of the servers; cannot be changed once set.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("ports are immutable"))]
    pub ports: ZookeeperPorts,
    /// Settings written to `zoo.cfg`.
    #[serde(default)]
    pub conf: ZookeeperConfig,
    /// Storage of the servers' data; cannot be changed once set.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("persistence is immutable"))]
    pub persistence: ZookeeperPersistence,
    /// Compute resources of the ZooKeeper container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Scheduling affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector of the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Extra labels on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The ports a ZooKeeper server listens on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ZookeeperPorts {
    /// Client port (default 2181).
    #[serde(default = "default_client_port")]
    pub client: i32,
    /// Quorum port (default 2888).
    #[serde(default = "default_quorum_port")]
    pub quorum: i32,
    /// Leader election port (default 3888).
    #[serde(default = "default_leader_election_port")]
    pub leader_election: i32,
    /// Prometheus metrics port (default 7000).
    #[serde(default = "default_metrics_port")]
    pub metrics: i32,
    /// Admin server port (default 8080).
    #[serde(default = "default_admin_server_port")]
    pub admin_server: i32,
}

impl Default for ZookeeperPorts {
    fn default() -> Self {
        ZookeeperPorts {
            client: default_client_port(),
            quorum: default_quorum_port(),
            leader_election: default_leader_election_port(),
            metrics: default_metrics_port(),
            admin_server: default_admin_server_port(),
        }
    }
}

/// Settings written to `zoo.cfg` (the Pravega operator's `ZookeeperConfig`, same defaults).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.minSessionTimeout <= self.maxSessionTimeout").message("minSessionTimeout must not exceed maxSessionTimeout")
)]
pub struct ZookeeperConfig {
    /// Ticks followers may take to connect and sync to the leader (default 10).
    #[serde(default = "d_init_limit")]
    pub init_limit: i32,
    /// Length of a tick in milliseconds (default 2000).
    #[serde(default = "d_tick_time")]
    pub tick_time: i32,
    /// Ticks followers may lag behind the leader; at least 1 (default 2).
    #[serde(default = "d_sync_limit")]
    #[x_kube(validation = Rule::new("self >= 1").message("syncLimit must be at least 1"))]
    pub sync_limit: i32,
    /// Queued requests before throttling (default 1000).
    #[serde(default = "d_global_outstanding_limit")]
    pub global_outstanding_limit: i32,
    /// Transaction log preallocation block size in KB (default 65536).
    #[serde(default = "d_pre_alloc_size")]
    pub pre_alloc_size: i32,
    /// Transactions between snapshots (default 10000).
    #[serde(default = "d_snap_count")]
    pub snap_count: i32,
    /// Committed requests kept in memory (default 500).
    #[serde(default = "d_commit_log_count")]
    pub commit_log_count: i32,
    /// Snapshot size limit in KB (default 4194304).
    #[serde(default = "d_snap_size_limit_in_kb")]
    pub snap_size_limit_in_kb: i64,
    /// Total connection limit; 0 is unlimited (default 0).
    #[serde(default)]
    pub max_cnxns: i32,
    /// Connections per client IP (default 60).
    #[serde(default = "d_max_client_cnxns")]
    pub max_client_cnxns: i32,
    /// Minimum session timeout in milliseconds (default 4000, twice the tick time).
    #[serde(default = "d_min_session_timeout")]
    pub min_session_timeout: i32,
    /// Maximum session timeout in milliseconds (default 40000, twenty tick times).
    #[serde(default = "d_max_session_timeout")]
    pub max_session_timeout: i32,
    /// Snapshots kept by auto purge (default 3).
    #[serde(default = "d_auto_purge_snap_retain_count")]
    pub auto_purge_snap_retain_count: i32,
    /// Hours between auto purges; 0 disables it (default 1).
    #[serde(default = "d_auto_purge_purge_interval")]
    pub auto_purge_purge_interval: i32,
    /// Listen on all IPs for quorum traffic (default false).
    #[serde(default)]
    pub quorum_listen_on_all_ips: bool,
}

impl Default for ZookeeperConfig {
    fn default() -> Self {
        ZookeeperConfig {
            init_limit: d_init_limit(),
            tick_time: d_tick_time(),
            sync_limit: d_sync_limit(),
            global_outstanding_limit: d_global_outstanding_limit(),
            pre_alloc_size: d_pre_alloc_size(),
            snap_count: d_snap_count(),
            commit_log_count: d_commit_log_count(),
            snap_size_limit_in_kb: d_snap_size_limit_in_kb(),
            max_cnxns: 0,
            max_client_cnxns: d_max_client_cnxns(),
            min_session_timeout: d_min_session_timeout(),
            max_session_timeout: d_max_session_timeout(),
            auto_purge_snap_retain_count: d_auto_purge_snap_retain_count(),
            auto_purge_purge_interval: d_auto_purge_purge_interval(),
            quorum_listen_on_all_ips: false,
        }
    }
}

/// Storage of the servers' data directory.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ZookeeperPersistence {
    /// A PersistentVolumeClaim per server (default); otherwise an emptyDir.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Size of each claim (default `20Gi`).
    #[serde(default = "default_storage_size")]
    #[schemars(length(max = 64))]
    pub storage_size: String,
    /// Storage class of the claims (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
}

impl Default for ZookeeperPersistence {
    fn default() -> Self {
        ZookeeperPersistence {
            enabled: true,
            storage_size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZookeeperClusterStatus {
    /// Ready replicas of the StatefulSet.
    pub ready_replicas: i32,
}

/// Default image (the Pravega operator's default ZooKeeper image).
pub const DEFAULT_IMAGE: &str = "pravega/zookeeper:0.2.15";

fn default_replicas() -> i32 {
    3
}
fn default_image() -> String {
    DEFAULT_IMAGE.into()
}
fn default_true() -> bool {
    true
}
fn default_storage_size() -> String {
    "20Gi".into()
}
fn default_client_port() -> i32 {
    2181
}
fn default_quorum_port() -> i32 {
    2888
}
fn default_leader_election_port() -> i32 {
    3888
}
fn default_metrics_port() -> i32 {
    7000
}
fn default_admin_server_port() -> i32 {
    8080
}
fn d_init_limit() -> i32 {
    10
}
fn d_tick_time() -> i32 {
    2000
}
fn d_sync_limit() -> i32 {
    2
}
fn d_global_outstanding_limit() -> i32 {
    1000
}
fn d_pre_alloc_size() -> i32 {
    65536
}
fn d_snap_count() -> i32 {
    10000
}
fn d_commit_log_count() -> i32 {
    500
}
fn d_snap_size_limit_in_kb() -> i64 {
    4_194_304
}
fn d_max_client_cnxns() -> i32 {
    60
}
fn d_min_session_timeout() -> i32 {
    4000
}
fn d_max_session_timeout() -> i32 {
    40000
}
fn d_auto_purge_snap_retain_count() -> i32 {
    3
}
fn d_auto_purge_purge_interval() -> i32 {
    1
}

impl ZookeeperClusterSpec {
    /// A spec with every default (3 replicas, the default image, ports, conf and persistence).
    pub fn with_replicas(replicas: i32) -> Self {
        ZookeeperClusterSpec {
            replicas,
            image: default_image(),
            ports: ZookeeperPorts::default(),
            conf: ZookeeperConfig::default(),
            persistence: ZookeeperPersistence::default(),
            resources: None,
            affinity: None,
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for ZookeeperClusterSpec {
    fn default() -> Self {
        ZookeeperClusterSpec::with_replicas(default_replicas())
    }
}

/// The CRD, with the CEL rules the API server enforces.
pub fn crd() -> CustomResourceDefinition {
    ZookeeperCluster::crd()
}

/// The CRD's rules, compiled once from [`crd`] (its schema and CEL rules, evaluated with the
/// `cel` crate; see [`anvil_cluster_model::crd`]).
pub fn crd_rules() -> &'static CrdValidator {
    static RULES: OnceLock<CrdValidator> = OnceLock::new();
    RULES.get_or_init(|| {
        CrdValidator::from_typed_crd(&crd())
            .unwrap_or_else(|e| panic!("the ZookeeperCluster CRD: {e}"))
    })
}

/// `Err` with the API server's message when `spec` breaks one of the CRD's creation rules
/// (evaluated from the CRD itself by [`crd_rules`]: there is no second copy of the rules).
pub fn validate_spec(spec: &ZookeeperClusterSpec) -> Result<(), String> {
    let obj = DynamicObject::from_typed(&ZookeeperCluster::new("validate", spec.clone()))
        .map_err(|e| e.to_string())?;
    crd_rules().validate(&obj, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_carries_the_cel_rules_and_defaults() {
        let yaml = serde_yaml::to_string(&crd()).unwrap();
        for rule in [
            "self >= 3",
            "self >= 1",
            "self.minSessionTimeout <= self.maxSessionTimeout",
            "ports are immutable",
            "persistence is immutable",
        ] {
            assert!(yaml.contains(rule), "{rule} missing in {yaml}");
        }
        assert!(yaml.contains("shortNames"), "{yaml}");
        assert!(yaml.contains("- zk"), "{yaml}");
        assert!(yaml.contains("default: 2181"), "{yaml}");
        assert!(yaml.contains("subresources"), "{yaml}");
    }

    #[test]
    fn serde_defaults_match_the_pravega_operator() {
        let spec: ZookeeperClusterSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, ZookeeperClusterSpec::default());
        assert_eq!(spec.replicas, 3);
        assert_eq!(spec.ports.client, 2181);
        assert_eq!(spec.ports.admin_server, 8080);
        assert_eq!(spec.conf.tick_time, 2000);
        assert_eq!(spec.conf.min_session_timeout, 2 * spec.conf.tick_time);
        assert_eq!(spec.conf.max_session_timeout, 20 * spec.conf.tick_time);
        assert!(spec.persistence.enabled);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["conf"]["quorumListenOnAllIps"], false);
        assert_eq!(json["persistence"]["storageSize"], "20Gi");
    }

    /// The CRD's CEL rules (creation and `oldSelf` transition rules), evaluated by the model
    /// from the CRD itself.
    #[test]
    fn the_crd_rules_are_evaluated_from_the_crd() {
        let ok = ZookeeperClusterSpec::default();
        assert!(validate_spec(&ok).is_ok());
        assert_eq!(
            validate_spec(&ZookeeperClusterSpec::with_replicas(2)),
            Err("spec.replicas: Invalid value: \"integer\": replicas must be at least 3".into())
        );
        let mut bad = ok.clone();
        bad.conf.sync_limit = 0;
        assert_eq!(
            validate_spec(&bad),
            Err(
                "spec.conf.syncLimit: Invalid value: \"integer\": syncLimit must be at least 1"
                    .into()
            )
        );
        let mut bad = ok.clone();
        bad.conf.min_session_timeout = 50_000;
        assert_eq!(
            validate_spec(&bad),
            Err("spec.conf: Invalid value: \"object\": minSessionTimeout must not exceed maxSessionTimeout".into())
        );
        let obj = |spec: &ZookeeperClusterSpec| {
            DynamicObject::from_typed(&ZookeeperCluster::new("a", spec.clone())).unwrap()
        };
        let update = |old: &ZookeeperClusterSpec, new: &ZookeeperClusterSpec| {
            crd_rules().validate(&obj(new), Some(&obj(old)))
        };
        let mut scaled = ok.clone();
        scaled.replicas = 5;
        scaled.conf.tick_time = 3000;
        assert!(update(&ok, &scaled).is_ok());
        let mut ports = ok.clone();
        ports.ports.client = 2182;
        assert_eq!(
            update(&ok, &ports),
            Err("spec.ports: Invalid value: \"object\": ports are immutable".into())
        );
        assert!(crd_rules().validate(&obj(&ports), None).is_ok(), "a create");
        let mut persistence = ok.clone();
        persistence.persistence.storage_size = "1Gi".into();
        assert!(update(&ok, &persistence).is_err());
        assert!(update(&ok, &ZookeeperClusterSpec::with_replicas(2)).is_err());
        // the schema's defaults apply before the rules, as in the API server: a partial
        // `conf` is completed, and a missing `ports` defaults to the same ports
        let partial = |spec: serde_json::Value| {
            let mut o = obj(&ok).to_json();
            o["spec"] = spec;
            DynamicObject::from_json(o).unwrap()
        };
        let old = partial(serde_json::json!({"replicas": 3}));
        let new = partial(serde_json::json!({"replicas": 5, "conf": {"tickTime": 3000}}));
        assert_eq!(crd_rules().validate(&new, Some(&old)), Ok(()));
        let moved = partial(serde_json::json!({"replicas": 3, "ports": {"client": 1}}));
        assert!(crd_rules().validate(&moved, Some(&old)).is_err());
        // the schema's maxLength
        let mut long = ok.clone();
        long.persistence.storage_size = "1".repeat(65);
        assert!(
            validate_spec(&long)
                .unwrap_err()
                .contains("spec.persistence.storageSize: Too long")
        );
    }
}
