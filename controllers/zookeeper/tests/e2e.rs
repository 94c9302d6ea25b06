//! End to end on a real control plane (etcd + kube-apiserver + kube-controller-manager, from
//! `anvil-testenv`) and a real ZooKeeper server on loopback (`support::zk_server`, provisioned
//! by `scripts/provision-zookeeper.sh`). No pods run (there is no kubelet), so ready replicas
//! stay 0; everything else is real. The desired-state predicate is the one the checker uses.

mod support;

use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::{KubeRequest, KubeResponse};
use anvil_shim::{BoxFuture, CancellationToken, ExternalShim, Outcome, reconcile_once};
use anvil_testenv::{ControlPlane, eventually};
use anvil_zookeeper::reconciler::{CONFIG_VERSION_ANNOTATION, ZookeeperController};
use anvil_zookeeper::zk_client::{ZkClient, read_cluster_size_znodes};
use anvil_zookeeper::{
    ZkRequest, ZkResponse, ZookeeperCluster, ZookeeperClusterSpec, crd, current_state_matches,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::zk_server::ZkServer;

fn kinds() -> Vec<Kind> {
    vec![
        Kind::of::<ZookeeperCluster>(),
        Kind::of::<Service>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<StatefulSet>(),
    ]
}

/// Every object of the controller's kinds in `ns`, as a `ClusterView`.
async fn snapshot(client: &kube::Client, ns: &str) -> BTreeMap<ObjectRef, DynamicObject> {
    anvil_shim::list_view(client, ns, kinds())
        .await
        .unwrap_or_else(|e| panic!("list failed: {e:?}"))
}

async fn matches(client: &kube::Client, ns: &str, name: &str, zk: &str) -> bool {
    let api: Api<ZookeeperCluster> = Api::namespaced(client.clone(), ns);
    let Some(cr) = api.get_opt(name).await.unwrap() else {
        return false;
    };
    let view = snapshot(client, ns).await;
    let znodes = read_cluster_size_znodes(zk).await.unwrap();
    current_state_matches(&cr, &view, &znodes)
}

async fn setup() -> (&'static ControlPlane, kube::Client, String) {
    let cp = ControlPlane::shared().expect("control plane");
    let client = cp.client().await.unwrap();
    cp.apply_crd(crd()).await.unwrap();
    let ns = cp.fresh_namespace("zk-e2e").await.unwrap();
    (cp, client, ns)
}

fn cr(name: &str, replicas: i32) -> ZookeeperCluster {
    ZookeeperCluster::new(name, ZookeeperClusterSpec::with_replicas(replicas))
}

async fn get(client: &kube::Client, key: &ObjectRef) -> Option<DynamicObject> {
    match anvil_shim::execute(client, &KubeRequest::Get(key.clone())).await {
        KubeResponse::Get(Ok(o)) => Some(o),
        _ => None,
    }
}

async fn znode(zk: &str, name: &str) -> Option<String> {
    read_cluster_size_znodes(zk)
        .await
        .unwrap()
        .get(&format!("/zookeeper-operator/{name}"))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_scale_conf_invalid_delete() {
    let zk = ZkServer::start();
    let (cp, client, ns) = setup().await;
    assert!(
        cp.has_controller_manager(),
        "garbage collection needs kube-controller-manager"
    );
    let zk_addr = zk.address();

    let shutdown = CancellationToken::new();
    let config = anvil_zookeeper::run::shim_config()
        .with_namespace(&ns)
        .with_signal_handling(false)
        .with_requeue_after(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .with_shutdown(shutdown.clone());
    let controller = tokio::spawn(anvil_zookeeper::run::run(
        client.clone(),
        config,
        Some(zk_addr.clone()),
    ));

    let api: Api<ZookeeperCluster> = Api::namespaced(client.clone(), &ns);
    let name = "lifecycle";
    let stored = api
        .create(&PostParams::default(), &cr(name, 3))
        .await
        .unwrap();
    // The API server applied the CRD's defaults.
    assert_eq!(stored.spec.ports.client, 2181);
    assert_eq!(stored.spec.conf.tick_time, 2000);

    // Create: every child exists, controlled by the CR, with the expected spec; znode = 3.
    eventually(
        "the cluster to match the CR",
        Duration::from_secs(60),
        || matches(&client, &ns, name, &zk_addr),
    )
    .await;
    let cr_now = api.get(name).await.unwrap();
    let owner = Owner {
        api_version: "zookeeper.anvil.dev/v1".into(),
        kind: "ZookeeperCluster".into(),
        name: name.into(),
        uid: cr_now.metadata.uid.clone().unwrap(),
    };
    let key = |kind: Kind, n: &str| ObjectRef::new(kind, &ns, n);
    let children = [
        key(Kind::of::<Service>(), "lifecycle-headless"),
        key(Kind::of::<Service>(), "lifecycle-client"),
        key(Kind::of::<Service>(), "lifecycle-admin-server"),
        key(Kind::of::<ConfigMap>(), "lifecycle-configmap"),
        key(Kind::of::<StatefulSet>(), "lifecycle"),
    ];
    for k in &children {
        let o = get(&client, k)
            .await
            .unwrap_or_else(|| panic!("{k} missing"));
        assert!(
            is_controlled_by(&o, &owner),
            "{k} is not controlled by the CR"
        );
    }
    let headless = get(&client, &children[0]).await.unwrap();
    assert_eq!(headless.spec().unwrap()["clusterIP"], "None");
    let sts: StatefulSet = get(&client, &children[4])
        .await
        .unwrap()
        .to_typed()
        .unwrap();
    let sts_spec = sts.spec.unwrap();
    assert_eq!(sts_spec.replicas, Some(3));
    assert_eq!(sts_spec.service_name.as_deref(), Some("lifecycle-headless"));
    let pod = sts_spec.template.spec.unwrap();
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("pravega/zookeeper:0.2.15")
    );
    assert_eq!(sts_spec.volume_claim_templates.unwrap().len(), 1);
    let cm: ConfigMap = get(&client, &children[3])
        .await
        .unwrap()
        .to_typed()
        .unwrap();
    let data = cm.data.unwrap();
    assert!(data["zoo.cfg"].contains("tickTime=2000"));
    assert!(data["env.sh"].contains("CLUSTER_SIZE=3"));
    assert!(data.contains_key("log4j.properties") && data.contains_key("log4j-quiet.properties"));
    assert_eq!(
        znode(&zk_addr, name).await.as_deref(),
        Some("CLUSTER_SIZE=3")
    );
    assert_eq!(cr_now.status.map(|s| s.ready_replicas), Some(0));

    // Scale 3 -> 5 -> 3: the StatefulSet and the znode follow.
    for replicas in [5, 3] {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
        eventually(
            &format!("scale to {replicas}"),
            Duration::from_secs(60),
            || matches(&client, &ns, name, &zk_addr),
        )
        .await;
        let sts: StatefulSet = get(&client, &children[4])
            .await
            .unwrap()
            .to_typed()
            .unwrap();
        assert_eq!(sts.spec.unwrap().replicas, Some(replicas));
        assert_eq!(
            znode(&zk_addr, name).await,
            Some(format!("CLUSTER_SIZE={replicas}"))
        );
    }
    // The CEL rule rejects 2.
    let err = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect_err("replicas 2 must be rejected");
    assert!(
        err.to_string().contains("replicas must be at least 3"),
        "{err}"
    );

    // Conf change: the ConfigMap changes and so does the pod template's annotation.
    let annotation = |sts: &DynamicObject| {
        sts.spec().unwrap()["template"]["metadata"]["annotations"][CONFIG_VERSION_ANNOTATION]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before_cm = get(&client, &children[3]).await.unwrap();
    let before = annotation(&get(&client, &children[4]).await.unwrap());
    assert_eq!(Some(before.as_str()), before_cm.resource_version());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"conf": {"tickTime": 3000}}})),
    )
    .await
    .unwrap();
    eventually("the conf change", Duration::from_secs(60), || async {
        let cm = get(&client, &children[3]).await.unwrap();
        cm.body()["data"]["zoo.cfg"]
            .as_str()
            .unwrap()
            .contains("tickTime=3000")
            && matches(&client, &ns, name, &zk_addr).await
    })
    .await;
    let after_cm = get(&client, &children[3]).await.unwrap();
    let after = annotation(&get(&client, &children[4]).await.unwrap());
    assert_ne!(before, after, "the pod template's annotation changed");
    assert_eq!(Some(after.as_str()), after_cm.resource_version());

    // Immutable fields.
    for patch in [
        json!({"spec": {"ports": {"client": 2182}}}),
        json!({"spec": {"persistence": {"storageSize": "1Gi"}}}),
    ] {
        let err = api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch.clone()))
            .await
            .expect_err("immutable");
        assert!(err.to_string().contains("immutable"), "{patch}: {err}");
    }

    // Delete: the children are garbage-collected.
    api.delete(name, &DeleteParams::default()).await.unwrap();
    eventually(
        "the children to be garbage-collected",
        Duration::from_secs(90),
        || async {
            for k in &children {
                if get(&client, k).await.is_some() {
                    return false;
                }
            }
            true
        },
    )
    .await;

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), controller).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_crs_are_rejected_by_the_api_server() {
    let (_cp, client, ns) = setup().await;
    let api: Api<ZookeeperCluster> = Api::namespaced(client.clone(), &ns);
    let mut sync0 = ZookeeperClusterSpec::with_replicas(3);
    sync0.conf.sync_limit = 0;
    let mut minmax = ZookeeperClusterSpec::with_replicas(3);
    minmax.conf.min_session_timeout = 50_000;
    let cases = [
        (
            ZookeeperClusterSpec::with_replicas(2),
            "replicas must be at least 3",
        ),
        (sync0, "syncLimit must be at least 1"),
        (
            minmax,
            "minSessionTimeout must not exceed maxSessionTimeout",
        ),
    ];
    for (i, (spec, message)) in cases.into_iter().enumerate() {
        let model = anvil_zookeeper::resource::validate_spec(&spec)
            .expect_err("the model's evaluation of the CRD's rules rejects it too");
        assert!(model.contains(message), "{message}: {model}");
        let obj = ZookeeperCluster::new(&format!("invalid-{i}"), spec);
        let err = api
            .create(&PostParams::default(), &obj)
            .await
            .expect_err("must be rejected");
        assert!(err.to_string().contains(message), "{message}: {err}");
    }
}

