//! The desired-state predicate, used by the checker (ESR) and by the end-to-end tests.

use crate::reconciler::{CONFIG_VERSION_ANNOTATION, config_map_name, stateful_set_name};
use crate::resource::DemoApp;
use anvil_objects::{Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::ClusterView;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;

/// True when the cluster matches `cr`: its ConfigMap holds the message, its StatefulSet runs
/// the image with the replica count and carries the ConfigMap's current resourceVersion, both
/// are controlled by `cr`, and the stored CR's status reports the StatefulSet's ready replicas.
pub fn current_state_matches(cr: &DemoApp, view: &impl ClusterView) -> bool {
    let Some(owner) = cr.metadata.uid.as_ref().map(|uid| Owner {
        api_version: "demo.anvil.dev/v1".into(),
        kind: "DemoApp".into(),
        name: cr.metadata.name.clone().unwrap_or_default(),
        uid: uid.clone(),
    }) else {
        return false;
    };
    let namespace = cr.metadata.namespace.clone().unwrap_or_default();
    let cm_key = ObjectRef::new(Kind::of::<ConfigMap>(), &namespace, config_map_name(cr));
    let sts_key = ObjectRef::new(Kind::of::<StatefulSet>(), &namespace, stateful_set_name(cr));
    let cr_key = ObjectRef::new(Kind::of::<DemoApp>(), &namespace, stateful_set_name(cr));
    let (Some(cm), Some(sts), Some(stored_cr)) =
        (view.get(&cm_key), view.get(&sts_key), view.get(&cr_key))
    else {
        return false;
    };
    if !is_controlled_by(cm, &owner) || !is_controlled_by(sts, &owner) {
        return false;
    }
    if stored_cr.uid() != cr.metadata.uid.as_deref() {
        return false;
    }
    let message_ok = cm
        .body()
        .get("data")
        .and_then(|d| d.get("message"))
        .and_then(|m| m.as_str())
        == Some(cr.spec.message.as_str());
    let spec = sts.spec();
    let replicas_ok = spec
        .and_then(|s| s.get("replicas"))
        .and_then(|r| r.as_i64())
        == Some(i64::from(cr.spec.replicas));
    let pod = spec.and_then(|s| s.get("template"));
    let image_ok = pod
        .and_then(|t| t.pointer("/spec/containers/0/image"))
        .and_then(|i| i.as_str())
        == Some(cr.spec.image.as_str());
    let version_ok = pod
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(CONFIG_VERSION_ANNOTATION))
        .and_then(|v| v.as_str())
        == cm.resource_version();
    let ready = sts
        .status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|r| r.as_i64())
        .unwrap_or(0);
    let status_ok = stored_cr
        .status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|r| r.as_i64())
        == Some(ready);
    message_ok && replicas_ok && image_ok && version_ok && status_ok
}
