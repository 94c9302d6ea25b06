//! The desired-state predicate, used by the checker (ESR) and by the end-to-end tests.
//!
//! The cluster matches a `RabbitmqCluster` when every child exists, is controlled by the CR,
//! and carries what the spec asks for:
//!
//! * the headless Service `<n>-nodes` (`clusterIP: None`) and the client Service `<n>` expose
//!   exactly their named ports, and select the pods;
//! * the Secret `<n>-erlang-cookie` holds a non-empty `.erlang.cookie`;
//! * the Secret `<n>-default-user` holds a non-empty `username` and `password`, a
//!   `default_user.conf` made of exactly those two, and the public keys (`host`, `port`,
//!   `provider`, `type`);
//! * the ConfigMaps `<n>-plugins-conf` and `<n>-server-conf` hold exactly the rendered data;
//! * the ServiceAccount `<n>-server` exists; the Role `<n>-peer-discovery` has exactly the
//!   peer-discovery rules; the RoleBinding `<n>-server` binds that Role to that
//!   ServiceAccount;
//! * the StatefulSet `<n>-server` has the spec's replicas, image, governing Service, pod
//!   management policy, ServiceAccount, the configuration hash of the *current* spec in its
//!   pod template (so a configuration change is only matched once the pods are rolled), the
//!   cookie, plugins and configuration volumes, and the storage of `persistence`;
//! * the stored CR is this one (same uid) and its status reports the StatefulSet's ready
//!   replicas.
//!
//! **What the predicate cannot pin, and what must not change.** The cookie and the
//! credentials are random: no predicate on one state can say which value is right. The
//! predicate asks that they exist and are consistent; that they are *never rotated* is a
//! property of steps, not states: the step invariant [`secrets_unchanged`] (checked by
//! `anvil verify rabbitmq` on every transition) says that a generated Secret's values never
//! change while it exists, and [`replicas_never_decrease`] that the StatefulSet's replicas
//! never decrease.

use crate::reconciler::{
    CONFIG_HASH_ANNOTATION, COOKIE_KEY, DEFAULT_USER_CONF_KEY, ENABLED_PLUGINS, PASSWORD_KEY,
    USERNAME_KEY, client_ports, client_service_name, config_hash, default_user_conf,
    default_user_name, default_user_public_data, erlang_cookie_name, generated_keys,
    headless_ports, headless_service_name, plugins_config_map_name, ready_replicas, role_binding,
    role_name, role_rules, secret_data, selector_labels, server_config_data,
    server_config_map_name, service_account_name, stateful_set_name, stateful_set_replicas,
};
use crate::resource::{API_VERSION, RabbitmqCluster};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::ClusterView;
use base64::Engine;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;
use std::collections::BTreeMap;

/// The owner identity of `cr` (`None` before it is stored: no uid yet).
pub fn owner(cr: &RabbitmqCluster) -> Option<Owner> {
    Some(Owner {
        api_version: API_VERSION.into(),
        kind: "RabbitmqCluster".into(),
        name: cr.metadata.name.clone()?,
        uid: cr.metadata.uid.clone()?,
    })
}

fn ports_by_name(obj: &DynamicObject, pointer: &str, port_field: &str) -> BTreeMap<String, i64> {
    obj.body()
        .get("spec")
        .and_then(|s| s.pointer(pointer))
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("name")?.as_str()?.to_string(),
                        p.get(port_field)?.as_i64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expect_ports(list: &[(&str, i32)]) -> BTreeMap<String, i64> {
    list.iter()
        .map(|(n, p)| (n.to_string(), i64::from(*p)))
        .collect()
}

/// The decoded text of `key` in a Secret's data.
pub fn decoded(secret: &DynamicObject, key: &str) -> Option<String> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(secret_data(secret, key)?)
        .ok()?;
    String::from_utf8(b).ok()
}

fn labels_json(cr: &RabbitmqCluster) -> Value {
    serde_json::to_value(selector_labels(cr)).unwrap_or_default()
}

