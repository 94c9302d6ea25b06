//! The `DemoApp` custom resource and its CRD.

use anvil_cluster_model::CrdValidator;
use anvil_objects::DynamicObject;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

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

/// The CRD's rules, compiled once from [`crd`] (its schema and CEL rules, evaluated with the
/// `cel` crate; see [`anvil_cluster_model::crd`]).
pub fn crd_rules() -> &'static CrdValidator {
    static RULES: OnceLock<CrdValidator> = OnceLock::new();
    RULES.get_or_init(|| {
        CrdValidator::from_typed_crd(&crd()).unwrap_or_else(|e| panic!("the DemoApp CRD: {e}"))
    })
}

/// `Err` with the API server's message when `spec` breaks one of the CRD's creation rules
/// (evaluated from the CRD itself by [`crd_rules`]: there is no second copy of the rules).
pub fn validate_spec(spec: &DemoAppSpec) -> Result<(), String> {
    let obj = DynamicObject::from_typed(&DemoApp::new("validate", spec.clone()))
        .map_err(|e| e.to_string())?;
    crd_rules().validate(&obj, None)
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

    /// The CRD's CEL rules, evaluated by the model from the CRD itself.
    #[test]
    fn the_crd_rules_are_evaluated_from_the_crd() {
        let ok = DemoAppSpec {
            replicas: 3,
            image: "nginx".into(),
            message: "hi".into(),
        };
        assert!(validate_spec(&ok).is_ok());
        for replicas in [-1, 11] {
            let e = validate_spec(&DemoAppSpec {
                replicas,
                ..ok.clone()
            })
            .unwrap_err();
            assert_eq!(
                e,
                "spec.replicas: Invalid value: \"integer\": replicas must be between 0 and 10"
            );
        }
        let obj = |spec: &DemoAppSpec| {
            DynamicObject::from_typed(&DemoApp::new("a", spec.clone())).unwrap()
        };
        let scaled = DemoAppSpec {
            replicas: 5,
            ..ok.clone()
        };
        assert!(crd_rules().validate(&obj(&scaled), Some(&obj(&ok))).is_ok());
        let image = DemoAppSpec {
            image: "x".into(),
            ..ok.clone()
        };
        assert!(crd_rules().validate(&obj(&image), None).is_ok(), "a create");
        assert_eq!(
            crd_rules().validate(&obj(&image), Some(&obj(&ok))),
            Err("spec.image: Invalid value: \"string\": image is immutable".into())
        );
    }
}
