//! The `Website` custom resource and its CRD. The CRD's CEL rules (`x-kubernetes-validations`)
//! are the only copy of the validation rules: the real API server enforces them, and the
//! cluster model evaluates them from the CRD itself (so does [`validate_spec`]).

use anvil::model::CrdValidator;
use anvil::objects::DynamicObject;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The API group of the custom resource (change it to a domain you own).
pub const GROUP: &str = "{{group}}";

/// Desired state of a website: a page served by `replicas` pods of `image`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "{{group}}",
    version = "v1",
    kind = "Website",
    namespaced,
    status = "WebsiteStatus",
    shortname = "site"
)]
#[serde(rename_all = "camelCase")]
pub struct WebsiteSpec {
    /// Number of pods; between 1 and 5.
    #[x_kube(validation = Rule::new("self >= 1 && self <= 5").message("replicas must be between 1 and 5"))]
    pub replicas: i32,
    /// Container image serving the page; cannot be changed once set.
    #[x_kube(validation = Rule::new("self == oldSelf").message("image is immutable"))]
    pub image: String,
    /// The page (stored in a ConfigMap mounted into the pods); at most 1024 characters.
    #[x_kube(validation = Rule::new("size(self) <= 1024").message("content is too long"))]
    pub content: String,
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsiteStatus {
    /// Ready replicas of the StatefulSet.
    pub ready_replicas: i32,
}

/// The CRD, with the CEL rules the API server enforces.
pub fn crd() -> CustomResourceDefinition {
    Website::crd()
}

/// The CRD's rules, compiled once from [`crd`].
fn crd_rules() -> &'static CrdValidator {
    static RULES: OnceLock<CrdValidator> = OnceLock::new();
    RULES.get_or_init(|| {
        CrdValidator::from_typed_crd(&crd()).unwrap_or_else(|e| panic!("the Website CRD: {e}"))
    })
}

/// `Err` with the API server's message when `spec` breaks one of the CRD's creation rules.
/// The reconciler refuses such a custom resource (it never reaches the API server through a
/// valid path, but a controller should not trust that).
pub fn validate_spec(spec: &WebsiteSpec) -> Result<(), String> {
    let obj = DynamicObject::from_typed(&Website::new("validate", spec.clone()))
        .map_err(|e| e.to_string())?;
    crd_rules().validate(&obj, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replicas: i32) -> WebsiteSpec {
        WebsiteSpec {
            replicas,
            image: "nginx".into(),
            content: "hello".into(),
        }
    }

    #[test]
    fn the_crd_carries_the_cel_rules() {
        let yaml = serde_yaml::to_string(&crd()).unwrap();
        assert!(yaml.contains("self >= 1 && self <= 5"), "{yaml}");
        assert!(yaml.contains("self == oldSelf"), "{yaml}");
    }

    #[test]
    fn the_rules_are_evaluated_from_the_crd() {
        assert_eq!(validate_spec(&spec(3)), Ok(()));
        assert_eq!(
            validate_spec(&spec(6)),
            Err(
                "spec.replicas: Invalid value: \"integer\": replicas must be between 1 and 5"
                    .into()
            )
        );
        let long = WebsiteSpec {
            content: "x".repeat(1025),
            ..spec(1)
        };
        assert!(validate_spec(&long).is_err());
    }

    #[test]
    fn the_image_is_immutable() {
        let obj = |image: &str| {
            let s = WebsiteSpec {
                image: image.into(),
                ..spec(1)
            };
            DynamicObject::from_typed(&Website::new("a", s)).unwrap()
        };
        assert!(
            crd_rules()
                .validate(&obj("httpd"), Some(&obj("nginx")))
                .is_err()
        );
        assert!(
            crd_rules()
                .validate(&obj("nginx"), Some(&obj("nginx")))
                .is_ok()
        );
    }
}
