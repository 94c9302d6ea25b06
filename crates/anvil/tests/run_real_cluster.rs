//! `anvil crd` and `anvil run` as a user runs them, against the real control plane
//! (etcd + kube-apiserver + kube-controller-manager on loopback, from `anvil-testenv`).

use anvil_demo::{DemoApp, DemoAppSpec, current_state_matches};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn anvil(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anvil"));
    c.args(args);
    c
}

/// Kills the controller process when the test ends, also on panic.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn snapshot(client: &kube::Client, ns: &str) -> BTreeMap<ObjectRef, DynamicObject> {
    let mut out = BTreeMap::new();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let stss = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let apps = Api::<DemoApp>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let objs = cms
        .items
        .iter()
        .map(DynamicObject::from_typed)
        .chain(stss.items.iter().map(DynamicObject::from_typed))
        .chain(apps.items.iter().map(DynamicObject::from_typed));
    for obj in objs {
        let obj = obj.unwrap();
        out.insert(obj.object_ref(), obj);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_crd_installs_and_anvil_run_converges_the_demo() {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let kubeconfig = cp.kubeconfig_path().to_str().unwrap().to_string();
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("anvil-run").await.unwrap();

    // Before the CRD is installed, `anvil run` says so and how to fix it.
    let out = anvil(&["run", "demo", "--kubeconfig", &kubeconfig])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not installed") && stderr.contains("anvil crd demo"),
        "{stderr}"
    );

    // `anvil crd demo` prints a CRD the API server accepts.
    let out = anvil(&["crd", "demo"]).output().unwrap();
    assert!(out.status.success());
    let crd: CustomResourceDefinition = serde_yaml::from_slice(&out.stdout).expect("CRD YAML");
    cp.apply_crd(crd)
        .await
        .expect("the printed CRD is accepted and established");

    let child = anvil(&[
        "run",
        "demo",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        &ns,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let _running = Running(child);

    let mut app = DemoApp::new(
        "web",
        DemoAppSpec {
            replicas: 2,
            image: "nginx:1".into(),
            message: "hi".into(),
        },
    );
    app.metadata.namespace = Some(ns.clone());
    let created = Api::<DemoApp>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &app)
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = snapshot(&client, &ns).await;
        if current_state_matches(&created, &view) {
            let cm = view
                .get(&ObjectRef::new(Kind::of::<ConfigMap>(), &ns, "web-config"))
                .unwrap();
            assert_eq!(
                cm.controller_ref().map(|r| r.uid.as_str()),
                created.metadata.uid.as_deref()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`anvil run demo` did not converge: {view:#?}\n{}",
            cp.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
