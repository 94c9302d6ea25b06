//! The demo reconciler: a chain of managed objects.

use crate::resource::DemoApp;
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::NoExternal;
use anvil_reconciler::chain::{
    self, Adopt, ChainReconciler, Facts, ManagedObject, StatusStep, Step,
};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::json;
use std::collections::BTreeMap;

/// Annotation on the pod template holding the ConfigMap's resourceVersion.
pub const CONFIG_VERSION_ANNOTATION: &str = "demo.anvil.dev/config-version";
/// Fact: resourceVersion of the ConfigMap as last read or written.
pub const FACT_CONFIG_VERSION: &str = "config-version";
/// Fact: ready replicas of the StatefulSet as last read or written.
pub const FACT_READY: &str = "ready-replicas";

/// Name of the ConfigMap of a `DemoApp`.
pub fn config_map_name(cr: &DemoApp) -> String {
    format!("{}-config", cr.metadata.name.as_deref().unwrap_or_default())
}

/// Name of the StatefulSet of a `DemoApp`.
pub fn stateful_set_name(cr: &DemoApp) -> String {
    cr.metadata.name.clone().unwrap_or_default()
}

/// Labels on every pod of a `DemoApp`.
pub fn pod_labels(cr: &DemoApp) -> BTreeMap<String, String> {
    [(
        "app.kubernetes.io/instance".to_string(),
        stateful_set_name(cr),
    )]
    .into()
}

fn desired_config_map(cr: &DemoApp, _: &Facts) -> Result<DynamicObject, String> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            labels: Some(pod_labels(cr)),
            ..Default::default()
        },
        data: Some([("message".to_string(), cr.spec.message.clone())].into()),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).map_err(|e| e.to_string())
}

fn desired_stateful_set(cr: &DemoApp, facts: &Facts) -> Result<DynamicObject, String> {
    let version = facts
        .get(FACT_CONFIG_VERSION)
        .ok_or("the ConfigMap's resourceVersion is not known yet")?;
    let sts = StatefulSet {
        metadata: ObjectMeta {
            labels: Some(pod_labels(cr)),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(cr.spec.replicas),
            service_name: Some(stateful_set_name(cr)),
            selector: LabelSelector {
                match_labels: Some(pod_labels(cr)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels(cr)),
                    annotations: Some(
                        [(CONFIG_VERSION_ANNOTATION.to_string(), version.clone())].into(),
                    ),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some(cr.spec.image.clone()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    DynamicObject::from_typed(&sts).map_err(|e| e.to_string())
}

fn record_config_version(cm: &DynamicObject, facts: &mut Facts) {
    if let Some(rv) = cm.resource_version() {
        facts.insert(FACT_CONFIG_VERSION, rv.to_string());
    }
}

fn record_ready_replicas(sts: &DynamicObject, facts: &mut Facts) {
    let ready = sts
        .status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|r| r.as_i64())
        .unwrap_or(0);
    facts.insert(FACT_READY, ready.to_string());
}

fn desired_status(_: &DemoApp, facts: &Facts) -> serde_json::Value {
    let ready: i64 = facts
        .get(FACT_READY)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    json!({ "readyReplicas": ready })
}

/// The ConfigMap step (shared with the broken variants).
pub const CONFIG_MAP: ManagedObject<DemoApp> = ManagedObject {
    label: "configmap",
    kind: Kind::of::<ConfigMap>,
    name: config_map_name,
    desired: desired_config_map,
    merge: chain::merge_desired,
    record: record_config_version,
    adopt: Adopt::Never,
};

/// The StatefulSet step (shared with the broken variants).
pub const STATEFUL_SET: ManagedObject<DemoApp> = ManagedObject {
    label: "statefulset",
    kind: Kind::of::<StatefulSet>,
    name: stateful_set_name,
    desired: desired_stateful_set,
    merge: chain::merge_desired,
    record: record_ready_replicas,
    adopt: Adopt::Never,
};

/// The status step (shared with the broken variants).
pub const STATUS: StatusStep<DemoApp> = StatusStep {
    status: desired_status,
};

/// Every step of a demo reconcile, in order.
pub const STEPS: &[Step<DemoApp, NoExternal, NoExternal>] = &[
    Step::Object(CONFIG_MAP),
    Step::Object(STATEFUL_SET),
    Step::Status(STATUS),
];

/// The demo controller.
pub struct DemoController;

impl ChainReconciler for DemoController {
    type R = DemoApp;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<DemoApp, NoExternal, NoExternal>] {
        STEPS
    }

    fn validate(cr: &DemoApp) -> Result<(), String> {
        crate::resource::validate_spec(&cr.spec)
    }
}