/// The predicate (see the module documentation).
pub fn current_state_matches(cr: &RabbitmqCluster, view: &impl ClusterView) -> bool {
    let Some(owner) = owner(cr) else {
        return false;
    };
    let namespace = cr.metadata.namespace.clone().unwrap_or_default();
    let key = |kind: Kind, name: String| ObjectRef::new(kind, &namespace, name);
    let controlled = |k: ObjectRef| view.get(&k).filter(|o| is_controlled_by(o, &owner));

    // Services: exist, controlled, expose the named ports, select the pods.
    let services = [
        (
            headless_service_name(cr),
            expect_ports(&headless_ports()),
            true,
        ),
        (
            client_service_name(cr),
            expect_ports(&client_ports()),
            false,
        ),
    ];
    for (name, ports, headless) in services {
        let Some(svc) = controlled(key(Kind::of::<Service>(), name)) else {
            return false;
        };
        let spec = svc.spec();
        let selector_ok = spec.and_then(|s| s.get("selector")) == Some(&labels_json(cr));
        let headless_ok = !headless
            || spec
                .and_then(|s| s.get("clusterIP"))
                .and_then(Value::as_str)
                == Some("None");
        if !(selector_ok && headless_ok && ports_by_name(svc, "/ports", "port") == ports) {
            return false;
        }
    }

    // Secrets: the generated values exist (and are consistent); the public keys match.
    let Some(cookie) = controlled(key(Kind::of::<Secret>(), erlang_cookie_name(cr))) else {
        return false;
    };
    if secret_data(cookie, COOKIE_KEY).is_none() {
        return false;
    }
    let Some(user) = controlled(key(Kind::of::<Secret>(), default_user_name(cr))) else {
        return false;
    };
    let (Some(u), Some(p), Some(conf)) = (
        decoded(user, USERNAME_KEY),
        decoded(user, PASSWORD_KEY),
        decoded(user, DEFAULT_USER_CONF_KEY),
    ) else {
        return false;
    };
    if conf != default_user_conf(&u, &p) {
        return false;
    }
    for (k, v) in default_user_public_data(cr) {
        if decoded(user, &k).as_deref() != Some(v.as_str()) {
            return false;
        }
    }

    // ConfigMaps: exactly the rendered data.
    let config_maps = [
        (
            plugins_config_map_name(cr),
            BTreeMap::from([("enabled_plugins".to_string(), ENABLED_PLUGINS.to_string())]),
        ),
        (server_config_map_name(cr), server_config_data(cr)),
    ];
    for (name, data) in config_maps {
        let Some(cm) = controlled(key(Kind::of::<ConfigMap>(), name)) else {
            return false;
        };
        let want = serde_json::to_value(data).unwrap_or_default();
        if cm.body().get("data") != Some(&want) {
            return false;
        }
    }

    // RBAC: the ServiceAccount, the peer-discovery Role, the binding of the two.
    if controlled(key(Kind::of::<ServiceAccount>(), service_account_name(cr))).is_none() {
        return false;
    }
    let Some(role) = controlled(key(Kind::of::<Role>(), role_name(cr))) else {
        return false;
    };
    if role.body().get("rules") != Some(&serde_json::to_value(role_rules()).unwrap_or_default()) {
        return false;
    }
    let Some(binding) = controlled(key(Kind::of::<RoleBinding>(), role_binding_name(cr))) else {
        return false;
    };
    let want = role_binding(cr);
    let role_ref_ok = binding.body().get("roleRef")
        == Some(&serde_json::to_value(&want.role_ref).unwrap_or_default());
    let subject_ok = binding
        .body()
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.len() == 1
                && s[0].get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                && s[0].get("name").and_then(Value::as_str)
                    == Some(service_account_name(cr).as_str())
        });
    if !(role_ref_ok && subject_ok) {
        return false;
    }

    // StatefulSet.
    let Some(sts) = controlled(key(Kind::of::<StatefulSet>(), stateful_set_name(cr))) else {
        return false;
    };
    if !stateful_set_matches(cr, sts) {
        return false;
    }

    // The stored CR is this one and its status reports the StatefulSet's ready replicas.
    let Some(stored) = view.get(&key(
        Kind::of::<RabbitmqCluster>(),
        cr.metadata.name.clone().unwrap_or_default(),
    )) else {
        return false;
    };
    stored.uid() == cr.metadata.uid.as_deref()
        && stored
            .status()
            .and_then(|s| s.get("readyReplicas"))
            .and_then(Value::as_i64)
            == Some(ready_replicas(sts))
}

