//! The FluentBit controller. A reconcile first reads the configuration Secret named by
//! `fluentBitConfigName` (written by the FluentBitConfig controller):
//!
//! * missing: it only reports `configFound: false` in the status (and ends; the next reconcile
//!   looks again), so nothing is created that would need fixing later;
//! * present: it records the configuration's hash, then keeps the ServiceAccount, Role,
//!   RoleBinding, Service and DaemonSet in their desired form ([`crate::objects`]) and reports
//!   `configFound: true` with the hash in the status.

use crate::config::config_hash;
use crate::objects::{DAEMON_SET, FACT_CONFIG_HASH, ROLE, ROLE_BINDING, SERVICE, SERVICE_ACCOUNT};
use crate::resource::FluentBit;
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::chain::{ChainState, Facts, Phase, StatusStep, Step, run_step};
use anvil_reconciler::{
    KubeRequest, KubeResponse, NoExternal, Reconciler, Request, Response, Tokens,
};
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

/// Where a reconcile is with the configuration Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Tokens)]
pub enum ConfigRead {
    /// Not read yet.
    #[default]
    Start,
    /// Waiting for the Get of the Secret.
    AwaitGet,
    /// Read: the chain of [`STEPS`] runs.
    Found,
    /// Not found: the chain of [`MISSING_STEPS`] runs.
    Missing,
}

/// The local state of a FluentBit reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Tokens)]
pub struct FluentBitState {
    /// The configuration Secret.
    pub config: ConfigRead,
    /// The chain after it.
    pub chain: ChainState,
}

/// The key of the configuration Secret of `cr`.
pub fn config_secret_key(cr: &FluentBit) -> ObjectRef {
    ObjectRef::new(
        Kind::of::<Secret>(),
        cr.metadata.namespace.clone().unwrap_or_default(),
        cr.spec.fluent_bit_config_name.clone(),
    )
}

/// The status for the facts of a reconcile: the configuration found (with its hash) or not.
pub fn desired_status(_: &FluentBit, facts: &Facts) -> serde_json::Value {
    match facts.get(FACT_CONFIG_HASH) {
        Some(h) => json!({"configFound": true, "configHash": h}),
        None => json!({"configFound": false, "configHash": ""}),
    }
}

/// The status step.
pub const STATUS: StatusStep<FluentBit> = StatusStep {
    status: desired_status,
};

/// The steps once the configuration Secret was read.
pub const STEPS: &[Step<FluentBit, NoExternal, NoExternal>] = &[
    Step::Object(SERVICE_ACCOUNT),
    Step::Object(ROLE),
    Step::Object(ROLE_BINDING),
    Step::Object(SERVICE),
    Step::Object(DAEMON_SET),
    Step::Status(STATUS),
];

/// The steps when the configuration Secret does not exist: the status only.
pub const MISSING_STEPS: &[Step<FluentBit, NoExternal, NoExternal>] = &[Step::Status(STATUS)];

type Out = (FluentBitState, Option<Request<NoExternal>>);

/// One step of a reconcile that reads the configuration first and then runs `found` or
/// `missing` (shared with the broken variant).
pub fn read_config_then(
    found: &[Step<FluentBit, NoExternal, NoExternal>],
    missing: &[Step<FluentBit, NoExternal, NoExternal>],
    cr: &FluentBit,
    resp: Option<Response<NoExternal>>,
    mut s: FluentBitState,
) -> Out {
    match (&s.config, resp) {
        (ConfigRead::Start, _) => {
            s.config = ConfigRead::AwaitGet;
            let get = KubeRequest::Get(config_secret_key(cr));
            (s, Some(Request::Kube(get)))
        }
        (ConfigRead::AwaitGet, Some(Response::Kube(KubeResponse::Get(got)))) => {
            let steps = match got {
                Ok(secret) => {
                    s.chain.facts.insert(FACT_CONFIG_HASH, config_hash(&secret));
                    s.config = ConfigRead::Found;
                    found
                }
                Err(e) if e.is_not_found() => {
                    s.config = ConfigRead::Missing;
                    missing
                }
                Err(e) => {
                    s.chain.phase = Phase::Error(format!("configuration secret: get failed: {e}"));
                    return (s, None);
                }
            };
            let (chain, req) = run_step(steps, cr, None, s.chain);
            s.chain = chain;
            (s, req)
        }
        (ConfigRead::AwaitGet, _) => {
            s.chain.phase = Phase::Error("configuration secret: no answer to its Get".to_string());
            (s, None)
        }
        (ConfigRead::Found, resp) => {
            let (chain, req) = run_step(found, cr, resp, s.chain);
            s.chain = chain;
            (s, req)
        }
        (ConfigRead::Missing, resp) => {
            let (chain, req) = run_step(missing, cr, resp, s.chain);
            s.chain = chain;
            (s, req)
        }
    }
}

/// The FluentBit controller.
pub struct FluentBitController;

impl Reconciler for FluentBitController {
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
    ) -> Out {
        read_config_then(STEPS, MISSING_STEPS, cr, resp, state)
    }

    fn reconcile_done(s: &FluentBitState) -> bool {
        matches!(s.config, ConfigRead::Found | ConfigRead::Missing) && s.chain.is_done()
    }

    fn reconcile_error(s: &FluentBitState) -> bool {
        s.chain.is_error()
    }

    fn validate(cr: &FluentBit) -> Result<(), String> {
        crate::resource::validate_fluent_bit(&cr.spec)
    }
}

/// The stored object `obj` as the DaemonSet step would see it: whether it matches its desired
/// form for configuration hash `hash` (used by the desired-state predicate).
pub fn daemon_set_up_to_date(cr: &FluentBit, obj: &DynamicObject, hash: &str) -> bool {
    let mut facts = Facts::new();
    facts.insert(FACT_CONFIG_HASH, hash.to_string());
    (DAEMON_SET.desired)(cr, &facts).is_ok_and(|d| (DAEMON_SET.merge)(cr, obj, &d) == *obj)
}
