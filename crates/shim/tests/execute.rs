//! Every request kind through `anvil_shim::execute` against the real kube-apiserver of
//! `anvil_testenv::ControlPlane::shared()`: happy paths and error paths.

use std::collections::BTreeMap;

use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner};
use anvil_reconciler::{ErrorReason, KubeRequest, KubeResponse, Preconditions};
use anvil_shim::{check_cluster, crd_yaml, execute};
use anvil_testenv::ControlPlane;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

fn cp() -> &'static ControlPlane {
    ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"))
}

/// Logs of the shim when `RUST_LOG` is set (e.g. `RUST_LOG=anvil_shim=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn setup(prefix: &str) -> (kube::Client, String) {
    init_tracing();
    let cp = cp();
    let client = cp.client().await.expect("client");
    let ns = cp.fresh_namespace(prefix).await.expect("namespace");
    (client, ns)
}

/// A small test CRD: namespaced, status subresource, a CEL rule on `spec`.
fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.shimtest.anvil.dev"},
        "spec": {
            "group": "shimtest.anvil.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": {"size": {"type": "integer"}},
                            "x-kubernetes-validations": [
                                {"rule": "self.size >= 0", "message": "size must not be negative"}
                            ]
                        },
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    }))
    .expect("valid CRD")
}

fn widget_kind() -> Kind {
    Kind::new("shimtest.anvil.dev/v1", "Widget")
}

async fn install_widgets() {
    cp().apply_crd(widget_crd()).await.expect("CRD applied");
}

fn widget(ns: &str, name: &str, size: i64) -> DynamicObject {
    DynamicObject::from_json(json!({
        "apiVersion": "shimtest.anvil.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"size": size}
    }))
    .unwrap()
}

fn config_map(ns: &str, name: &str, data: &[(&str, &str)]) -> DynamicObject {
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).unwrap()
}

fn cm_key(ns: &str, name: &str) -> ObjectRef {
    ObjectRef::new(Kind::of::<ConfigMap>(), ns, name)
}

async fn create(client: &kube::Client, obj: DynamicObject) -> DynamicObject {
    match execute(client, &KubeRequest::Create(obj)).await {
        KubeResponse::Create(Ok(o)) => o,
        other => panic!("create failed: {other:?}"),
    }
}

async fn get(
    client: &kube::Client,
    key: &ObjectRef,
) -> Result<DynamicObject, anvil_reconciler::ApiError> {
    match execute(client, &KubeRequest::Get(key.clone())).await {
        KubeResponse::Get(r) => r,
        other => panic!("wrong response kind: {other:?}"),
    }
}

fn reason(resp: &KubeResponse) -> Option<ErrorReason> {
    resp.error().map(|e| e.reason)
}

/// An owner object (a ConfigMap) and a dependent controlled by it; returns both as stored.
async fn owner_and_dependent(
    client: &kube::Client,
    ns: &str,
    controlled: bool,
) -> (Owner, DynamicObject) {
    let owner_obj = create(client, config_map(ns, "owner", &[])).await;
    let owner = Owner::of_object(&owner_obj).unwrap();
    let mut reference = owner.controller_reference();
    if !controlled {
        reference.controller = None;
    }
    let dep = config_map(ns, "dependent", &[("v", "1")]).modify(|p| {
        p.metadata.owner_references = Some(vec![reference]);
    });
    (owner, create(client, dep).await)
}

