//! The custom resources (`fluent.anvil.dev/v1`) and their CRDs:
//!
//! * `FluentBitConfig` (short name `fbc`): the Fluent Bit configuration (`fluentBitConfig`)
//!   and parsers (`parsersConfig`), rendered by its controller into a Secret of the same name;
//! * `FluentBit` (short name `fb`): a Fluent Bit DaemonSet that mounts the Secret of the
//!   `FluentBitConfig` named `fluentBitConfigName`, with the fields of the upstream Anvil
//!   FluentBit controller.
//!
//! CEL rules (enforced by the API server, evaluated by the cluster model from the CRD itself):
//! `fluentBitConfigName` is non-empty, `metricsPort` and every `ports[].containerPort` are in
//! `1..=65535`.

use anvil_cluster_model::CrdValidator;
use anvil_objects::DynamicObject;
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EnvVar, LocalObjectReference, Probe, ResourceRequirements,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// `apiVersion` of both custom resources.
pub const API_VERSION: &str = "fluent.anvil.dev/v1";

/// The Fluent Bit configuration.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "fluent.anvil.dev",
    version = "v1",
    kind = "FluentBitConfig",
    namespaced,
    shortname = "fbc"
)]
#[serde(rename_all = "camelCase")]
pub struct FluentBitConfigSpec {
    /// `fluent-bit.conf`: the main configuration (sections `[SERVICE]`, `[INPUT]`,
    /// `[FILTER]`, `[OUTPUT]`, ...).
    #[serde(default)]
    #[schemars(length(max = 1000000))]
    pub fluent_bit_config: String,
    /// `parsers.conf`: the parser definitions (`[PARSER]` sections).
    #[serde(default)]
    #[schemars(length(max = 1000000))]
    pub parsers_config: String,
}

/// A Fluent Bit DaemonSet.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "fluent.anvil.dev",
    version = "v1",
    kind = "FluentBit",
    namespaced,
    status = "FluentBitStatus",
    shortname = "fb",
    printcolumn = r#"{"name":"Config","type":"string","jsonPath":".spec.fluentBitConfigName"}"#,
    printcolumn = r#"{"name":"ConfigFound","type":"boolean","jsonPath":".status.configFound"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FluentBitSpec {
    /// Name of the `FluentBitConfig` (and so of its Secret) in the same namespace; required.
    #[x_kube(validation = Rule::new("size(self) > 0").message("fluentBitConfigName must not be empty"))]
    #[schemars(length(max = 253))]
    pub fluent_bit_config_name: String,
    /// Container image (default `fluent/fluent-bit:3.1`).
    #[serde(default = "default_image")]
    pub image: String,
    /// Arguments of the Fluent Bit container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Command of the Fluent Bit container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Image pull secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Compute resources of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Extra labels on the pods (and the DaemonSet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Annotations on the ServiceAccount.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_account_annotations: BTreeMap<String, String>,
    /// Extra labels on the Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_labels: BTreeMap<String, String>,
    /// Extra selector labels of the Service (besides the pods' own).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_selector: BTreeMap<String, String>,
    /// Annotations on the Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
    /// Scheduling affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Node selector of the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Do not mount the host's log directories (`/var/log`, the container log path).
    #[serde(default)]
    pub disable_log_volumes: bool,
    /// Port of the HTTP metrics server (default 2020), exposed by the Service.
    #[serde(default = "default_metrics_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("metricsPort must be in 1..65535"))]
    pub metrics_port: i32,
    /// Host directory of Fluent Bit's position database (mounted at `/fluent-bit/tail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_db: Option<String>,
    /// Real path of the container logs on the host (default `/var/lib/docker/containers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_real_path: Option<String>,
    /// Security context of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// Use the host's network.
    #[serde(default)]
    pub host_network: bool,
    /// Environment of the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_vars: Vec<EnvVar>,
    /// Liveness probe of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Readiness probe of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Extra volumes of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Extra volume mounts of the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Init containers of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Extra ports of the container (besides the metrics port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(p, p.containerPort >= 1 && p.containerPort <= 65535)").message("every containerPort must be in 1..65535"))]
    pub ports: Vec<ContainerPort>,
}

