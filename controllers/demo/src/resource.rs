//! The `DemoApp` custom resource and its CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a demo application.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "demo.anvil.dev",
    version = "v1",
    kind = "DemoApp",
    namespaced,
    status = "DemoAppStatus",
    shortname = "demo"
)]
#[serde(rename_all = "camelCase")]
pub struct DemoAppSpec {
    /// Number of pods; between 0 and 10.
    #[x_kube(validation = Rule::new("self >= 0 && self <= 10").message("replicas must be between 0 and 10"))]
    pub replicas: i32,
    /// Container image; cannot be changed once set.
    #[x_kube(validation = Rule::new("self == oldSelf").message("image is immutable"))]
    pub image: String,
    /// Message served by the application (stored in the ConfigMap).
    pub message: String,
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DemoAppStatus {
    /// Ready replicas of the StatefulSet.
    pub ready_replicas: i32,
}

/// The CRD, with the CEL rules the API server enforces.
pub fn crd() -> CustomResourceDefinition {
    DemoApp::crd()
}

/// The rules of the CRD, in Rust, for the cluster model: `Err` with the API server's message
/// when `spec` violates a creation rule.
pub fn validate_spec(spec: &DemoAppSpec) -> Result<(), String> {
    if !(0..=10).contains(&spec.replicas) {
        return Err("spec.replicas: replicas must be between 0 and 10".into());
    }
    Ok(())
}

/// The transition rules of the CRD, in Rust, for the cluster model.
pub fn validate_transition(old: &DemoAppSpec, new: &DemoAppSpec) -> Result<(), String> {
    if old.image != new.image {
        return Err("spec.image: image is immutable".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_carries_the_cel_rules() {
        let yaml = serde_yaml::to_string(&crd()).unwrap();
        assert!(yaml.contains("self >= 0 && self <= 10"), "{yaml}");
        assert!(yaml.contains("self == oldSelf"), "{yaml}");
        assert!(
            yaml.contains("status: {}") || yaml.contains("status:"),
            "{yaml}"
        );
    }

    #[test]
    fn rust_rules_mirror_the_cel_rules() {
        let ok = DemoAppSpec {
            replicas: 3,
            image: "nginx".into(),
            message: "hi".into(),
        };
        assert!(validate_spec(&ok).is_ok());
        assert!(
            validate_spec(&DemoAppSpec {
                replicas: 11,
                ..ok.clone()
            })
            .is_err()
        );
        assert!(
            validate_spec(&DemoAppSpec {
                replicas: -1,
                ..ok.clone()
            })
            .is_err()
        );
        assert!(
            validate_transition(
                &ok,
                &DemoAppSpec {
                    replicas: 5,
                    ..ok.clone()
                }
            )
            .is_ok()
        );
        assert!(
            validate_transition(
                &ok,
                &DemoAppSpec {
                    image: "x".into(),
                    ..ok.clone()
                }
            )
            .is_err()
        );
    }
}