/// An external shim that executes the ZooKeeper request and then "crashes": the response is
/// never delivered (the reconcile is abandoned by the caller's timeout, losing local state).
struct CrashAfterZk {
    inner: ZkClient,
    calls: AtomicUsize,
}

impl ExternalShim<ZkRequest, ZkResponse> for CrashAfterZk {
    fn call(&self, req: ZkRequest) -> BoxFuture<'_, ZkResponse> {
        Box::pin(async move {
            let _ = self.inner.execute(&req).await;
            self.calls.fetch_add(1, Ordering::SeqCst);
            futures::future::pending().await
        })
    }
}

/// Runs reconciles (no crash) until the predicate holds.
async fn converge(client: &kube::Client, ns: &str, name: &str, zk: &str) {
    let config = anvil_zookeeper::run::shim_config();
    let shim = ZkClient::fixed(zk);
    for _ in 0..10 {
        let out = reconcile_once::<ZookeeperController>(client, &config, &shim, ns, name)
            .await
            .unwrap();
        if matches!(out, Outcome::Done { .. }) && matches(client, ns, name, zk).await {
            return;
        }
    }
    panic!("{name} did not converge after restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_write_point_converges_after_restart() {
    let zk = ZkServer::start();
    let (_cp, client, ns) = setup().await;
    let zk_addr = zk.address();
    let api: Api<ZookeeperCluster> = Api::namespaced(client.clone(), &ns);
    let shim = ZkClient::fixed(&zk_addr);

    // Writes of a first reconcile: 3 Services, ConfigMap, StatefulSet, status = 6; of a scale
    // 3 -> 5: ConfigMap (env.sh), StatefulSet, (status unchanged) = 2. Sweep one past the end.
    for phase in ["create", "scale"] {
        let mut n = 1;
        loop {
            let name = format!("crash-{phase}-{n}");
            api.create(&PostParams::default(), &cr(&name, 3))
                .await
                .unwrap();
            if phase == "scale" {
                converge(&client, &ns, &name, &zk_addr).await;
                api.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": 5}})),
                )
                .await
                .unwrap();
            }
            let config = anvil_zookeeper::run::shim_config().with_crash_after_writes(Some(n));
            let out = reconcile_once::<ZookeeperController>(&client, &config, &shim, &ns, &name)
                .await
                .unwrap();
            let crashed = matches!(out, Outcome::Crashed { .. });
            // Restart: a fresh controller converges.
            converge(&client, &ns, &name, &zk_addr).await;
            let want = if phase == "scale" { 5 } else { 3 };
            assert_eq!(
                znode(&zk_addr, &name).await,
                Some(format!("CLUSTER_SIZE={want}"))
            );
            if !crashed {
                assert!(n > 1, "the first write point must crash");
                break;
            }
            n += 1;
        }
    }

    // A crash right after the znode write (an external write, which the shim's counter does
    // not see): the response is lost, a restart converges.
    let name = "crash-after-znode";
    api.create(&PostParams::default(), &cr(name, 3))
        .await
        .unwrap();
    let crashing = CrashAfterZk {
        inner: ZkClient::fixed(&zk_addr),
        calls: AtomicUsize::new(0),
    };
    let config = anvil_zookeeper::run::shim_config();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        reconcile_once::<ZookeeperController>(&client, &config, &crashing, &ns, name),
    )
    .await;
    assert!(
        r.is_err(),
        "the reconcile was cut short after the znode write"
    );
    assert_eq!(crashing.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        znode(&zk_addr, name).await.as_deref(),
        Some("CLUSTER_SIZE=3")
    );
    let sts = ObjectRef::new(Kind::of::<StatefulSet>(), &ns, name);
    assert!(
        get(&client, &sts).await.is_none(),
        "crashed before the StatefulSet"
    );
    converge(&client, &ns, name, &zk_addr).await;
}
