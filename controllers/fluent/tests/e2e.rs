//! End to end on a real control plane (etcd + kube-apiserver + kube-controller-manager, from
//! `anvil-testenv`; the tests fail, never skip, when it cannot start). Both controllers run
//! in one process, as `anvil run fluent` runs them ([`anvil_fluent::run::run_both`]). No pods
//! run (there is no kubelet) and Fluent Bit itself is not packaged here: the rendered
//! configuration is checked by a small parser of Fluent Bit's format
//! (`support::fluent_conf`). The desired-state predicates are the ones the checker uses.

mod support;

use anvil_fluent::config::{MAIN_KEY, PARSERS_KEY};
use anvil_fluent::desired::secret_text;
use anvil_fluent::objects::CONFIG_HASH_ANNOTATION;
use anvil_fluent::run::{fluent_bit_config, fluent_bit_config_config, fluent_config, run_both};
use anvil_fluent::verify::config_specs;
use anvil_fluent::{
    FluentBit, FluentBitConfig, FluentBitConfigController, FluentBitConfigSpec,
    FluentBitController, FluentBitSpec, config_matches, fluent_bit_config_crd, fluent_bit_crd,
    fluent_bit_matches,
};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{KubeRequest, KubeResponse};
use anvil_shim::{CancellationToken, NoExternalShim, Outcome, reconcile_once};
use anvil_testenv::{ControlPlane, eventually};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::fluent_conf;

fn owned_kinds() -> Vec<Kind> {
    vec![
        Kind::of::<Secret>(),
        Kind::of::<ServiceAccount>(),
        Kind::of::<Role>(),
        Kind::of::<RoleBinding>(),
        Kind::of::<Service>(),
        Kind::of::<DaemonSet>(),
    ]
}

fn kinds() -> Vec<Kind> {
    let mut k = owned_kinds();
    k.push(Kind::of::<FluentBit>());
    k.push(Kind::of::<FluentBitConfig>());
    k
}

/// Every object of the controllers' kinds in `ns`, as a `ClusterView`.
async fn snapshot(client: &kube::Client, ns: &str) -> BTreeMap<ObjectRef, DynamicObject> {
    anvil_shim::list_view(client, ns, kinds())
        .await
        .unwrap_or_else(|e| panic!("list failed: {e:?}"))
}

/// Both predicates hold (the FluentBit's with its configuration present).
async fn both_match(client: &kube::Client, ns: &str, fb: &str, fbc: &str) -> bool {
    let fbs: Api<FluentBit> = Api::namespaced(client.clone(), ns);
    let fbcs: Api<FluentBitConfig> = Api::namespaced(client.clone(), ns);
    let (Some(b), Some(c)) = (
        fbs.get_opt(fb).await.unwrap(),
        fbcs.get_opt(fbc).await.unwrap(),
    ) else {
        return false;
    };
    let view = snapshot(client, ns).await;
    let found = b.status.as_ref().is_some_and(|s| s.config_found);
    config_matches(&c, &view) && fluent_bit_matches(&b, &view) && found
}

async fn setup(prefix: &str) -> (&'static ControlPlane, kube::Client, String) {
    let cp = ControlPlane::shared().expect("control plane");
    let client = cp.client().await.unwrap();
    cp.apply_crd(fluent_bit_crd()).await.unwrap();
    cp.apply_crd(fluent_bit_config_crd()).await.unwrap();
    let ns = cp.fresh_namespace(prefix).await.unwrap();
    (cp, client, ns)
}

async fn get(client: &kube::Client, key: &ObjectRef) -> Option<DynamicObject> {
    match anvil_shim::execute(client, &KubeRequest::Get(key.clone())).await {
        KubeResponse::Get(Ok(o)) => Some(o),
        _ => None,
    }
}

fn config_cr(name: &str, spec: usize) -> FluentBitConfig {
    let spec: FluentBitConfigSpec = serde_json::from_value(config_specs()[spec].clone()).unwrap();
    FluentBitConfig::new(name, spec)
}

fn fluent_bit_cr(name: &str, config: &str) -> FluentBit {
    FluentBit::new(name, FluentBitSpec::for_config(config))
}

/// The DaemonSet's configuration hash annotation.
fn pod_hash(ds: &DynamicObject) -> Option<String> {
    ds.spec()?
        .pointer("/template/metadata/annotations")?
        .get(CONFIG_HASH_ANNOTATION)?
        .as_str()
        .map(str::to_string)
}

/// The configuration Secret's files, checked by the Fluent Bit format parser.
async fn check_rendered(client: &kube::Client, ns: &str, secret: &str) -> BTreeMap<String, usize> {
    let key = ObjectRef::new(Kind::of::<Secret>(), ns, secret);
    let s = get(client, &key).await.expect("the config Secret");
    let files: BTreeMap<String, String> = secret_text(&s).unwrap().into_iter().collect();
    assert!(files.contains_key(PARSERS_KEY), "{files:?}");
    fluent_conf::check(&files[MAIN_KEY], &files).unwrap_or_else(|e| panic!("{e}\n{files:?}"))
}

