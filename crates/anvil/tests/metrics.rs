//! Prometheus metrics, `/healthz` and `/readyz` of a running controller, scraped over HTTP on
//! the real control plane: the demo deployed from `anvil manifests` (the binary run with the
//! Deployment's arguments, under its ServiceAccount), one `DemoApp` that converges and one
//! whose ConfigMap already exists without an owner (its reconciles end in the error state).

mod support;

use std::time::Duration;

use anvil_demo::{DemoApp, DemoAppSpec};
use anvil_objects::Kind;
use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use support::*;

fn demo(name: &str, ns: &str) -> DemoApp {
    let mut app = DemoApp::new(
        name,
        DemoAppSpec {
            replicas: 1,
            image: "nginx:1".into(),
            message: "hi".into(),
        },
    );
    app.metadata.namespace = Some(ns.to_string());
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_controller_serves_metrics_health_and_readiness() {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("metrics").await.unwrap();
    let port = free_port();
    let docs = manifests(&[
        "demo",
        "--namespace",
        &ns,
        "--watch-namespace",
        &ns,
        "--metrics-port",
        &port.to_string(),
    ]);
    // The Deployment probes the endpoints this test scrapes.
    let container = &of_kind(&docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["ports"][0]["containerPort"], port);
    apply_all(cp, &client, &docs).await;
    let kubeconfig = service_account_kubeconfig(cp, &client, &ns, "anvil-demo").await;
    let running = start_like_deployment(&docs, &kubeconfig, &[]);

    eventually(
        Duration::from_secs(30),
        || async { http_get(port, "/readyz").is_some_and(|(c, b)| c == 200 && b == "ok\n") },
        || format!("/readyz never answered 200:\n{}", running.logs()),
    )
    .await;
    assert_eq!(http_get(port, "/healthz"), Some((200, "ok\n".to_string())));
    assert_eq!(http_get(port, "/nope").map(|(c, _)| c), Some(404));

    // A DemoApp that converges, and one whose ConfigMap is someone else's.
    let apps = Api::<DemoApp>::namespaced(client.clone(), &ns);
    let web = apps
        .create(&PostParams::default(), &demo("web", &ns))
        .await
        .unwrap();
    let foreign = ConfigMap {
        metadata: ObjectMeta {
            name: Some("taken-config".into()),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    apps.create(&PostParams::default(), &demo("taken", &ns))
        .await
        .unwrap();
    let kinds = [
        Kind::of::<DemoApp>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<StatefulSet>(),
    ];
    eventually(
        Duration::from_secs(60),
        || async {
            let view = snapshot(&client, &ns, &kinds).await;
            anvil_demo::current_state_matches(&web, &view)
        },
        || format!("the demo did not converge:\n{}", running.logs()),
    )
    .await;

    let demo_label = [("controller", "demo")];
    let mut text = String::new();
    eventually(
        Duration::from_secs(30),
        || {
            let t = http_get(port, "/metrics")
                .map(|(_, b)| b)
                .unwrap_or_default();
            let ok = sample(
                &t,
                "anvil_reconcile_errors_total",
                &[("controller", "demo"), ("cause", "error_state")],
            )
            .is_some_and(|v| v >= 1.0);
            text = t;
            async move { ok }
        },
        || format!("no reconcile error counted:\n{}", running.logs()),
    )
    .await;
    let text = &text;
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(text, name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{text}"))
    };
    assert!(
        value(
            "anvil_reconciles_total",
            &[("controller", "demo"), ("outcome", "done")]
        ) >= 1.0
    );
    assert!(
        value(
            "anvil_reconciles_total",
            &[("controller", "demo"), ("outcome", "error")]
        ) >= 1.0
    );
    let count = value("anvil_reconcile_duration_seconds_count", &demo_label);
    let inf = value(
        "anvil_reconcile_duration_seconds_bucket",
        &[("controller", "demo"), ("le", "+Inf")],
    );
    assert!(count >= 2.0 && inf == count, "{text}");
    assert!(value("anvil_reconcile_duration_seconds_sum", &demo_label) > 0.0);
    // Requests by kind, verb and outcome: the first Get of each object finds nothing, the
    // creates succeed, the foreign ConfigMap is read.
    let req = |group, kind, verb, outcome| {
        value(
            "anvil_api_requests_total",
            &[
                ("group", group),
                ("kind", kind),
                ("verb", verb),
                ("outcome", outcome),
            ],
        )
    };
    assert!(req("", "ConfigMap", "Get", "NotFound") >= 1.0);
    assert!(req("", "ConfigMap", "Get", "ok") >= 1.0);
    assert!(req("", "ConfigMap", "Create", "ok") >= 1.0);
    assert!(req("apps", "StatefulSet", "Create", "ok") >= 1.0);
    assert!(req("demo.anvil.dev", "DemoApp", "Get", "ok") >= 1.0);
    // The only replica leads (the Deployment runs with --leader-election).
    assert_eq!(value("anvil_leader", &demo_label), 1.0);
    // GetThen* retries are exported even when there were none.
    assert_eq!(value("anvil_get_then_conflict_retries_total", &[]), 0.0);
    assert_eq!(value("anvil_get_then_exhausted_total", &[]), 0.0);
    assert!(
        text.contains("# TYPE anvil_reconcile_duration_seconds histogram"),
        "{text}"
    );
}
