//! The desired-state predicates, used by the checker (ESR of each custom resource) and by the
//! end-to-end tests.
//!
//! * A `FluentBitConfig` is matched when its Secret exists, is controlled by it, and holds
//!   exactly `fluent-bit.conf` and `parsers.conf` of its spec.
//! * A `FluentBit` is matched when, **if its configuration Secret exists**, its
//!   ServiceAccount, Role, RoleBinding, Service and DaemonSet exist, are controlled by it and
//!   are in their desired form (a reconcile would write nothing), the DaemonSet's pod template
//!   mounts that Secret and carries the hash of its *current* data, and the status says
//!   `configFound: true` with that hash; **if it does not exist**, the status says
//!   `configFound: false`. So a FluentBit created before its configuration converges once the
//!   configuration appears, and a configuration change is matched only once the pods are
//!   rolled.

use crate::config::{MAIN_KEY, PARSERS_KEY, config_hash, secret_name};
use crate::fluentbit::{config_secret_key, daemon_set_up_to_date};
use crate::objects::{CONFIG_HASH_ANNOTATION, MANAGED, name};
use crate::resource::{FluentBit, FluentBitConfig};
use anvil_objects::{DynamicObject, Kind, ObjectRef, is_controlled_by};
use anvil_reconciler::ClusterView;
use anvil_reconciler::chain::{Facts, owner_of};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

fn stored_is<K: kube::Resource<DynamicType = ()>>(
    view: &impl ClusterView,
    cr: &K,
) -> Option<DynamicObject> {
    let meta = cr.meta();
    let key = ObjectRef::new(
        Kind::of::<K>(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    );
    view.get(&key)
        .filter(|o| o.uid().is_some() && o.uid() == meta.uid.as_deref())
        .cloned()
}

/// The plain-text data of a stored Secret (`None` when a value is not valid base64 UTF-8).
pub fn secret_text(secret: &DynamicObject) -> Option<Vec<(String, String)>> {
    let data = secret.body().get("data").and_then(Value::as_object);
    data.map_or(Some(Vec::new()), |d| {
        d.iter()
            .map(|(k, v)| {
                let b: ByteString = serde_json::from_value(v.clone()).ok()?;
                Some((k.clone(), String::from_utf8(b.0).ok()?))
            })
            .collect()
    })
}

/// True when the cluster matches the `FluentBitConfig` `cr` (see the module docs).
pub fn config_matches(cr: &FluentBitConfig, view: &impl ClusterView) -> bool {
    let (Some(owner), Some(_)) = (owner_of(cr), stored_is(view, cr)) else {
        return false;
    };
    let key = ObjectRef::new(
        Kind::of::<Secret>(),
        cr.metadata.namespace.clone().unwrap_or_default(),
        secret_name(cr),
    );
    let Some(secret) = view.get(&key) else {
        return false;
    };
    let mut want = vec![
        (MAIN_KEY.to_string(), cr.spec.fluent_bit_config.clone()),
        (PARSERS_KEY.to_string(), cr.spec.parsers_config.clone()),
    ];
    want.sort();
    let mut got = secret_text(secret).unwrap_or_default();
    got.sort();
    is_controlled_by(secret, &owner) && got == want
}

/// True when the cluster matches the `FluentBit` `cr` (see the module docs).
pub fn fluent_bit_matches(cr: &FluentBit, view: &impl ClusterView) -> bool {
    let (Some(owner), Some(stored)) = (owner_of(cr), stored_is(view, cr)) else {
        return false;
    };
    let status = stored.status().cloned().unwrap_or(Value::Null);
    let found = status.get("configFound").and_then(Value::as_bool);
    let reported_hash = status.get("configHash").and_then(Value::as_str);
    let Some(secret) = view.get(&config_secret_key(cr)) else {
        return found == Some(false);
    };
    let hash = config_hash(secret);
    if found != Some(true) || reported_hash != Some(hash.as_str()) {
        return false;
    }
    let mut facts = Facts::new();
    facts.insert(crate::objects::FACT_CONFIG_HASH, hash.clone());
    let namespace = cr.metadata.namespace.clone().unwrap_or_default();
    MANAGED.iter().all(|m| {
        let key = ObjectRef::new((m.kind)(), &namespace, (m.name)(cr));
        let Some(obj) = view.get(&key) else {
            return false;
        };
        is_controlled_by(obj, &owner)
            && (m.desired)(cr, &facts).is_ok_and(|d| (m.merge)(cr, obj, &d) == *obj)
    }) && daemon_set_rolled(cr, view, &hash)
}

/// The DaemonSet of `cr` mounts the configuration Secret and its pod template carries `hash`
/// (implied by [`fluent_bit_matches`]'s comparison with the desired form; spelled out because
/// it is the point of the controller).
fn daemon_set_rolled(cr: &FluentBit, view: &impl ClusterView, hash: &str) -> bool {
    let key = ObjectRef::new(
        Kind::of::<k8s_openapi::api::apps::v1::DaemonSet>(),
        cr.metadata.namespace.clone().unwrap_or_default(),
        name(cr),
    );
    let Some(ds) = view.get(&key) else {
        return false;
    };
    let template = ds.spec().and_then(|s| s.get("template"));
    let annotated = template
        .and_then(|t| t.pointer("/metadata/annotations"))
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
        .and_then(Value::as_str)
        == Some(hash);
    let mounted = template
        .and_then(|t| t.pointer("/spec/volumes"))
        .and_then(Value::as_array)
        .is_some_and(|vols| {
            vols.iter().any(|v| {
                v.pointer("/secret/secretName").and_then(Value::as_str)
                    == Some(cr.spec.fluent_bit_config_name.as_str())
            })
        });
    annotated && mounted && daemon_set_up_to_date(cr, ds, hash)
}