fn start_both(client: &kube::Client, ns: &str) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let config = fluent_config()
        .with_namespace(ns)
        .with_signal_handling(false)
        .with_requeue_after(Duration::from_secs(1))
        .with_shutdown(shutdown.clone());
    let client = client.clone();
    let task = tokio::spawn(async move {
        run_both(client, config)
            .await
            .expect("both controllers run");
    });
    (shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_orders_edits_and_deletion_through_the_garbage_collector() {
    let (cp, client, ns) = setup("fluent-e2e").await;
    assert!(
        cp.has_controller_manager(),
        "garbage collection needs kube-controller-manager"
    );
    let (shutdown, task) = start_both(&client, &ns);
    let fbs: Api<FluentBit> = Api::namespaced(client.clone(), &ns);
    let fbcs: Api<FluentBitConfig> = Api::namespaced(client.clone(), &ns);
    let timeout = Duration::from_secs(60);

    // Order 1: the FluentBit first; it reports its configuration missing and creates nothing.
    fbs.create(
        &PostParams::default(),
        &fluent_bit_cr("first", "first-config"),
    )
    .await
    .unwrap();
    eventually("status configFound=false", timeout, || async {
        let b = fbs.get("first").await.unwrap();
        b.status.is_some_and(|s| !s.config_found)
            && fluent_bit_matches(
                &fbs.get("first").await.unwrap(),
                &snapshot(&client, &ns).await,
            )
    })
    .await;
    let ds_first = ObjectRef::new(Kind::of::<DaemonSet>(), &ns, "first");
    assert!(
        get(&client, &ds_first).await.is_none(),
        "no DaemonSet without configuration"
    );
    fbcs.create(&PostParams::default(), &config_cr("first-config", 0))
        .await
        .unwrap();
    eventually("order 1 converges", timeout, || {
        both_match(&client, &ns, "first", "first-config")
    })
    .await;
    let counts = check_rendered(&client, &ns, "first-config").await;
    assert_eq!((counts["INPUT"], counts["OUTPUT"]), (1, 1));

    // Order 2: the configuration first.
    fbcs.create(&PostParams::default(), &config_cr("second-config", 0))
        .await
        .unwrap();
    fbs.create(
        &PostParams::default(),
        &fluent_bit_cr("second", "second-config"),
    )
    .await
    .unwrap();
    eventually("order 2 converges", timeout, || {
        both_match(&client, &ns, "second", "second-config")
    })
    .await;

    // Edit the configuration: the Secret changes, and the pods are rolled (new hash).
    let before = pod_hash(&get(&client, &ds_first).await.unwrap()).unwrap();
    let new_spec = serde_json::to_value(config_cr("x", 1).spec).unwrap();
    fbcs.patch(
        "first-config",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": new_spec })),
    )
    .await
    .unwrap();
    eventually("the configuration edit rolls the pods", timeout, || async {
        let ds = get(&client, &ds_first).await;
        ds.and_then(|d| pod_hash(&d)).is_some_and(|h| h != before)
            && both_match(&client, &ns, "first", "first-config").await
    })
    .await;
    assert!(check_rendered(&client, &ns, "first-config").await["SERVICE"] == 1);

    // Edit the FluentBit: a new image, no log volumes.
    fbs.patch(
        "first",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"image": "fluent/fluent-bit:3.2", "disableLogVolumes": true}}),
        ),
    )
    .await
    .unwrap();
    eventually("the FluentBit edit converges", timeout, || async {
        let ds = get(&client, &ds_first).await;
        let image = ds.as_ref().and_then(|d| {
            d.spec()?
                .pointer("/template/spec/containers/0/image")
                .cloned()
        });
        image == Some(json!("fluent/fluent-bit:3.2"))
            && both_match(&client, &ns, "first", "first-config").await
    })
    .await;

    // Deletion: the real garbage collector removes every owned object.
    fbs.delete("first", &DeleteParams::default()).await.unwrap();
    fbcs.delete("first-config", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the garbage collector deletes the children",
        Duration::from_secs(90),
        || async {
            let view = snapshot(&client, &ns).await;
            view.keys()
                .all(|k| k.name != "first" && k.name != "first-config")
        },
    )
    .await;
    // the second pair is untouched
    assert!(both_match(&client, &ns, "second", "second-config").await);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("both controllers stop on shutdown")
        .unwrap();
}

