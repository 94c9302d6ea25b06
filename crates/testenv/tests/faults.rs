//! Fault injection on a private control plane: kube-apiserver and etcd killed and restarted
//! (objects survive: same etcd data directory), kube-apiserver paused and resumed (requests
//! hang, then answer), and clear errors for calls that do not fit a component's state.

use std::time::Duration;

use anvil_testenv::{Component, ControlPlane, TestEnvError};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("k".to_string(), name.to_string())].into()),
        ..Default::default()
    }
}

fn fault_message(r: Result<(), TestEnvError>) -> String {
    match r {
        Err(TestEnvError::Fault(m)) => m,
        other => panic!("expected a Fault error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_are_killed_restarted_paused_and_resumed() {
    let cp = ControlPlane::start().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    let ns = cp.fresh_namespace("faults").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    cms.create(&PostParams::default(), &config_map("before"))
        .await
        .unwrap();
    let api_pid = cp.pid(Component::ApiServer).expect("the API server runs");

    // Calls that do not fit.
    let m = fault_message(cp.restart(Component::ApiServer).await);
    assert!(m.contains("kube-apiserver runs; kill it"), "{m}");

    // kube-apiserver killed: requests fail; restarted on the same port, etcd and certs.
    cp.kill(Component::ApiServer).unwrap();
    assert_eq!(cp.pid(Component::ApiServer), None);
    assert!(cms.get("before").await.is_err(), "the API server is dead");
    let m = fault_message(cp.kill(Component::ApiServer));
    assert!(m.contains("already killed"), "{m}");
    let m = fault_message(cp.pause(Component::ApiServer));
    assert!(m.contains("is killed"), "{m}");
    cp.restart(Component::ApiServer)
        .await
        .unwrap_or_else(|e| panic!("kube-apiserver restarts: {e}"));
    assert_ne!(cp.pid(Component::ApiServer), Some(api_pid));
    // The same client (same URL, CA and token) works again; the object survived.
    let got = cms.get("before").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "before");

    // etcd killed and restarted on the same data directory.
    cms.create(&PostParams::default(), &config_map("before-etcd"))
        .await
        .unwrap();
    cp.kill(Component::Etcd).unwrap();
    cp.restart(Component::Etcd)
        .await
        .unwrap_or_else(|e| panic!("etcd restarts: {e}"));
    assert!(cms.get("before-etcd").await.is_ok());

    // kube-apiserver paused: a request hangs (here: beyond a 2 s bound); resumed: it answers.
    cp.pause(Component::ApiServer).unwrap();
    let hung = tokio::time::timeout(Duration::from_secs(2), cms.get("before")).await;
    assert!(
        hung.is_err(),
        "a paused API server does not answer: {hung:?}"
    );
    cp.resume(Component::ApiServer).unwrap();
    cp.wait_ready(Duration::from_secs(60)).await.unwrap();
    cms.create(&PostParams::default(), &config_map("after"))
        .await
        .unwrap();

    cp.check_running()
        .unwrap_or_else(|e| panic!("{e}\n{}", cp.logs()));
    if cp.has_controller_manager() {
        assert!(cp.pid(Component::ControllerManager).is_some());
    } else {
        let m = fault_message(cp.kill(Component::ControllerManager));
        assert!(m.contains("runs no kube-controller-manager"), "{m}");
    }
}
