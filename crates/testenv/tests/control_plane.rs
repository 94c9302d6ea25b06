//! Starts the shared control plane and checks that the real kube-controller-manager runs:
//! the garbage collector deletes dependents of a deleted owner, and the StatefulSet
//! controller writes status.

use std::future::Future;
use std::time::{Duration, Instant};

use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn eventually<F, Fut>(what: &str, cp: &ControlPlane, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}\n{}",
            cp.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn shared() -> &'static ControlPlane {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cp.has_controller_manager(),
        "kube-controller-manager is required"
    );
    eprintln!(
        "control plane at {} started in {:?}",
        cp.server_url(),
        cp.startup_duration()
    );
    cp
}

fn config_map(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: o.metadata.name.clone().unwrap(),
                    uid: o.metadata.uid.clone().unwrap(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn garbage_collector_deletes_dependents() {
    let cp = shared();
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("gc").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", None))
        .await
        .unwrap();
    cms.create(
        &PostParams::default(),
        &config_map("dependent", Some(&owner)),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("dependent").await.unwrap().is_some());

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually(
        "the garbage collector to delete the dependent",
        cp,
        || async { matches!(cms.get_opt("dependent").await, Ok(None)) },
    )
    .await;
}

#[tokio::test]
async fn statefulset_controller_writes_status() {
    let cp = shared();
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("sts").await.unwrap();
    let sts_api: Api<StatefulSet> = Api::namespaced(client, &ns);
    let labels: std::collections::BTreeMap<String, String> =
        [("app".to_string(), "web".to_string())].into();
    let sts = StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some("web".into()),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some("registry.k8s.io/pause:3.10".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = sts_api.create(&PostParams::default(), &sts).await.unwrap();
    let generation = created.metadata.generation.unwrap();
    eventually("the StatefulSet controller to write status", cp, || async {
        sts_api
            .get("web")
            .await
            .ok()
            .and_then(|s| s.status)
            .and_then(|s| s.observed_generation)
            .is_some_and(|g| g >= generation)
    })
    .await;
    // The controller created the pod (no kubelet runs, so it stays Pending).
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(sts_api.into_client(), &ns);
    eventually(
        "the StatefulSet controller to create pod web-0",
        cp,
        || async { matches!(pods.get_opt("web-0").await, Ok(Some(_))) },
    )
    .await;
}

#[tokio::test]
async fn apply_crd_waits_until_established() {
    let cp = shared();
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.testenv.anvil.dev" },
        "spec": {
            "group": "testenv.anvil.dev",
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
            }]
        }
    }))
    .unwrap();
    let stored = cp.apply_crd(crd.clone()).await.unwrap();
    assert!(stored.metadata.uid.is_some());
    // Applying again is idempotent.
    cp.apply_crd(crd).await.unwrap();

    // The resource is served: create one.
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("crd").await.unwrap();
    let gvk = kube::api::GroupVersionKind::gvk("testenv.anvil.dev", "v1", "Widget");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(client, &ns, &ar);
    let w: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "testenv.anvil.dev/v1",
        "kind": "Widget",
        "metadata": { "name": "w1" },
        "spec": { "size": 3 }
    }))
    .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
}

#[test]
fn private_instance_starts_and_tears_down() {
    let cp = ControlPlane::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = cp.kubeconfig_path().parent().unwrap().to_path_buf();
    assert!(cp.kubeconfig_path().is_file());
    assert!(cp.logs().contains("kube-apiserver"));
    eprintln!(
        "private control plane started in {:?}",
        cp.startup_duration()
    );
    drop(cp);
    assert!(!dir.exists(), "working directory removed on drop");
}
