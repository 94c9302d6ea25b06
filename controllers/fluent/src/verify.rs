//! Verification scopes and entry points: the two controllers together in one cluster model
//! (`anvil verify fluent`, [`verify_fluent`]), each alone (`fluentbit`, `fluentbit-config`),
//! and the broken variants.

use crate::broken::{ConfigWritesDaemonSet, EarlyDaemonSet};
use crate::config::FluentBitConfigController;
use crate::desired::{config_matches, fluent_bit_matches};
use crate::fluentbit::FluentBitController;
use crate::resource::{FluentBit, FluentBitConfig, fluent_bit_config_crd, fluent_bit_crd};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec, Report};
use anvil_cluster_model::esr_set::{self, MemberSpec, SetSpec};
use anvil_cluster_model::model::set::{ControllerSet, Pair};
use anvil_cluster_model::{
    Etcd, Faults, KindInfo, KindRegistry, MemberScope, NoExternalModel, Scope, Tokens,
};
use anvil_objects::Kind;
use anvil_reconciler::{NoExternal, Reconciler};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::{Value, json};

/// Namespace of every scope.
pub const NAMESPACE: &str = "default";
/// Name of the `FluentBit` of the scopes.
pub const FLUENT_BIT: &str = "fluent-bit";
/// Name of the `FluentBitConfig` of the scopes (and of its Secret).
pub const CONFIG: &str = "fluent-bit-config";

/// The controllers checked together: member 0 the FluentBit controller, member 1 the
/// FluentBitConfig controller.
pub type Fluent = Pair<FluentBitController, FluentBitConfigController>;

/// The kinds the model's API server knows: the built-ins and both custom resources, validated
/// by their CRDs' schemas and CEL rules.
pub fn kinds() -> KindRegistry {
    let info = |crd: Value| {
        KindInfo::custom_resource_from_crd(&crd).unwrap_or_else(|e| panic!("a fluent CRD: {e}"))
    };
    KindRegistry::builtin()
        .with(info(
            serde_json::to_value(fluent_bit_crd()).expect("serialises"),
        ))
        .with(info(
            serde_json::to_value(fluent_bit_config_crd()).expect("serialises"),
        ))
}

/// The `FluentBit` specs: created with the defaults, edited to another image with the log
/// volumes disabled.
pub fn fluent_bit_specs() -> Vec<Value> {
    vec![
        json!({"fluentBitConfigName": CONFIG}),
        json!({"fluentBitConfigName": CONFIG, "image": "fluent/fluent-bit:3.2", "disableLogVolumes": true}),
    ]
}

/// The `FluentBitConfig` specs: a tail-to-stdout pipeline, edited to another flush interval.
pub fn config_specs() -> Vec<Value> {
    let conf = |flush: u8| {
        format!(
            "[SERVICE]\n    Flush        {flush}\n    Parsers_File parsers.conf\n    HTTP_Server  On\n    HTTP_Port    2020\n\n[INPUT]\n    Name   tail\n    Path   /var/log/containers/*.log\n    Parser docker\n    DB     /fluent-bit/tail/pos.db\n\n[OUTPUT]\n    Name  stdout\n    Match *\n"
        )
    };
    let parsers = "[PARSER]\n    Name   docker\n    Format json\n    Time_Key time\n";
    vec![
        json!({"fluentBitConfig": conf(1), "parsersConfig": parsers}),
        json!({"fluentBitConfig": conf(5), "parsersConfig": parsers}),
    ]
}

fn faults() -> Faults {
    Faults {
        crash: true,
        drop: true,
        ..Default::default()
    }
}