/// Runs reconciles of both controllers (no crash) until both predicates hold.
async fn converge(client: &kube::Client, ns: &str, fb: &str, fbc: &str) {
    for _ in 0..10 {
        reconcile_once::<FluentBitConfigController>(
            client,
            &fluent_bit_config_config(),
            &NoExternalShim,
            ns,
            fbc,
        )
        .await
        .unwrap();
        reconcile_once::<FluentBitController>(
            client,
            &fluent_bit_config(),
            &NoExternalShim,
            ns,
            fb,
        )
        .await
        .unwrap();
        if both_match(client, ns, fb, fbc).await {
            return;
        }
    }
    panic!("{fb}/{fbc} did not converge after restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_write_point_of_each_controller_converges_after_restart() {
    let (_cp, client, ns) = setup("fluent-crash").await;
    let fbs: Api<FluentBit> = Api::namespaced(client.clone(), &ns);
    let fbcs: Api<FluentBitConfig> = Api::namespaced(client.clone(), &ns);
    // Phases: a first reconcile of each; a configuration edit (Secret update, then the
    // DaemonSet and status of the FluentBit); a FluentBit edit (DaemonSet, status).
    for phase in ["create", "config-edit", "fluentbit-edit"] {
        for crashing in ["fluentbit-config", "fluentbit"] {
            let mut n = 1;
            loop {
                let fb = format!("c-{phase}-{crashing}-{n}");
                let fbc = format!("{fb}-config");
                fbcs.create(&PostParams::default(), &config_cr(&fbc, 0))
                    .await
                    .unwrap();
                fbs.create(&PostParams::default(), &fluent_bit_cr(&fb, &fbc))
                    .await
                    .unwrap();
                if phase != "create" {
                    converge(&client, &ns, &fb, &fbc).await;
                }
                match phase {
                    "config-edit" => {
                        let spec = serde_json::to_value(config_cr("x", 1).spec).unwrap();
                        fbcs.patch(
                            &fbc,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": spec})),
                        )
                        .await
                        .unwrap();
                    }
                    "fluentbit-edit" => {
                        fbs.patch(
                            &fb,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"image": "fluent/fluent-bit:3.2"}})),
                        )
                        .await
                        .unwrap();
                    }
                    _ => {}
                }
                if crashing == "fluentbit" {
                    // the configuration is in place, so the FluentBit's reconcile writes
                    reconcile_once::<FluentBitConfigController>(
                        &client,
                        &fluent_bit_config_config(),
                        &NoExternalShim,
                        &ns,
                        &fbc,
                    )
                    .await
                    .unwrap();
                }
                let out = if crashing == "fluentbit" {
                    let config = fluent_bit_config().with_crash_after_writes(Some(n));
                    reconcile_once::<FluentBitController>(
                        &client,
                        &config,
                        &NoExternalShim,
                        &ns,
                        &fb,
                    )
                    .await
                    .unwrap()
                } else {
                    let config = fluent_bit_config_config().with_crash_after_writes(Some(n));
                    reconcile_once::<FluentBitConfigController>(
                        &client,
                        &config,
                        &NoExternalShim,
                        &ns,
                        &fbc,
                    )
                    .await
                    .unwrap()
                };
                if phase == "fluentbit-edit" && crashing == "fluentbit-config" {
                    // a FluentBit edit gives the configuration controller nothing to write
                    assert!(matches!(out, Outcome::Done { writes: 0, .. }), "{out:?}");
                    converge(&client, &ns, &fb, &fbc).await;
                    break;
                }
                let crashed = matches!(out, Outcome::Crashed { .. });
                // Restart: fresh controllers converge.
                converge(&client, &ns, &fb, &fbc).await;
                if !crashed {
                    assert!(
                        n > 1,
                        "{phase}/{crashing}: the first write point must crash"
                    );
                    eprintln!("{phase}/{crashing}: crashed at write points 1..{}", n - 1);
                    break;
                }
                n += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fluent_bits_are_rejected_by_the_api_server() {
    let (_cp, client, ns) = setup("fluent-cel").await;
    let fbs: Api<FluentBit> = Api::namespaced(client.clone(), &ns);
    let reject = |spec: serde_json::Value, rule: &'static str| {
        let fbs = fbs.clone();
        async move {
            let mut b = fluent_bit_cr("bad", "cfg");
            b.spec = serde_json::from_value(spec).unwrap();
            let e = fbs.create(&PostParams::default(), &b).await.unwrap_err();
            assert!(e.to_string().contains(rule), "{e}");
        }
    };
    reject(
        json!({"fluentBitConfigName": ""}),
        "fluentBitConfigName must not be empty",
    )
    .await;
    reject(
        json!({"fluentBitConfigName": "c", "metricsPort": 70000}),
        "metricsPort must be in 1..65535",
    )
    .await;
    reject(
        json!({"fluentBitConfigName": "c", "ports": [{"containerPort": 0}]}),
        "every containerPort must be in 1..65535",
    )
    .await;
    fbs.create(&PostParams::default(), &fluent_bit_cr("good", "cfg"))
        .await
        .unwrap();
}