#[tokio::test]
async fn get_create_and_list() {
    let (client, ns) = setup("exec-basic").await;
    let created = create(&client, config_map(&ns, "a", &[("k", "v")])).await;
    assert_eq!(created.kind(), &Kind::of::<ConfigMap>());
    assert!(created.uid().is_some() && created.resource_version().is_some());
    assert!(
        created.metadata().managed_fields.is_none(),
        "managedFields are dropped"
    );

    let got = get(&client, &cm_key(&ns, "a")).await.unwrap();
    assert_eq!(got, created);

    // Labelled objects, and generateName.
    let labelled = config_map(&ns, "", &[]).modify(|p| {
        p.metadata.name = None;
        p.metadata.generate_name = Some("gen-".into());
        p.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
    });
    let g1 = create(&client, labelled.clone()).await;
    let g2 = create(&client, labelled).await;
    assert!(
        g1.name().starts_with("gen-") && g1.name().len() > 4,
        "{}",
        g1.name()
    );
    assert_ne!(g1.name(), g2.name());

    let list = |selector: BTreeMap<String, String>| KubeRequest::List {
        kind: Kind::of::<ConfigMap>(),
        namespace: ns.clone(),
        label_selector: selector,
    };
    let KubeResponse::List(Ok(all)) = execute(&client, &list(BTreeMap::new())).await else {
        panic!("list failed")
    };
    // The namespace's kube-root-ca.crt ConfigMap is there too.
    let names: Vec<&str> = all.iter().map(|o| o.name()).collect();
    assert!(
        names.contains(&"a") && names.contains(&g1.name()),
        "{names:?}"
    );
    assert!(
        names.windows(2).all(|w| w[0] <= w[1]),
        "sorted by name: {names:?}"
    );
    assert!(all.iter().all(|o| o.kind() == &Kind::of::<ConfigMap>()));

    let KubeResponse::List(Ok(selected)) = execute(
        &client,
        &list([("app".to_string(), "x".to_string())].into()),
    )
    .await
    else {
        panic!("list failed")
    };
    let mut names: Vec<&str> = selected.iter().map(|o| o.name()).collect();
    names.sort();
    let mut expected = vec![g1.name(), g2.name()];
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn not_found_and_already_exists() {
    let (client, ns) = setup("exec-errors").await;
    let missing = cm_key(&ns, "missing");
    assert_eq!(
        get(&client, &missing).await.unwrap_err().reason,
        ErrorReason::NotFound
    );
    let del = execute(
        &client,
        &KubeRequest::Delete {
            key: missing.clone(),
            preconditions: None,
        },
    )
    .await;
    assert_eq!(reason(&del), Some(ErrorReason::NotFound));
    let upd = execute(
        &client,
        &KubeRequest::Update(config_map(&ns, "missing", &[])),
    )
    .await;
    assert_eq!(reason(&upd), Some(ErrorReason::NotFound));

    // An empty name never addresses the whole collection.
    let keep = create(&client, config_map(&ns, "keep", &[])).await;
    let nameless = execute(
        &client,
        &KubeRequest::Delete {
            key: cm_key(&ns, ""),
            preconditions: None,
        },
    )
    .await;
    assert_eq!(
        reason(&nameless),
        Some(ErrorReason::BadRequest),
        "{nameless:?}"
    );
    assert_eq!(get(&client, &keep.object_ref()).await.unwrap(), keep);

    create(&client, config_map(&ns, "dup", &[])).await;
    let again = execute(&client, &KubeRequest::Create(config_map(&ns, "dup", &[]))).await;
    assert_eq!(
        reason(&again),
        Some(ErrorReason::AlreadyExists),
        "{again:?}"
    );

    // A List of an unknown kind fails (NotFound), it is not an empty list.
    let unknown = execute(
        &client,
        &KubeRequest::List {
            kind: Kind::new("nope.anvil.dev/v1", "Nothing"),
            namespace: ns.clone(),
            label_selector: BTreeMap::new(),
        },
    )
    .await;
    assert_eq!(reason(&unknown), Some(ErrorReason::NotFound), "{unknown:?}");
}

#[tokio::test]
async fn update_and_stale_resource_version_conflict() {
    let (client, ns) = setup("exec-update").await;
    let v1 = create(&client, config_map(&ns, "u", &[("k", "1")])).await;
    let v2 = match execute(
        &client,
        &KubeRequest::Update(v1.modify(|p| {
            p.body.insert("data".into(), json!({"k": "2"}));
        })),
    )
    .await
    {
        KubeResponse::Update(Ok(o)) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(v2.body()["data"]["k"], "2");
    assert_ne!(v2.resource_version(), v1.resource_version());

    // v1's resourceVersion is stale now.
    let stale = execute(
        &client,
        &KubeRequest::Update(v1.modify(|p| {
            p.body.insert("data".into(), json!({"k": "3"}));
        })),
    )
    .await;
    assert_eq!(reason(&stale), Some(ErrorReason::Conflict), "{stale:?}");
    assert_eq!(
        get(&client, &cm_key(&ns, "u")).await.unwrap().body()["data"]["k"],
        "2"
    );
}

#[tokio::test]
async fn cel_rule_violation_is_invalid() {
    install_widgets().await;
    let (client, ns) = setup("exec-invalid").await;
    let bad = execute(&client, &KubeRequest::Create(widget(&ns, "w", -1))).await;
    assert_eq!(reason(&bad), Some(ErrorReason::Invalid), "{bad:?}");
    assert!(
        bad.error()
            .unwrap()
            .message
            .contains("size must not be negative"),
        "{bad:?}"
    );

    let ok = create(&client, widget(&ns, "w", 1)).await;
    assert_eq!(ok.kind(), &widget_kind());
    let bad_update = execute(
        &client,
        &KubeRequest::Update(ok.modify(|p| {
            p.body.insert("spec".into(), json!({"size": -5}));
        })),
    )
    .await;
    assert_eq!(
        reason(&bad_update),
        Some(ErrorReason::Invalid),
        "{bad_update:?}"
    );
}

#[tokio::test]
async fn update_status_only_touches_status_and_update_ignores_status() {
    install_widgets().await;
    let (client, ns) = setup("exec-status").await;
    let w = create(&client, widget(&ns, "w", 1)).await;
    let key = w.object_ref();

    // UpdateStatus with a changed spec: only the status is written.
    let resp = execute(
        &client,
        &KubeRequest::UpdateStatus(w.modify(|p| {
            p.body.insert("spec".into(), json!({"size": 99}));
            p.body.insert("status".into(), json!({"phase": "Ready"}));
        })),
    )
    .await;
    let KubeResponse::UpdateStatus(Ok(after_status)) = resp else {
        panic!("{resp:?}")
    };
    let stored = get(&client, &key).await.unwrap();
    assert_eq!(stored, after_status);
    assert_eq!(stored.spec().unwrap()["size"], 1);
    assert_eq!(stored.status().unwrap()["phase"], "Ready");

    // Update with a changed status: only the spec is written.
    let resp = execute(
        &client,
        &KubeRequest::Update(stored.modify(|p| {
            p.body.insert("spec".into(), json!({"size": 2}));
            p.body.insert("status".into(), json!({"phase": "Hacked"}));
        })),
    )
    .await;
    assert!(resp.error().is_none(), "{resp:?}");
    let stored = get(&client, &key).await.unwrap();
    assert_eq!(stored.spec().unwrap()["size"], 2);
    assert_eq!(stored.status().unwrap()["phase"], "Ready");

    // A stale UpdateStatus conflicts.
    let stale = execute(
        &client,
        &KubeRequest::UpdateStatus(w.modify(|p| {
            p.body.insert("status".into(), json!({"phase": "Old"}));
        })),
    )
    .await;
    assert_eq!(reason(&stale), Some(ErrorReason::Conflict), "{stale:?}");
}

#[tokio::test]
async fn delete_preconditions() {
    let (client, ns) = setup("exec-delete").await;
    let obj = create(&client, config_map(&ns, "d", &[])).await;
    let key = obj.object_ref();
    let delete = |pre: Preconditions| KubeRequest::Delete {
        key: key.clone(),
        preconditions: Some(pre),
    };

    let wrong_uid = execute(
        &client,
        &delete(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
    )
    .await;
    assert_eq!(
        reason(&wrong_uid),
        Some(ErrorReason::Conflict),
        "{wrong_uid:?}"
    );

    let wrong_rv = execute(
        &client,
        &delete(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
    )
    .await;
    assert_eq!(
        reason(&wrong_rv),
        Some(ErrorReason::Conflict),
        "{wrong_rv:?}"
    );
    assert!(get(&client, &key).await.is_ok(), "still there");

    let ok = execute(
        &client,
        &delete(Preconditions {
            uid: obj.uid().map(Into::into),
            resource_version: obj.resource_version().map(Into::into),
        }),
    )
    .await;
    assert_eq!(ok, KubeResponse::Delete(Ok(())));
    assert_eq!(
        get(&client, &key).await.unwrap_err().reason,
        ErrorReason::NotFound
    );

    // With a finalizer the delete only marks the object (200 with the object): still Ok.
    let fin = create(
        &client,
        config_map(&ns, "f", &[]).modify(|p| {
            p.metadata.finalizers = Some(vec!["anvil.dev/test".into()]);
        }),
    )
    .await;
    let marked = execute(
        &client,
        &KubeRequest::Delete {
            key: fin.object_ref(),
            preconditions: None,
        },
    )
    .await;
    assert_eq!(marked, KubeResponse::Delete(Ok(())));
    let still = get(&client, &fin.object_ref()).await.unwrap();
    assert!(still.metadata().deletion_timestamp.is_some());
    // Clean up: drop the finalizer so the namespace can go.
    let cleared = execute(
        &client,
        &KubeRequest::Update(still.modify(|p| p.metadata.finalizers = None)),
    )
    .await;
    assert!(cleared.error().is_none(), "{cleared:?}");
}

#[tokio::test]
async fn get_then_update_when_owned_uses_the_current_resource_version() {
    let (client, ns) = setup("exec-gtu").await;
    let (owner, dep) = owner_and_dependent(&client, &ns, true).await;
    // Make `dep` stale: someone else writes in between.
    let newer = match execute(
        &client,
        &KubeRequest::Update(dep.modify(|p| {
            p.body.insert("data".into(), json!({"v": "other"}));
        })),
    )
    .await
    {
        KubeResponse::Update(Ok(o)) => o,
        other => panic!("{other:?}"),
    };
    let resp = execute(
        &client,
        &KubeRequest::GetThenUpdate {
            obj: dep.modify(|p| {
                p.body.insert("data".into(), json!({"v": "mine"}));
            }),
            owner: owner.clone(),
        },
    )
    .await;
    let KubeResponse::GetThenUpdate(Ok(stored)) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(stored.body()["data"]["v"], "mine");
    assert_ne!(stored.resource_version(), newer.resource_version());

    // Missing object: NotFound.
    let missing = execute(
        &client,
        &KubeRequest::GetThenUpdate {
            obj: config_map(&ns, "missing", &[]),
            owner: owner.clone(),
        },
    )
    .await;
    assert_eq!(reason(&missing), Some(ErrorReason::NotFound));

    // GetThenDelete when owned.
    let del = execute(
        &client,
        &KubeRequest::GetThenDelete {
            key: dep.object_ref(),
            owner,
        },
    )
    .await;
    assert_eq!(del, KubeResponse::GetThenDelete(Ok(())));
    assert_eq!(
        get(&client, &dep.object_ref()).await.unwrap_err().reason,
        ErrorReason::NotFound
    );
}

#[tokio::test]
async fn get_then_requests_abort_when_not_controlled_by_the_owner() {
    let before = anvil_shim::metrics().get_then_aborts;
    let (client, ns) = setup("exec-abort").await;
    // Owned but not as controller.
    let (owner, dep) = owner_and_dependent(&client, &ns, false).await;
    // And an owner that is someone else entirely.
    let stranger = Owner {
        uid: "11111111-2222-3333-4444-555555555555".into(),
        ..owner.clone()
    };
    for who in [owner, stranger] {
        let upd = execute(
            &client,
            &KubeRequest::GetThenUpdate {
                obj: dep.modify(|p| {
                    p.body.insert("data".into(), json!({"v": "x"}));
                }),
                owner: who.clone(),
            },
        )
        .await;
        assert_eq!(reason(&upd), Some(ErrorReason::TransactionAbort), "{upd:?}");
        let st = execute(
            &client,
            &KubeRequest::GetThenUpdateStatus {
                obj: dep.clone(),
                owner: who.clone(),
            },
        )
        .await;
        assert_eq!(reason(&st), Some(ErrorReason::TransactionAbort), "{st:?}");
        let del = execute(
            &client,
            &KubeRequest::GetThenDelete {
                key: dep.object_ref(),
                owner: who,
            },
        )
        .await;
        assert_eq!(reason(&del), Some(ErrorReason::TransactionAbort), "{del:?}");
    }
    // Nothing changed.
    assert_eq!(get(&client, &dep.object_ref()).await.unwrap(), dep);
    assert!(anvil_shim::metrics().get_then_aborts >= before + 6);
}

#[tokio::test]
async fn get_then_update_status_writes_only_status() {
    install_widgets().await;
    let (client, ns) = setup("exec-gtus").await;
    let owner_obj = create(&client, config_map(&ns, "owner", &[])).await;
    let owner = Owner::of_object(&owner_obj).unwrap();
    let w = create(
        &client,
        widget(&ns, "w", 3).modify(|p| {
            p.metadata.owner_references = Some(vec![owner.controller_reference()]);
        }),
    )
    .await;
    let resp = execute(
        &client,
        &KubeRequest::GetThenUpdateStatus {
            obj: w.modify(|p| {
                p.metadata.resource_version = Some("1".into()); // stale on purpose
                p.body.insert("spec".into(), json!({"size": 42}));
                p.body.insert("status".into(), json!({"phase": "Up"}));
            }),
            owner,
        },
    )
    .await;
    let KubeResponse::GetThenUpdateStatus(Ok(stored)) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(stored.status().unwrap()["phase"], "Up");
    assert_eq!(stored.spec().unwrap()["size"], 3);
}

#[tokio::test]
async fn get_then_update_retries_on_conflicts_from_concurrent_writers() {
    let (client, ns) = setup("exec-race").await;
    let (owner, dep) = owner_and_dependent(&client, &ns, true).await;
    // A concurrent writer bumps the object as fast as it can while GetThenUpdates run; every
    // GetThenUpdate must still succeed (within its retry bound) or report Conflict, never
    // anything else, and the counters must account for the retries.
    let stop = anvil_shim::CancellationToken::new();
    let writer = {
        let client = client.clone();
        let key = dep.object_ref();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.is_cancelled() {
                if let Ok(cur) = get(&client, &key).await {
                    n += 1;
                    let _ = execute(
                        &client,
                        &KubeRequest::Update(cur.modify(|p| {
                            p.body
                                .insert("data".into(), json!({"writer": n.to_string()}));
                        })),
                    )
                    .await;
                }
            }
        })
    };
    let mut ok = 0;
    for i in 0..20 {
        let resp = execute(
            &client,
            &KubeRequest::GetThenUpdate {
                obj: dep.modify(|p| {
                    p.body.insert("data".into(), json!({"mine": i.to_string()}));
                }),
                owner: owner.clone(),
            },
        )
        .await;
        match resp {
            KubeResponse::GetThenUpdate(Ok(_)) => ok += 1,
            KubeResponse::GetThenUpdate(Err(e)) => {
                assert_eq!(e.reason, ErrorReason::Conflict, "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
    stop.cancel();
    writer.await.unwrap();
    assert!(ok > 0, "some GetThenUpdate succeeded");
}

#[tokio::test]
async fn transport_failures_are_errors_never_success() {
    // Nothing listens on port 1.
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let resp = execute(&client, &KubeRequest::Get(cm_key("default", "x"))).await;
    assert_eq!(reason(&resp), Some(ErrorReason::Other), "{resp:?}");
    let resp = execute(
        &client,
        &KubeRequest::Create(config_map("default", "x", &[])),
    )
    .await;
    assert_eq!(reason(&resp), Some(ErrorReason::Other), "{resp:?}");
    let resp = execute(
        &client,
        &KubeRequest::Delete {
            key: cm_key("default", "x"),
            preconditions: None,
        },
    )
    .await;
    assert_eq!(reason(&resp), Some(ErrorReason::Other), "{resp:?}");

    let err = check_cluster(&client, "https://127.0.0.1:1", "widgets.shimtest.anvil.dev")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot reach the API server at https://127.0.0.1:1: "),
        "{msg}"
    );
}

#[tokio::test]
async fn check_cluster_and_crd_yaml() {
    let cp = cp();
    let cluster = anvil_shim::connect(Some(cp.kubeconfig_path()))
        .await
        .unwrap();
    assert_eq!(cluster.url.trim_end_matches('/'), cp.server_url());
    let err = check_cluster(&cluster.client, &cluster.url, "nothings.nope.anvil.dev")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CRD nothings.nope.anvil.dev is not installed; run `anvil crd <controller> | kubectl apply -f -`"
    );
    install_widgets().await;
    check_cluster(&cluster.client, &cluster.url, "widgets.shimtest.anvil.dev")
        .await
        .unwrap();

    let yaml = crd_yaml(&widget_crd());
    assert!(yaml.starts_with("---\n"));
    let back: CustomResourceDefinition = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(back, widget_crd());
}