/// The default scope of `anvil verify fluent`: a FluentBit and its FluentBitConfig, created
/// in any order, each edited once (the FluentBit: a new image and no log volumes; the
/// configuration: a new flush interval, which changes the configuration hash and so must roll
/// the DaemonSet's pods), with crashes of each controller, dropped requests, every transient
/// error, lost responses and two stale requests (55,352 states, about 2.5 s in a release
/// build). Another writer's update on top is [`fluent_other_writer_scope`].
pub fn fluent_scope() -> Scope {
    Scope {
        namespace: NAMESPACE.into(),
        name: FLUENT_BIT.into(),
        crs: 1,
        specs: fluent_bit_specs(),
        max_edits: 1,
        max_deletes: 0,
        faults: Faults {
            transient: true,
            lost_response: true,
            ..faults()
        },
        max_stale_requests: 2,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: vec![MemberScope {
            controller: "fluentbit-config".into(),
            name: CONFIG.into(),
            specs: config_specs(),
            max_edits: 1,
            max_deletes: 0,
        }],
        objects: Vec::new(),
    }
}

/// The scope of `anvil verify fluent-other-writer`: one edit of each custom resource, crashes
/// of each controller, dropped requests, one stale request and one update of a managed object
/// by another writer (someone edits the config Secret, scales nothing -- a DaemonSet has no
/// replicas -- or annotates an object; the controllers must repair it): 594,553 states,
/// about 16 s in a release build.
pub fn fluent_other_writer_scope() -> Scope {
    let mut s = fluent_scope();
    s.faults = Faults {
        other_updates: 1,
        ..faults()
    };
    s.max_stale_requests = 1;
    s
}

/// The configuration Secret as the FluentBitConfig controller writes it for the first config
/// spec (the object that exists before anything happens in [`fluent_bit_scope`]).
pub fn config_secret_manifest() -> Value {
    let spec = &config_specs()[0];
    let b64 = |k: &str| {
        let text = spec[k].as_str().unwrap_or_default().as_bytes().to_vec();
        serde_json::to_value(k8s_openapi::ByteString(text)).unwrap_or(Value::Null)
    };
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": CONFIG, "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {"fluent-bit.conf": b64("fluentBitConfig"), "parsers.conf": b64("parsersConfig")}
    })
}

/// The scope of `anvil verify fluentbit`: the FluentBit controller alone, its configuration
/// Secret existing from the start (written by someone else), one edit, crashes, dropped
/// requests and one stale request.
pub fn fluent_bit_scope() -> Scope {
    Scope {
        namespace: NAMESPACE.into(),
        name: FLUENT_BIT.into(),
        crs: 1,
        specs: fluent_bit_specs(),
        max_edits: 1,
        max_deletes: 0,
        faults: faults(),
        max_stale_requests: 1,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: vec![config_secret_manifest()],
    }
}

/// The scope of `anvil verify fluentbit-config`: the FluentBitConfig controller alone, with
/// two edits, crashes, dropped requests, one stale request, and other writers that delete
/// and edit its Secret once each.
pub fn config_scope() -> Scope {
    Scope {
        namespace: NAMESPACE.into(),
        name: CONFIG.into(),
        crs: 1,
        specs: config_specs(),
        max_edits: 2,
        max_deletes: 0,
        faults: Faults {
            other_deletes: 1,
            other_updates: 1,
            ..faults()
        },
        max_stale_requests: 1,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: Vec::new(),
    }
}

/// The harness description of a reconciler of `FluentBit` checked alone.
pub fn fluent_bit_spec<R>(name: &str) -> ControllerSpec<R, NoExternalModel>
where
    R: Reconciler<R = FluentBit, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
    R::T: Tokens,
{
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: NoExternalModel,
        matches: esr::matches_etcd(|cr: &FluentBit, etcd: &Etcd| fluent_bit_matches(cr, etcd)),
        invariants: Vec::new(),
        step_invariants: Vec::new(),
        no_foreign_writes: true,
        no_lost_updates: true,
    }
}

/// `anvil verify fluentbit` (or a broken FluentBit controller alone) within `scope`.
pub fn verify_fluent_bit<R>(name: &str, scope: Scope, opts: &CheckOptions) -> Report
where
    R: Reconciler<R = FluentBit, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
    R::T: Tokens,
{
    esr::verify(fluent_bit_spec::<R>(name), scope, opts)
}

