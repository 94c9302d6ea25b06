//! The reconciler: a chain of managed objects (`anvil::reconciler::chain`). Each reconcile
//! runs the steps in order -- Get the object, Create it when missing, Update it when it differs
//! from its desired form -- one request per `reconcile_core` step, then writes the status.
//! Every managed object gets the `Website` as its controller owner; an object controlled by
//! someone else is never adopted (the reconcile fails instead).

use crate::resource::{Website, validate_spec};
use anvil::objects::{DynamicObject, Kind};
use anvil::reconciler::NoExternal;
use anvil::reconciler::chain::{
    self, Adopt, ChainReconciler, Facts, ManagedObject, StatusStep, Step,
};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::json;
use std::collections::BTreeMap;

/// Annotation on the pod template holding the ConfigMap's resourceVersion: a content change
/// changes the pod template, so the StatefulSet rolls the pods.
pub const CONTENT_VERSION_ANNOTATION: &str = "{{group}}/content-version";
/// Fact: resourceVersion of the ConfigMap as last read or written.
const FACT_CONTENT_VERSION: &str = "content-version";
/// Fact: ready replicas of the StatefulSet as last read or written.
const FACT_READY: &str = "ready-replicas";

/// Name of the ConfigMap holding a website's page.
pub fn config_map_name(site: &Website) -> String {
    format!(
        "{}-content",
        site.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Name of the StatefulSet serving a website.
pub fn stateful_set_name(site: &Website) -> String {
    site.metadata.name.clone().unwrap_or_default()
}

/// Labels on a website's objects and pods.
pub fn labels(site: &Website) -> BTreeMap<String, String> {
    [(
        "app.kubernetes.io/instance".to_string(),
        stateful_set_name(site),
    )]
    .into()
}

fn desired_config_map(site: &Website, _: &Facts) -> Result<DynamicObject, String> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            labels: Some(labels(site)),
            ..Default::default()
        },
        data: Some([("index.html".to_string(), site.spec.content.clone())].into()),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).map_err(|e| e.to_string())
}

fn desired_stateful_set(site: &Website, facts: &Facts) -> Result<DynamicObject, String> {
    let version = facts
        .get(FACT_CONTENT_VERSION)
        .ok_or("the ConfigMap's resourceVersion is not known yet")?;
    let sts = StatefulSet {
        metadata: ObjectMeta {
            labels: Some(labels(site)),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(site.spec.replicas),
            service_name: Some(stateful_set_name(site)),
            selector: LabelSelector {
                match_labels: Some(labels(site)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(site)),
                    annotations: Some(
                        [(CONTENT_VERSION_ANNOTATION.to_string(), version.clone())].into(),
                    ),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some(site.spec.image.clone()),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "content".into(),
                            mount_path: "/usr/share/nginx/html".into(),
                            read_only: Some(true),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "content".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: config_map_name(site),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    DynamicObject::from_typed(&sts).map_err(|e| e.to_string())
}

fn record_content_version(cm: &DynamicObject, facts: &mut Facts) {
    if let Some(rv) = cm.resource_version() {
        facts.insert(FACT_CONTENT_VERSION, rv.to_string());
    }
}

/// Ready replicas in a StatefulSet's status (0 when not reported yet).
pub fn ready_replicas(sts: &DynamicObject) -> i64 {
    sts.status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|r| r.as_i64())
        .unwrap_or(0)
}

fn record_ready_replicas(sts: &DynamicObject, facts: &mut Facts) {
    facts.insert(FACT_READY, ready_replicas(sts).to_string());
}

fn desired_status(_: &Website, facts: &Facts) -> serde_json::Value {
    let ready: i64 = facts
        .get(FACT_READY)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    json!({ "readyReplicas": ready })
}

/// The steps of a reconcile, in order: the ConfigMap (its resourceVersion is recorded for the
/// StatefulSet's pod template), the StatefulSet (its ready replicas are recorded for the
/// status), the status.
pub const STEPS: &[Step<Website, NoExternal, NoExternal>] = &[
    Step::Object(ManagedObject {
        label: "configmap",
        kind: Kind::of::<ConfigMap>,
        name: config_map_name,
        desired: desired_config_map,
        merge: chain::merge_desired,
        record: record_content_version,
        adopt: Adopt::Never,
    }),
    Step::Object(ManagedObject {
        label: "statefulset",
        kind: Kind::of::<StatefulSet>,
        name: stateful_set_name,
        desired: desired_stateful_set,
        merge: chain::merge_desired,
        record: record_ready_replicas,
        adopt: Adopt::Never,
    }),
    Step::Status(StatusStep {
        status: desired_status,
    }),
];

/// The controller: the chain of [`STEPS`] is its `reconcile_core`.
pub struct WebsiteController;

impl ChainReconciler for WebsiteController {
    type R = Website;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<Website, NoExternal, NoExternal>] {
        STEPS
    }

    fn validate(site: &Website) -> Result<(), String> {
        validate_spec(&site.spec)
    }
}
