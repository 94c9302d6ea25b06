//! End to end on a real control plane (etcd + kube-apiserver + kube-controller-manager, from
//! `anvil-testenv`), and a real RabbitMQ node on loopback started with the configuration the
//! controller generated (`support::rabbitmq_server`, provisioned by
//! `scripts/provision-rabbitmq.sh`). No pods run (there is no kubelet), so ready replicas stay
//! 0; everything else is real. The desired-state predicate is the one the checker uses.

mod support;

use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_rabbitmq::desired::decoded;
use anvil_rabbitmq::reconciler::{
    CONFIG_HASH_ANNOTATION, COOKIE_KEY, DEFAULT_USER_CONF_KEY, PASSWORD_KEY, USERNAME_KEY,
};
use anvil_rabbitmq::{
    OsRandom, RabbitmqCluster, RabbitmqClusterSpec, RabbitmqController, RandomRequest,
    RandomResponse, crd, current_state_matches,
};
use anvil_reconciler::{KubeRequest, KubeResponse};
use anvil_shim::{BoxFuture, CancellationToken, ExternalShim, Outcome, reconcile_once};
use anvil_testenv::{ControlPlane, eventually};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::rabbitmq_server::{NodeConfig, RabbitmqNode, amqp_handshake, management_get};

fn kinds() -> Vec<Kind> {
    vec![
        Kind::of::<RabbitmqCluster>(),
        Kind::of::<Service>(),
        Kind::of::<Secret>(),
        Kind::of::<ConfigMap>(),
        Kind::of::<ServiceAccount>(),
        Kind::of::<Role>(),
        Kind::of::<RoleBinding>(),
        Kind::of::<StatefulSet>(),
    ]
}

/// Every object of the controller's kinds in `ns`, as a `ClusterView`.
async fn snapshot(client: &kube::Client, ns: &str) -> BTreeMap<ObjectRef, DynamicObject> {
    anvil_shim::list_view(client, ns, kinds())
        .await
        .unwrap_or_else(|e| panic!("list failed: {e:?}"))
}

async fn matches(client: &kube::Client, ns: &str, name: &str) -> bool {
    let api: Api<RabbitmqCluster> = Api::namespaced(client.clone(), ns);
    let Some(cr) = api.get_opt(name).await.unwrap() else {
        return false;
    };
    let view = snapshot(client, ns).await;
    current_state_matches(&cr, &view)
}

async fn setup(prefix: &str) -> (&'static ControlPlane, kube::Client, String) {
    let cp = ControlPlane::shared().expect("control plane");
    let client = cp.client().await.unwrap();
    cp.apply_crd(crd()).await.unwrap();
    let ns = cp.fresh_namespace(prefix).await.unwrap();
    (cp, client, ns)
}

fn cr(name: &str, replicas: i32) -> RabbitmqCluster {
    RabbitmqCluster::new(name, RabbitmqClusterSpec::with_replicas(replicas))
}

async fn get(client: &kube::Client, key: &ObjectRef) -> Option<DynamicObject> {
    match anvil_shim::execute(client, &KubeRequest::Get(key.clone())).await {
        KubeResponse::Get(Ok(o)) => Some(o),
        _ => None,
    }
}

struct Children {
    headless: ObjectRef,
    client: ObjectRef,
    cookie: ObjectRef,
    user: ObjectRef,
    plugins: ObjectRef,
    server_conf: ObjectRef,
    account: ObjectRef,
    role: ObjectRef,
    binding: ObjectRef,
    sts: ObjectRef,
}

