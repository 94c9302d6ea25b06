//! The desired-state predicate: when does the cluster match a `Website`? ESR, the property
//! `verify` checks, reads: once the custom resource stops changing, the cluster eventually
//! matches it (this predicate holds) and keeps matching.

use crate::reconciler::{
    CONTENT_VERSION_ANNOTATION, config_map_name, ready_replicas, stateful_set_name,
};
use crate::resource::Website;
use anvil::objects::{Kind, ObjectRef, is_controlled_by};
use anvil::reconciler::ClusterView;
use anvil::reconciler::chain::owner_of;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;

/// True when the cluster matches `site`: its ConfigMap holds the page, its StatefulSet runs
/// the image with the replica count and carries the ConfigMap's current resourceVersion, both
/// are controlled by `site`, and the stored custom resource's status reports the
/// StatefulSet's ready replicas.
pub fn current_state_matches(site: &Website, view: &impl ClusterView) -> bool {
    let Some(owner) = owner_of(site) else {
        return false;
    };
    let namespace = site.metadata.namespace.clone().unwrap_or_default();
    let key = |kind: Kind, name: String| ObjectRef::new(kind, &namespace, name);
    let (Some(cm), Some(sts), Some(stored)) = (
        view.get(&key(Kind::of::<ConfigMap>(), config_map_name(site))),
        view.get(&key(Kind::of::<StatefulSet>(), stateful_set_name(site))),
        view.get(&key(Kind::of::<Website>(), stateful_set_name(site))),
    ) else {
        return false;
    };
    if !is_controlled_by(cm, &owner) || !is_controlled_by(sts, &owner) {
        return false;
    }
    if stored.uid() != site.metadata.uid.as_deref() {
        return false;
    }
    let content_ok = cm
        .body()
        .get("data")
        .and_then(|d| d.get("index.html"))
        .and_then(|v| v.as_str())
        == Some(site.spec.content.as_str());
    let spec = sts.spec();
    let replicas_ok = spec
        .and_then(|s| s.get("replicas"))
        .and_then(|r| r.as_i64())
        == Some(i64::from(site.spec.replicas));
    let pod = spec.and_then(|s| s.get("template"));
    let image_ok = pod
        .and_then(|t| t.pointer("/spec/containers/0/image"))
        .and_then(|i| i.as_str())
        == Some(site.spec.image.as_str());
    let version_ok = pod
        .and_then(|t| t.pointer("/metadata/annotations"))
        .and_then(|a| a.get(CONTENT_VERSION_ANNOTATION))
        .and_then(|v| v.as_str())
        == cm.resource_version();
    let status_ok = stored
        .status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|r| r.as_i64())
        == Some(ready_replicas(sts));
    content_ok && replicas_ok && image_ok && version_ok && status_ok
}
