//! The FluentBitConfig controller: a chain of one managed object, the Secret (named like the
//! `FluentBitConfig`) holding `fluent-bit.conf` and `parsers.conf`; and the configuration
//! hash that the FluentBit controller puts on its pod template.

use crate::resource::FluentBitConfig;
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::NoExternal;
use anvil_reconciler::chain::{self, Adopt, ChainReconciler, Facts, ManagedObject, Step};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::collections::BTreeMap;

/// Key of the main configuration in the Secret.
pub const MAIN_KEY: &str = "fluent-bit.conf";
/// Key of the parsers in the Secret.
pub const PARSERS_KEY: &str = "parsers.conf";

/// Name of the Secret of a `FluentBitConfig` (its own name).
pub fn secret_name(cr: &FluentBitConfig) -> String {
    cr.metadata.name.clone().unwrap_or_default()
}

/// The Secret's data (plain text, before base64).
pub fn secret_data(cr: &FluentBitConfig) -> BTreeMap<String, String> {
    [
        (MAIN_KEY.to_string(), cr.spec.fluent_bit_config.clone()),
        (PARSERS_KEY.to_string(), cr.spec.parsers_config.clone()),
    ]
    .into()
}

fn desired_secret(cr: &FluentBitConfig, _: &Facts) -> Result<DynamicObject, String> {
    let secret = Secret {
        metadata: ObjectMeta {
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "anvil-fluentbit-config".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            secret_data(cr)
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    };
    DynamicObject::from_typed(&secret).map_err(|e| e.to_string())
}

/// The Secret step (shared with the broken variant).
pub const SECRET: ManagedObject<FluentBitConfig> = ManagedObject {
    label: "secret",
    kind: Kind::of::<Secret>,
    name: secret_name,
    desired: desired_secret,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// Every step of a FluentBitConfig reconcile.
pub const STEPS: &[Step<FluentBitConfig, NoExternal, NoExternal>] = &[Step::Object(SECRET)];

/// The FluentBitConfig controller.
pub struct FluentBitConfigController;

impl ChainReconciler for FluentBitConfigController {
    type R = FluentBitConfig;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<FluentBitConfig, NoExternal, NoExternal>] {
        STEPS
    }
}

/// The configuration hash of a stored configuration Secret: FNV-1a (64 bit, hex) over its
/// `data` entries in key order (the base64 text as stored). Pure and stable across runs and
/// platforms; it depends only on the data, never on resourceVersions.
pub fn config_hash(secret: &DynamicObject) -> String {
    let mut data: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(Value::Object(d)) = secret.body().get("data") {
        for (k, v) in d {
            data.insert(k.as_str(), v.as_str().unwrap_or_default());
        }
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in data {
        for b in k.bytes().chain([0u8]).chain(v.bytes()).chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::FluentBitConfigSpec;

    #[test]
    fn the_hash_follows_the_data_only() {
        let cfg = |main: &str| {
            let mut cr = FluentBitConfig::new(
                "c",
                FluentBitConfigSpec {
                    fluent_bit_config: main.into(),
                    parsers_config: String::new(),
                },
            );
            cr.metadata.namespace = Some("default".into());
            desired_secret(&cr, &Facts::new()).unwrap()
        };
        let a = cfg("[SERVICE]\n    Flush 1\n");
        let b = cfg("[SERVICE]\n    Flush 5\n");
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
        assert_ne!(config_hash(&a), config_hash(&b));
        let relabelled = a.modify(|p| {
            p.metadata.resource_version = Some("1000000000007".into());
        });
        assert_eq!(config_hash(&a), config_hash(&relabelled));
        assert_eq!(config_hash(&a).len(), 16);
    }
}