impl Children {
    fn of(ns: &str, name: &str) -> Children {
        let k = |kind: Kind, n: String| ObjectRef::new(kind, ns, n);
        Children {
            headless: k(Kind::of::<Service>(), format!("{name}-nodes")),
            client: k(Kind::of::<Service>(), name.to_string()),
            cookie: k(Kind::of::<Secret>(), format!("{name}-erlang-cookie")),
            user: k(Kind::of::<Secret>(), format!("{name}-default-user")),
            plugins: k(Kind::of::<ConfigMap>(), format!("{name}-plugins-conf")),
            server_conf: k(Kind::of::<ConfigMap>(), format!("{name}-server-conf")),
            account: k(Kind::of::<ServiceAccount>(), format!("{name}-server")),
            role: k(Kind::of::<Role>(), format!("{name}-peer-discovery")),
            binding: k(Kind::of::<RoleBinding>(), format!("{name}-server")),
            sts: k(Kind::of::<StatefulSet>(), format!("{name}-server")),
        }
    }

    fn all(&self) -> [&ObjectRef; 10] {
        [
            &self.headless,
            &self.client,
            &self.cookie,
            &self.user,
            &self.plugins,
            &self.server_conf,
            &self.account,
            &self.role,
            &self.binding,
            &self.sts,
        ]
    }
}

fn data(cm: &DynamicObject, key: &str) -> Option<String> {
    cm.body()["data"].get(key)?.as_str().map(String::from)
}

/// The configuration of a node, read from the controller's ConfigMaps and Secrets.
async fn node_config(client: &kube::Client, c: &Children) -> NodeConfig {
    let conf = get(client, &c.server_conf).await.expect("server-conf");
    let plugins = get(client, &c.plugins).await.expect("plugins-conf");
    let user = get(client, &c.user).await.expect("default-user");
    let cookie = get(client, &c.cookie).await.expect("erlang-cookie");
    NodeConfig {
        operator_defaults: data(&conf, "operatorDefaults.conf").expect("operatorDefaults.conf"),
        user_defined: data(&conf, "userDefinedConfiguration.conf")
            .expect("userDefinedConfiguration.conf"),
        advanced_config: data(&conf, "advanced.config"),
        env_conf: data(&conf, "rabbitmq-env.conf"),
        default_user_conf: decoded(&user, DEFAULT_USER_CONF_KEY).expect("default_user.conf"),
        enabled_plugins: data(&plugins, "enabled_plugins").expect("enabled_plugins"),
        erlang_cookie: decoded(&cookie, COOKIE_KEY).expect("the cookie"),
    }
}