fn role_binding_name(cr: &RabbitmqCluster) -> String {
    crate::reconciler::role_binding_name(cr)
}

/// The StatefulSet part of [`current_state_matches`].
pub fn stateful_set_matches(cr: &RabbitmqCluster, sts: &DynamicObject) -> bool {
    let Some(spec) = sts.spec() else {
        return false;
    };
    let at = |ptr: &str| spec.pointer(ptr);
    let text = |ptr: &str| at(ptr).and_then(Value::as_str);
    let replicas_ok = stateful_set_replicas(sts) == i64::from(cr.spec.replicas);
    let service_ok = text("/serviceName") == Some(headless_service_name(cr).as_str());
    let policy_ok = text("/podManagementPolicy") == Some(cr.spec.pod_management_policy.as_str());
    let account_ok =
        text("/template/spec/serviceAccountName") == Some(service_account_name(cr).as_str());
    let containers = at("/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let image_ok = containers.len() == 1
        && containers[0].get("image").and_then(Value::as_str) == Some(cr.spec.image.as_str());
    let hash_ok = at("/template/metadata/annotations")
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
        .and_then(Value::as_str)
        == Some(config_hash(cr).as_str());
    let volumes = at("/template/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let volume = |name: &str, pointer: &str, want: &str| {
        volumes.iter().any(|v| {
            v.get("name").and_then(Value::as_str) == Some(name)
                && v.pointer(pointer).and_then(Value::as_str) == Some(want)
        })
    };
    let volumes_ok = volume(
        "erlang-cookie-secret",
        "/secret/secretName",
        &erlang_cookie_name(cr),
    ) && volume(
        "plugins-conf",
        "/configMap/name",
        &plugins_config_map_name(cr),
    ) && volume(
        "server-conf",
        "/configMap/name",
        &server_config_map_name(cr),
    ) && volume(
        "rabbitmq-confd",
        "/projected/sources/1/secret/name",
        &default_user_name(cr),
    );
    let claim = at("/volumeClaimTemplates/0/spec");
    let storage_ok = claim
        .and_then(|c| c.pointer("/resources/requests/storage"))
        .and_then(Value::as_str)
        == Some(cr.spec.persistence.storage.as_str())
        && claim
            .and_then(|c| c.get("storageClassName"))
            .and_then(Value::as_str)
            == cr.spec.persistence.storage_class_name.as_deref();
    replicas_ok
        && service_ok
        && policy_ok
        && account_ok
        && image_ok
        && hash_ok
        && volumes_ok
        && storage_ok
}

fn replicas_of(view: &impl ClusterView, key: &ObjectRef) -> Option<i64> {
    view.get(key).map(stateful_set_replicas)
}

/// The transition property "the StatefulSet's replicas never decrease": between two views
/// of the cluster (before and after one step), the StatefulSet `key` existing in both has at
/// least as many replicas after as before.
pub fn replicas_never_decrease(
    key: &ObjectRef,
    before: &impl ClusterView,
    after: &impl ClusterView,
) -> bool {
    match (replicas_of(before, key), replicas_of(after, key)) {
        (Some(b), Some(a)) => a >= b,
        _ => true,
    }
}

/// The transition property "generated Secrets are never rotated": between two views of the
/// cluster, each generated Secret (`(key, step label)`) existing in both has the same
/// generated values (`.erlang.cookie`; `username`, `password`, `default_user.conf`).
pub fn secrets_unchanged(
    secrets: &[(ObjectRef, &'static str)],
    before: &impl ClusterView,
    after: &impl ClusterView,
) -> bool {
    secrets
        .iter()
        .all(|(key, label)| match (before.get(key), after.get(key)) {
            (Some(b), Some(a)) => generated_keys(label)
                .iter()
                .all(|k| secret_data(b, k).is_none() || secret_data(b, k) == secret_data(a, k)),
            _ => true,
        })
}
