//! The RBAC of `anvil manifests`, for real: the test control plane authorizes with RBAC
//! (`--authorization-mode=RBAC`; the admin client is in `system:masters`). Each example
//! controller's manifests are applied, and the `anvil` binary runs with the Deployment's
//! arguments and environment under a token of the generated ServiceAccount (TokenRequest
//! API). It must converge with exactly the generated rules, and with one rule removed it must
//! fail loudly: `Forbidden` errors in its log and a `Forbidden` Warning Event on the custom
//! resource, while it keeps running.
//!
//! One control plane for the whole binary; the demo runs are namespaced (a Role), ZooKeeper
//! and RabbitMQ cluster-wide (a ClusterRole), so the tests do not see each other's objects.

mod support;
#[path = "../../../controllers/zookeeper/tests/support/zk_server.rs"]
mod zk_server;

use std::time::Duration;

use anvil_demo::{DemoApp, DemoAppSpec};
use anvil_objects::Kind;
use anvil_rabbitmq::{RabbitmqCluster, RabbitmqClusterSpec};
use anvil_testenv::ControlPlane;
use anvil_zookeeper::zk_client::read_cluster_size_znodes;
use anvil_zookeeper::{ZookeeperCluster, ZookeeperClusterSpec};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use support::*;

const CONVERGE: Duration = Duration::from_secs(90);

async fn setup(prefix: &str) -> (&'static ControlPlane, kube::Client, String) {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace(prefix).await.unwrap();
    (cp, client, ns)
}

/// Whether the ServiceAccount `(namespace, name)` may do `what` (`"<verb> <resource>[.<group>]"`)
/// in `namespace`.
async fn allowed(client: &kube::Client, sa: (&str, &str), what: &str, namespace: &str) -> bool {
    let (ns, name) = sa;
    let (verb, resource) = what.split_once(' ').expect("verb resource");
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{name}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("a SubjectAccessReview")
        .status
        .is_some_and(|s| s.allowed)
}

fn demo_kinds() -> Vec<Kind> {
    vec![
        Kind::of::<DemoApp>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<StatefulSet>(),
    ]
}

