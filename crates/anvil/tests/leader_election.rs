//! Leader election on the real control plane: two replicas of the demo run as the
//! Deployment of `anvil manifests` runs them (`--leader-election`, under the generated
//! ServiceAccount, whose only Lease permissions are the generated Role's). Only the leader
//! reconciles; after `kill -9` of the leader the standby takes the Lease within the lease
//! duration and the custom resource, edited meanwhile, still converges.

mod support;

use std::time::{Duration, Instant};

use anvil_demo::{DemoApp, DemoAppSpec};
use anvil_objects::Kind;
use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use support::*;

/// The Deployment's default lease duration (`anvil run --lease-duration-seconds`).
const LEASE_DURATION: Duration = Duration::from_secs(15);

async fn holder(client: &kube::Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("anvil-demo")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let text = http_get(port, "/metrics")?.1;
    sample(&text, name, &[("controller", "demo")])
}

fn reconciles(port: u16) -> f64 {
    let text = http_get(port, "/metrics").expect("metrics").1;
    text.lines()
        .filter(|l| l.starts_with("anvil_reconciles_total{") && l.contains("controller=\"demo\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_the_standby_takes_over_after_kill_9() {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("leader").await.unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let docs = manifests(&[
        "demo",
        "--namespace",
        &ns,
        "--watch-namespace",
        &ns,
        "--metrics-port",
        &port_a.to_string(),
    ]);
    let deployment = of_kind(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert!(
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--leader-election")
    );
    apply_all(cp, &client, &docs).await;
    let kubeconfig = service_account_kubeconfig(cp, &client, &ns, "anvil-demo").await;

    // Replica A starts first and takes the Lease.
    let mut a = start_like_deployment(&docs, &kubeconfig, &[]);
    eventually(
        Duration::from_secs(30),
        || async { holder(&client, &ns).await.as_deref() == Some(a.pod_name.as_str()) },
        || format!("replica A never held the Lease:\n{}", a.logs()),
    )
    .await;
    // Replica B stands by.
    let b = start_like_deployment(&with_metrics_port(&docs, port_b), &kubeconfig, &[]);
    eventually(
        Duration::from_secs(30),
        || async { metric(port_b, "anvil_leader") == Some(0.0) },
        || format!("replica B never served anvil_leader 0:\n{}", b.logs()),
    )
    .await;
    assert_eq!(metric(port_a, "anvil_leader"), Some(1.0));
    assert!(http_get(port_b, "/readyz").is_some_and(|(c, _)| c == 200));

    // Only the leader reconciles.
    let mut app = DemoApp::new(
        "web",
        DemoAppSpec {
            replicas: 1,
            image: "nginx:1".into(),
            message: "hi".into(),
        },
    );
    app.metadata.namespace = Some(ns.clone());
    let apps = Api::<DemoApp>::namespaced(client.clone(), &ns);
    let created = apps.create(&PostParams::default(), &app).await.unwrap();
    let kinds = [
        Kind::of::<DemoApp>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<StatefulSet>(),
    ];
    eventually(
        Duration::from_secs(60),
        || async {
            anvil_demo::current_state_matches(&created, &snapshot(&client, &ns, &kinds).await)
        },
        || format!("the leader did not converge the demo:\n{}", a.logs()),
    )
    .await;
    assert!(reconciles(port_a) >= 1.0);
    assert_eq!(
        reconciles(port_b),
        0.0,
        "the standby reconciled:\n{}",
        b.logs()
    );
    assert_eq!(
        holder(&client, &ns).await.as_deref(),
        Some(a.pod_name.as_str())
    );

    // kill -9 the leader, then edit the DemoApp: the standby takes over and converges it.
    a.kill9();
    let killed = Instant::now();
    let edited = apps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 3, "message": "bye"}})),
        )
        .await
        .unwrap();
    eventually(
        LEASE_DURATION + Duration::from_secs(30),
        || async { holder(&client, &ns).await.as_deref() == Some(b.pod_name.as_str()) },
        || format!("replica B never took the Lease:\n{}", b.logs()),
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!("takeover {takeover:?} after kill -9 (lease duration {LEASE_DURATION:?})");
    // Within the lease duration, plus the standby's polling interval (it checks the Lease
    // about every grace period) and this test's own polling.
    assert!(
        takeover <= LEASE_DURATION + Duration::from_secs(8),
        "takeover took {takeover:?}"
    );
    eventually(
        Duration::from_secs(60),
        || async {
            anvil_demo::current_state_matches(&edited, &snapshot(&client, &ns, &kinds).await)
        },
        || format!("the new leader did not converge the edit:\n{}", b.logs()),
    )
    .await;
    assert_eq!(metric(port_b, "anvil_leader"), Some(1.0));
    assert!(reconciles(port_b) >= 1.0);
}