/// Boots a real node with the generated configuration; checks the AMQP handshake and that the
/// generated default user can use the management API.
async fn boot_real_node(client: &kube::Client, c: &Children) -> String {
    let config = node_config(client, c).await;
    let user = get(client, &c.user).await.unwrap();
    let (username, password) = (
        decoded(&user, USERNAME_KEY).unwrap(),
        decoded(&user, PASSWORD_KEY).unwrap(),
    );
    tokio::task::spawn_blocking(move || {
        let node = RabbitmqNode::start(&config);
        let props = amqp_handshake(node.amqp_port).expect("AMQP handshake");
        assert!(props.contains("RabbitMQ"), "{props}");
        // the management API answers, as the generated user (whose credentials come from
        // the generated default_user.conf), once the plugin has started
        let mut last = Err("not tried".to_string());
        for _ in 0..120 {
            last = management_get(node.management_port, "/api/whoami", &username, &password);
            if matches!(&last, Ok((200, _))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let (status, body) = last.unwrap_or_else(|e| panic!("management API: {e}\n{}", node.log()));
        assert_eq!(status, 200, "{body}\n{}", node.log());
        assert!(body.contains(&username), "{body}");
        let (bad, _) =
            management_get(node.management_port, "/api/whoami", &username, "wrong").unwrap();
        assert_eq!(bad, 401, "a wrong password is refused");
        node.log_once_it_contains("Server startup complete", Duration::from_secs(60))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_scale_config_rejections_delete_with_a_real_node() {
    let (cp, client, ns) = setup("rmq-e2e").await;
    assert!(
        cp.has_controller_manager(),
        "garbage collection needs kube-controller-manager"
    );
    let shutdown = CancellationToken::new();
    let config = anvil_rabbitmq::run::shim_config()
        .with_namespace(&ns)
        .with_signal_handling(false)
        .with_requeue_after(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .with_shutdown(shutdown.clone());
    let controller = tokio::spawn(anvil_rabbitmq::run::run(client.clone(), config));

    let api: Api<RabbitmqCluster> = Api::namespaced(client.clone(), &ns);
    let name = "lifecycle";
    let stored = api
        .create(&PostParams::default(), &cr(name, 1))
        .await
        .unwrap();
    assert_eq!(stored.spec.persistence.storage, "10Gi");
    assert_eq!(stored.spec.pod_management_policy, "Parallel");

    // Create: every child exists, controlled by the CR.
    eventually(
        "the cluster to match the CR",
        Duration::from_secs(60),
        || matches(&client, &ns, name),
    )
    .await;
    let cr_now = api.get(name).await.unwrap();
    let owner = Owner {
        api_version: "rabbitmq.anvil.dev/v1".into(),
        kind: "RabbitmqCluster".into(),
        name: name.into(),
        uid: cr_now.metadata.uid.clone().unwrap(),
    };
    let c = Children::of(&ns, name);
    for k in c.all() {
        let o = get(&client, k)
            .await
            .unwrap_or_else(|| panic!("{k} missing"));
        assert!(
            is_controlled_by(&o, &owner),
            "{k} is not controlled by the CR"
        );
    }
    let headless = get(&client, &c.headless).await.unwrap();
    assert_eq!(headless.spec().unwrap()["clusterIP"], "None");
    let sts: StatefulSet = get(&client, &c.sts).await.unwrap().to_typed().unwrap();
    let sts_spec = sts.spec.unwrap();
    assert_eq!(sts_spec.replicas, Some(1));
    assert_eq!(sts_spec.service_name.as_deref(), Some("lifecycle-nodes"));
    assert_eq!(sts_spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(sts_spec.volume_claim_templates.unwrap().len(), 1);
    assert_eq!(cr_now.status.map(|s| s.ready_replicas), Some(0));
    let cookie = get(&client, &c.cookie).await.unwrap();
    let first_cookie = decoded(&cookie, COOKIE_KEY).unwrap();
    assert_eq!(first_cookie.len(), 32);
    let role: Role = get(&client, &c.role).await.unwrap().to_typed().unwrap();
    let rules = role.rules.unwrap();
    assert!(
        rules.iter().any(|r| r.verbs == ["get"]
            && r.resources.as_deref() == Some(&["endpoints".to_string()][..]))
    );

    // The configuration is real: a node boots with it and the generated user logs in.
    let log = boot_real_node(&client, &c).await;
    assert!(log.contains("Server startup complete"), "{log}");

    // Scale 1 -> 3: the StatefulSet follows; the pods are not rolled; the cookie stays.
    let annotation = |sts: &DynamicObject| {
        sts.spec().unwrap()["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
            .as_str()
            .unwrap()
            .to_string()
    };
    let hash_before = annotation(&get(&client, &c.sts).await.unwrap());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    eventually("scale to 3", Duration::from_secs(60), || {
        matches(&client, &ns, name)
    })
    .await;
    let sts = get(&client, &c.sts).await.unwrap();
    assert_eq!(sts.spec().unwrap()["replicas"], 3);
    assert_eq!(annotation(&sts), hash_before);
    let conf = get(&client, &c.server_conf).await.unwrap();
    assert!(
        data(&conf, "operatorDefaults.conf")
            .unwrap()
            .contains("cluster_formation.target_cluster_size_hint = 3")
    );

    // Scale-down is rejected by the API server (the CRD's transition rule).
    let err = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect_err("a scale-down must be rejected");
    assert!(
        err.to_string().contains("replicas cannot be decreased"),
        "{err}"
    );

    // Configuration change: the server-conf changes and the pods are rolled (the pod
    // template's hash changes); the cookie and the credentials stay.
    let user_before = get(&client, &c.user).await.unwrap();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"rabbitmqConfig": {
            "additionalConfig": "channel_max = 1050\n",
            "advancedConfig": "[{rabbit, [{consumer_timeout, 3600000}]}].\n",
            "envConfig": "SERVER_ADDITIONAL_ERL_ARGS=\"+sbwt none\"\n"
        }}})),
    )
    .await
    .unwrap();
    eventually(
        "the configuration change",
        Duration::from_secs(60),
        || async {
            let conf = get(&client, &c.server_conf).await.unwrap();
            data(&conf, "userDefinedConfiguration.conf").as_deref() == Some("channel_max = 1050\n")
                && matches(&client, &ns, name).await
        },
    )
    .await;
    let hash_after = annotation(&get(&client, &c.sts).await.unwrap());
    assert_ne!(hash_before, hash_after, "the pod template's hash changed");
    let cookie_after = decoded(&get(&client, &c.cookie).await.unwrap(), COOKIE_KEY).unwrap();
    assert_eq!(cookie_after, first_cookie, "the cookie is never rotated");
    let user_after = get(&client, &c.user).await.unwrap();
    for k in [USERNAME_KEY, PASSWORD_KEY, DEFAULT_USER_CONF_KEY] {
        assert_eq!(decoded(&user_after, k), decoded(&user_before, k), "{k}");
    }
    // ... and the changed configuration boots too (all four files).
    let log = boot_real_node(&client, &c).await;
    assert!(log.contains("Server startup complete"), "{log}");

    // Immutable fields.
    for (patch, message) in [
        (
            json!({"spec": {"persistence": {"storage": "1Gi"}}}),
            "storage is immutable",
        ),
        (
            json!({"spec": {"persistence": {"storageClassName": "fast"}}}),
            "storageClassName is immutable",
        ),
        (
            json!({"spec": {"podManagementPolicy": "OrderedReady"}}),
            "podManagementPolicy is immutable",
        ),
    ] {
        let err = api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch.clone()))
            .await
            .expect_err("immutable");
        assert!(err.to_string().contains(message), "{patch}: {err}");
    }

    // Delete: the children are garbage-collected by the real collector.
    api.delete(name, &DeleteParams::default()).await.unwrap();
    eventually(
        "the children to be garbage-collected",
        Duration::from_secs(90),
        || async {
            for k in c.all() {
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
    let (_cp, client, ns) = setup("rmq-invalid").await;
    let api: Api<RabbitmqCluster> = Api::namespaced(client.clone(), &ns);
    let mut policy = RabbitmqClusterSpec::with_replicas(1);
    policy.pod_management_policy = "Sometimes".into();
    let cases = [
        (
            RabbitmqClusterSpec::with_replicas(-1),
            "replicas must be non-negative",
        ),
        (
            policy,
            "podManagementPolicy must be OrderedReady or Parallel",
        ),
    ];
    for (i, (spec, message)) in cases.into_iter().enumerate() {
        let model = anvil_rabbitmq::resource::validate_spec(&spec)
            .expect_err("the model's evaluation of the CRD's rules rejects it too");
        assert!(model.contains(message), "{message}: {model}");
        let obj = RabbitmqCluster::new(&format!("invalid-{i}"), spec);
        let err = api
            .create(&PostParams::default(), &obj)
            .await
            .expect_err("must be rejected");
        assert!(err.to_string().contains(message), "{message}: {err}");
    }
}

/// An external shim that generates the random values and then "crashes": the response is
/// never delivered (the reconcile is abandoned by the caller's timeout, losing local state).
struct CrashAfterRandom {
    calls: AtomicUsize,
}

impl ExternalShim<RandomRequest, RandomResponse> for CrashAfterRandom {
    fn call(&self, req: RandomRequest) -> BoxFuture<'_, RandomResponse> {
        Box::pin(async move {
            let _ = OsRandom.answer(&req);
            self.calls.fetch_add(1, Ordering::SeqCst);
            futures::future::pending().await
        })
    }
}

/// Runs reconciles (no crash) until the predicate holds.
async fn converge(client: &kube::Client, ns: &str, name: &str) {
    let config = anvil_rabbitmq::run::shim_config();
    for _ in 0..10 {
        let out = reconcile_once::<RabbitmqController>(client, &config, &OsRandom, ns, name)
            .await
            .unwrap();
        if matches!(out, Outcome::Done { .. }) && matches(client, ns, name).await {
            return;
        }
    }
    panic!("{name} did not converge after restarts");
}

async fn cookie_of(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    let c = Children::of(ns, name);
    decoded(&get(client, &c.cookie).await?, COOKIE_KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_write_point_converges_after_restart() {
    let (_cp, client, ns) = setup("rmq-crash").await;
    let api: Api<RabbitmqCluster> = Api::namespaced(client.clone(), &ns);

    // Writes of a first reconcile: 10 creates + status = 11; of a scale 1 -> 3:
    // server-conf (size hint) + StatefulSet (and possibly no-op rewrites); of a configuration
    // change: server-conf + StatefulSet. Sweep every write point, one past the end.
    for phase in ["create", "scale", "config"] {
        let mut n = 1;
        loop {
            let name = format!("crash-{phase}-{n}");
            api.create(&PostParams::default(), &cr(&name, 1))
                .await
                .unwrap();
            let mut cookie_before = None;
            if phase != "create" {
                converge(&client, &ns, &name).await;
                cookie_before = cookie_of(&client, &ns, &name).await;
                let patch = if phase == "scale" {
                    json!({"spec": {"replicas": 3}})
                } else {
                    json!({"spec": {"rabbitmqConfig": {"additionalConfig": "channel_max = 1050\n"}}})
                };
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .unwrap();
            }
            let config = anvil_rabbitmq::run::shim_config().with_crash_after_writes(Some(n));
            let out = reconcile_once::<RabbitmqController>(&client, &config, &OsRandom, &ns, &name)
                .await
                .unwrap();
            let crashed = matches!(out, Outcome::Crashed { .. });
            // Restart: a fresh controller converges, and never rotates the cookie.
            converge(&client, &ns, &name).await;
            if let Some(before) = cookie_before {
                assert_eq!(cookie_of(&client, &ns, &name).await, Some(before));
            }
            if phase == "scale" {
                let sts = get(&client, &Children::of(&ns, &name).sts).await.unwrap();
                assert_eq!(sts.spec().unwrap()["replicas"], 3);
            }
            if !crashed {
                assert!(n > 1, "the first write point must crash");
                eprintln!("{phase}: crashed at write points 1..{}", n - 1);
                break;
            }
            n += 1;
        }
    }

    // A crash right after the random source answered (an external request, which the shim's
    // write counter does not see): the values are lost, nothing was written; a restart
    // generates new ones and converges.
    let name = "crash-after-random";
    api.create(&PostParams::default(), &cr(name, 1))
        .await
        .unwrap();
    let crashing = CrashAfterRandom {
        calls: AtomicUsize::new(0),
    };
    let config = anvil_rabbitmq::run::shim_config();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        reconcile_once::<RabbitmqController>(&client, &config, &crashing, &ns, name),
    )
    .await;
    assert!(
        r.is_err(),
        "the reconcile was cut short after the random request"
    );
    assert_eq!(crashing.calls.load(Ordering::SeqCst), 1);
    assert!(
        cookie_of(&client, &ns, name).await.is_none(),
        "crashed before the Secret"
    );
    converge(&client, &ns, name).await;
    assert!(cookie_of(&client, &ns, name).await.is_some());
}