/// `anvil verify fluentbit-config` within `scope`.
pub fn verify_config(name: &str, scope: Scope, opts: &CheckOptions) -> Report {
    esr::verify(config_spec(name), scope, opts)
}

/// The harness description of the FluentBitConfig controller checked alone.
pub fn config_spec(name: &str) -> ControllerSpec<FluentBitConfigController, NoExternalModel> {
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: NoExternalModel,
        matches: esr::matches_etcd(|cr: &FluentBitConfig, etcd: &Etcd| config_matches(cr, etcd)),
        invariants: Vec::new(),
        step_invariants: Vec::new(),
        no_foreign_writes: true,
        no_lost_updates: true,
    }
}

/// The kinds the FluentBit controller reads (besides its own custom resource).
pub fn fluent_bit_reads() -> Vec<Kind> {
    vec![
        Kind::of::<Secret>(),
        Kind::of::<ServiceAccount>(),
        Kind::of::<Role>(),
        Kind::of::<RoleBinding>(),
        Kind::of::<Service>(),
        Kind::of::<DaemonSet>(),
    ]
}

/// The harness description of a pair of a FluentBit controller and a FluentBitConfig
/// controller (the real ones or broken variants).
pub fn set_spec<S: ControllerSet<Q = NoExternal, P = NoExternal>>(
    name: &str,
) -> SetSpec<S, NoExternalModel> {
    SetSpec {
        name: name.into(),
        kinds: kinds(),
        external: NoExternalModel,
        members: vec![
            MemberSpec {
                name: "fluentbit".into(),
                matches: esr_set::member_matches(|cr: &FluentBit, etcd: &Etcd| {
                    fluent_bit_matches(cr, etcd)
                }),
                reads: fluent_bit_reads(),
            },
            MemberSpec {
                name: "fluentbit-config".into(),
                matches: esr_set::member_matches(|cr: &FluentBitConfig, etcd: &Etcd| {
                    config_matches(cr, etcd)
                }),
                reads: vec![Kind::of::<Secret>()],
            },
        ],
        invariants: Vec::new(),
    }
}

/// Checks a pair of controllers within `scope`.
pub fn verify_pair<S: ControllerSet<Q = NoExternal, P = NoExternal>>(
    name: &str,
    scope: Scope,
    opts: &CheckOptions,
) -> Report {
    esr_set::verify_set(set_spec::<S>(name), scope, opts)
}

/// `anvil verify fluent` (and `fluent-other-writer`): both controllers in one model.
pub fn verify_fluent(name: &str, scope: Scope, opts: &CheckOptions) -> Report {
    verify_pair::<Fluent>(name, scope, opts)
}

/// The scope of the broken variants (`anvil verify fluent-early-daemonset`,
/// `fluent-config-writes-daemonset`): both custom resources created in any order, no faults
/// (none is needed to show either bug).
pub fn broken_scope() -> Scope {
    let mut s = fluent_scope();
    s.specs.truncate(1);
    s.max_edits = 0;
    s.others[0].specs.truncate(1);
    s.others[0].max_edits = 0;
    s.faults = Faults::default();
    s.max_stale_requests = 0;
    s
}

/// `anvil verify fluent-early-daemonset`.
pub fn verify_early_daemon_set(scope: Scope, opts: &CheckOptions) -> Report {
    verify_pair::<Pair<EarlyDaemonSet, FluentBitConfigController>>(
        "fluent-early-daemonset",
        scope,
        opts,
    )
}

/// `anvil verify fluent-config-writes-daemonset`.
pub fn verify_config_writes_daemon_set(scope: Scope, opts: &CheckOptions) -> Report {
    verify_pair::<Pair<FluentBitController, ConfigWritesDaemonSet>>(
        "fluent-config-writes-daemonset",
        scope,
        opts,
    )
}