/// What the FluentBit controller reports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FluentBitStatus {
    /// Whether the configuration Secret named by `fluentBitConfigName` exists.
    #[serde(default)]
    pub config_found: bool,
    /// The hash of the configuration the DaemonSet's pods run (empty while it is missing).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_hash: String,
}

fn default_image() -> String {
    "fluent/fluent-bit:3.1".into()
}

fn default_metrics_port() -> i32 {
    2020
}

impl FluentBitSpec {
    /// A spec with every default, naming the configuration `config`.
    pub fn for_config(config: &str) -> Self {
        FluentBitSpec {
            fluent_bit_config_name: config.into(),
            image: default_image(),
            metrics_port: default_metrics_port(),
            ..Default::default()
        }
    }
}

/// The FluentBit CRD, with the CEL rules the API server enforces.
pub fn fluent_bit_crd() -> CustomResourceDefinition {
    FluentBit::crd()
}

/// The FluentBitConfig CRD.
pub fn fluent_bit_config_crd() -> CustomResourceDefinition {
    FluentBitConfig::crd()
}

/// The FluentBit CRD's rules, compiled once from [`fluent_bit_crd`].
pub fn fluent_bit_rules() -> &'static CrdValidator {
    static RULES: OnceLock<CrdValidator> = OnceLock::new();
    RULES.get_or_init(|| {
        CrdValidator::from_typed_crd(&fluent_bit_crd())
            .unwrap_or_else(|e| panic!("the FluentBit CRD: {e}"))
    })
}

/// `Err` with the API server's message when `spec` breaks one of the FluentBit CRD's rules
/// (evaluated from the CRD itself: there is no second copy of the rules).
pub fn validate_fluent_bit(spec: &FluentBitSpec) -> Result<(), String> {
    let obj = DynamicObject::from_typed(&FluentBit::new("validate", spec.clone()))
        .map_err(|e| e.to_string())?;
    fluent_bit_rules().validate(&obj, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_carry_short_names_and_rules() {
        let fb = serde_yaml::to_string(&fluent_bit_crd()).unwrap();
        for needle in [
            "- fb",
            "fluentBitConfigName must not be empty",
            "metricsPort must be in 1..65535",
            "every containerPort must be in 1..65535",
            "subresources",
        ] {
            assert!(fb.contains(needle), "{needle} missing");
        }
        let fbc = serde_yaml::to_string(&fluent_bit_config_crd()).unwrap();
        assert!(fbc.contains("- fbc"));
        assert!(fbc.contains("parsersConfig"));
    }

    #[test]
    fn the_crd_rules_are_evaluated_from_the_crd() {
        let ok = FluentBitSpec::for_config("cfg");
        assert_eq!(validate_fluent_bit(&ok), Ok(()));
        let e = validate_fluent_bit(&FluentBitSpec::for_config("")).unwrap_err();
        assert!(e.contains("fluentBitConfigName must not be empty"), "{e}");
        for bad in [0, 65536, -1] {
            let mut s = ok.clone();
            s.metrics_port = bad;
            let e = validate_fluent_bit(&s).unwrap_err();
            assert!(e.contains("metricsPort must be in 1..65535"), "{bad}: {e}");
        }
        let mut s = ok.clone();
        s.ports = vec![ContainerPort {
            container_port: 70000,
            ..Default::default()
        }];
        let e = validate_fluent_bit(&s).unwrap_err();
        assert!(e.contains("every containerPort must be in 1..65535"), "{e}");
        s.ports[0].container_port = 24224;
        assert_eq!(validate_fluent_bit(&s), Ok(()));
    }
}