async fn create_demo(client: &kube::Client, ns: &str) -> DemoApp {
    let mut app = DemoApp::new(
        "web",
        DemoAppSpec {
            replicas: 2,
            image: "nginx:1".into(),
            message: "hi".into(),
        },
    );
    app.metadata.namespace = Some(ns.to_string());
    Api::<DemoApp>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &app)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_converges_under_its_generated_role() {
    let (cp, client, ns) = setup("rbac-demo").await;
    let port = free_port().to_string();
    let docs = manifests(&[
        "demo",
        "--namespace",
        &ns,
        "--watch-namespace",
        &ns,
        "--metrics-port",
        &port,
    ]);
    // The controller's Role (--watch-namespace) and the leader-election Lease's Role.
    let roles: Vec<_> = of_kind(&docs, "Role")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(roles, ["anvil-demo", "anvil-demo-leader-election"]);
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    apply_all(cp, &client, &docs).await;
    // Least privilege: what the demo never does is denied.
    let sa = (ns.as_str(), "anvil-demo");
    assert!(allowed(&client, sa, "update statefulsets.apps", &ns).await);
    assert!(!allowed(&client, sa, "delete statefulsets.apps", &ns).await);
    assert!(!allowed(&client, sa, "get secrets", &ns).await);
    assert!(!allowed(&client, sa, "list statefulsets.apps", "default").await);
    assert!(allowed(&client, sa, "patch leases.coordination.k8s.io", &ns).await);
    assert!(!allowed(&client, sa, "delete leases.coordination.k8s.io", &ns).await);

    let kubeconfig = service_account_kubeconfig(cp, &client, &ns, "anvil-demo").await;
    let running = start_like_deployment(&docs, &kubeconfig, &[]);
    let created = create_demo(&client, &ns).await;
    eventually(
        CONVERGE,
        || async {
            let view = snapshot(&client, &ns, &demo_kinds()).await;
            anvil_demo::current_state_matches(&created, &view)
        },
        || {
            format!(
                "the demo did not converge under its Role:\n{}",
                running.logs()
            )
        },
    )
    .await;
    let logs = running.logs();
    assert!(
        !logs.contains("Forbidden") && !logs.contains("forbidden"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_without_its_statefulset_rule_reports_forbidden() {
    let (cp, client, ns) = setup("rbac-demo-missing").await;
    let port = free_port().to_string();
    let mut docs = manifests(&[
        "demo",
        "--namespace",
        &ns,
        "--watch-namespace",
        &ns,
        "--metrics-port",
        &port,
    ]);
    // Remove the one rule on StatefulSets.
    let rules = named_mut(&mut docs, "Role", "anvil-demo")["rules"]
        .as_array_mut()
        .unwrap();
    let before = rules.len();
    rules.retain(|r| r["resources"] != serde_json::json!(["statefulsets"]));
    assert_eq!(rules.len(), before - 1, "the Role had one StatefulSet rule");
    apply_all(cp, &client, &docs).await;

    let kubeconfig = service_account_kubeconfig(cp, &client, &ns, "anvil-demo").await;
    let mut running = start_like_deployment(&docs, &kubeconfig, &[]);
    let created = create_demo(&client, &ns).await;
    eventually(
        CONVERGE,
        || async {
            events_about(&client, &ns, "web").await.iter().any(|e| {
                e.reason.as_deref() == Some("Forbidden")
                    && e.type_.as_deref() == Some("Warning")
                    && e.note
                        .as_deref()
                        .is_some_and(|n| n.contains("statefulsets"))
            })
        },
        || format!("no Forbidden Event on the DemoApp:\n{}", running.logs()),
    )
    .await;
    let logs = running.logs();
    assert!(
        logs.contains("Forbidden") && logs.contains("statefulsets"),
        "the log names the refused request: {logs}"
    );
    assert!(running.is_running(), "the controller keeps running: {logs}");
    // The ConfigMap (allowed) was written; the StatefulSet could not be.
    let view = snapshot(&client, &ns, &demo_kinds()).await;
    assert!(!anvil_demo::current_state_matches(&created, &view));
    assert!(
        view.keys().any(|k| k.kind == Kind::of::<ConfigMap>()),
        "the allowed part of the reconcile ran: {view:#?}"
    );
    assert!(!view.keys().any(|k| k.kind == Kind::of::<StatefulSet>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_converges_under_its_generated_cluster_role() {
    let zk = zk_server::ZkServer::start();
    let (cp, client, operator_ns) = setup("rbac-zk-operator").await;
    let ns = cp.fresh_namespace("rbac-zk").await.unwrap();
    let port = free_port().to_string();
    let docs = manifests(&[
        "zookeeper",
        "--namespace",
        &operator_ns,
        "--metrics-port",
        &port,
    ]);
    assert_eq!(of_kind(&docs, "ClusterRole").len(), 1);
    apply_all(cp, &client, &docs).await;
    let sa = (operator_ns.as_str(), "anvil-zookeeper");
    assert!(allowed(&client, sa, "update statefulsets.apps", &ns).await);
    assert!(!allowed(&client, sa, "delete statefulsets.apps", &ns).await);
    assert!(!allowed(&client, sa, "patch leases.coordination.k8s.io", &ns).await);

    let kubeconfig = service_account_kubeconfig(cp, &client, &operator_ns, "anvil-zookeeper").await;
    // In a cluster the ensemble is reached through its client Service; here the one real
    // ZooKeeper server on loopback stands in for it (the only argument the test adds).
    let zk_addr = zk.address();
    let running = start_like_deployment(&docs, &kubeconfig, &["--zk-address", &zk_addr]);
    let mut cr = ZookeeperCluster::new("zk", ZookeeperClusterSpec::with_replicas(3));
    cr.metadata.namespace = Some(ns.clone());
    Api::<ZookeeperCluster>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cr)
        .await
        .unwrap();
    let kinds = vec![
        Kind::of::<ZookeeperCluster>(),
        Kind::of::<Service>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<StatefulSet>(),
    ];
    eventually(
        CONVERGE,
        || async {
            let Some(cr) = Api::<ZookeeperCluster>::namespaced(client.clone(), &ns)
                .get_opt("zk")
                .await
                .unwrap()
            else {
                return false;
            };
            let view = snapshot(&client, &ns, &kinds).await;
            let znodes = read_cluster_size_znodes(&zk_addr).await.unwrap();
            anvil_zookeeper::current_state_matches(&cr, &view, &znodes)
        },
        || {
            format!(
                "zookeeper did not converge under its ClusterRole:\n{}",
                running.logs()
            )
        },
    )
    .await;
    let logs = running.logs();
    assert!(
        !logs.contains("Forbidden") && !logs.contains("forbidden"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_converges_under_its_generated_cluster_role() {
    let (cp, client, operator_ns) = setup("rbac-rmq-operator").await;
    let ns = cp.fresh_namespace("rbac-rmq").await.unwrap();
    let port = free_port().to_string();
    let docs = manifests(&[
        "rabbitmq",
        "--namespace",
        &operator_ns,
        "--metrics-port",
        &port,
    ]);
    apply_all(cp, &client, &docs).await;
    let kubeconfig = service_account_kubeconfig(cp, &client, &operator_ns, "anvil-rabbitmq").await;
    let running = start_like_deployment(&docs, &kubeconfig, &[]);
    let mut cr = RabbitmqCluster::new("rabbit", RabbitmqClusterSpec::default());
    cr.metadata.namespace = Some(ns.clone());
    Api::<RabbitmqCluster>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cr)
        .await
        .unwrap();
    let kinds = vec![
        Kind::of::<RabbitmqCluster>(),
        Kind::of::<Service>(),
        Kind::of::<Secret>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<ServiceAccount>(),
        Kind::of::<Role>(),
        Kind::of::<RoleBinding>(),
        Kind::of::<StatefulSet>(),
    ];
    eventually(
        CONVERGE,
        || async {
            let Some(cr) = Api::<RabbitmqCluster>::namespaced(client.clone(), &ns)
                .get_opt("rabbit")
                .await
                .unwrap()
            else {
                return false;
            };
            let view = snapshot(&client, &ns, &kinds).await;
            anvil_rabbitmq::current_state_matches(&cr, &view)
        },
        || {
            format!(
                "rabbitmq did not converge under its ClusterRole:\n{}",
                running.logs()
            )
        },
    )
    .await;
    let logs = running.logs();
    assert!(
        !logs.contains("Forbidden") && !logs.contains("forbidden"),
        "{logs}"
    );
}
