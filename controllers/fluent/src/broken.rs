//! Deliberately broken variants, each caught by `anvil verify` with a counterexample:
//!
//! * [`EarlyDaemonSet`] (`fluent-early-daemonset`): a FluentBit controller that creates the
//!   DaemonSet even when the configuration Secret does not exist yet (without the
//!   configuration mount) and never fixes the pod's volumes afterwards: once the configuration
//!   appears, the pods still do not mount it, forever (ESR of the FluentBit is violated).
//! * [`ConfigWritesDaemonSet`] (`fluent-config-writes-daemonset`): a FluentBitConfig
//!   controller that, after its Secret, annotates the FluentBit's DaemonSet itself to roll its
//!   pods (adopting it): it writes an object another controller owns (`no_foreign_writes`
//!   and `no_shared_writes` are violated).

use crate::config::{SECRET, config_hash};
use crate::fluentbit::{FluentBitState, STATUS, read_config_then};
use crate::objects::{FACT_CONFIG_HASH, ROLE, ROLE_BINDING, SERVICE, SERVICE_ACCOUNT, daemon_set};
use crate::resource::{FluentBit, FluentBitConfig};
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::chain::{
    self, Adopt, ChainReconciler, Facts, ManagedObject, Step, merge_desired,
};
use anvil_reconciler::{NoExternal, Reconciler, Request, Response};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn desired_early(cr: &FluentBit, facts: &Facts) -> Result<DynamicObject, String> {
    let ds = daemon_set(cr, facts.get(FACT_CONFIG_HASH).map(String::as_str));
    DynamicObject::from_typed(&ds).map_err(|e| e.to_string())
}

/// The bug: the merge keeps the pod's existing volumes and mounts.
fn merge_keeping_volumes(
    cr: &FluentBit,
    existing: &DynamicObject,
    desired: &DynamicObject,
) -> DynamicObject {
    let merged = merge_desired(cr, existing, desired);
    let spec = |o: &DynamicObject| o.body().get("spec").cloned();
    let (Some(old), Some(mut new)) = (spec(existing), spec(&merged)) else {
        return merged;
    };
    for path in [
        "/template/spec/volumes",
        "/template/spec/containers/0/volumeMounts",
    ] {
        if let (Some(o), Some(n)) = (old.pointer(path), new.pointer_mut(path)) {
            *n = o.clone();
        }
    }
    merged.modify(|p| {
        p.body.insert("spec".into(), new);
    })
}

const EARLY_DAEMON_SET: ManagedObject<FluentBit> = ManagedObject {
    label: "daemonset",
    kind: Kind::of::<DaemonSet>,
    name: crate::objects::name,
    desired: desired_early,
    merge: merge_keeping_volumes,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

const EARLY_STEPS: &[Step<FluentBit, NoExternal, NoExternal>] = &[
    Step::Object(SERVICE_ACCOUNT),
    Step::Object(ROLE),
    Step::Object(ROLE_BINDING),
    Step::Object(SERVICE),
    Step::Object(EARLY_DAEMON_SET),
    Step::Status(STATUS),
];

const EARLY_MISSING_STEPS: &[Step<FluentBit, NoExternal, NoExternal>] =
    &[Step::Object(EARLY_DAEMON_SET), Step::Status(STATUS)];

/// Broken FluentBit controller: the DaemonSet is created before the configuration exists and
/// its volumes are never fixed.
pub struct EarlyDaemonSet;

impl Reconciler for EarlyDaemonSet {
    type R = FluentBit;
    type T = FluentBitState;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn reconcile_init_state() -> FluentBitState {
        FluentBitState::default()
    }

    fn reconcile_core(
        cr: &FluentBit,
        resp: Option<Response<NoExternal>>,
        state: FluentBitState,
    ) -> (FluentBitState, Option<Request<NoExternal>>) {
        read_config_then(EARLY_STEPS, EARLY_MISSING_STEPS, cr, resp, state)
    }

    fn reconcile_done(s: &FluentBitState) -> bool {
        crate::FluentBitController::reconcile_done(s)
    }

    fn reconcile_error(s: &FluentBitState) -> bool {
        crate::FluentBitController::reconcile_error(s)
    }
}

/// Annotation the broken FluentBitConfig controller writes on the DaemonSet.
pub const ROLLED_ANNOTATION: &str = "fluent.anvil.dev/config-rolled";

/// The FluentBit the broken FluentBitConfig controller believes uses it: its own name without
/// the `-config` suffix (the scopes name them `fluent-bit` and `fluent-bit-config`).
fn fluent_bit_name(cr: &FluentBitConfig) -> String {
    let n = cr.metadata.name.clone().unwrap_or_default();
    n.strip_suffix("-config").unwrap_or(&n).to_string()
}

fn desired_annotation(cr: &FluentBitConfig, _: &Facts) -> Result<DynamicObject, String> {
    let secret = (SECRET.desired)(cr, &Facts::new())?;
    let ds = DaemonSet {
        metadata: ObjectMeta {
            annotations: Some([(ROLLED_ANNOTATION.to_string(), config_hash(&secret))].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    DynamicObject::from_typed(&ds).map_err(|e| e.to_string())
}

const FOREIGN_DAEMON_SET: ManagedObject<FluentBitConfig> = ManagedObject {
    label: "fluentbit-daemonset",
    kind: Kind::of::<DaemonSet>,
    name: fluent_bit_name,
    desired: desired_annotation,
    merge: merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Always,
};

const CONFIG_WRITES_STEPS: &[Step<FluentBitConfig, NoExternal, NoExternal>] =
    &[Step::Object(SECRET), Step::Object(FOREIGN_DAEMON_SET)];

/// Broken FluentBitConfig controller: it writes the FluentBit's DaemonSet.
pub struct ConfigWritesDaemonSet;

impl ChainReconciler for ConfigWritesDaemonSet {
    type R = FluentBitConfig;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<FluentBitConfig, NoExternal, NoExternal>] {
        CONFIG_WRITES_STEPS
    }
}
