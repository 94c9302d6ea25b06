//! Deliberately broken variants of the RabbitMQ controller, each caught by `anvil verify`.
//!
//! * [`StaleScaleDown`] (`rabbitmq-stale-scale-down`): writes the StatefulSet from its
//!   snapshot of the CR with an unconditional update (no resourceVersion precondition, like a
//!   forced server-side apply of the object rendered from the snapshot), and without the
//!   scale-down refusal. A reconcile whose snapshot says 1 replica sends its update, the
//!   controller crashes, the CR is scaled up and a new reconcile scales the StatefulSet up;
//!   then the stale update of the earlier life arrives and scales it back to 1
//!   (`sts_replicas_never_decrease` is violated, and so is `no_lost_updates`).
//! * [`CookieRotation`] (`rabbitmq-cookie-rotation`): asks the random source for a fresh
//!   Erlang cookie on every reconcile and writes it into the existing Secret: the cookie is
//!   regenerated on every reconcile (`secrets_never_rotated` is violated; on a real cluster
//!   the nodes restarted after a rotation cannot talk to the others).
//! * [`ConfigNoRoll`] (`rabbitmq-config-no-roll`): once the StatefulSet exists, only its
//!   replicas are kept up to date. A configuration change rewrites the server-conf ConfigMap
//!   but never the pod template's configuration hash, so the pods are never rolled and never
//!   run the new configuration (ESR is violated: the desired state asks for the hash of the
//!   current configuration in the pod template).

use crate::random::{RandomRequest, RandomResponse};
use crate::reconciler::{
    CLIENT_SERVICE, DEFAULT_USER, ERLANG_COOKIE, FACT_COOKIE, Guards, HEADLESS_SERVICE,
    PLUGINS_CONFIG_MAP, ROLE, ROLE_BINDING, RmqStep, SERVER_CONFIG_MAP, SERVICE_ACCOUNT,
    STATEFUL_SET, STATUS, STEPS, erlang_cookie_name, rabbitmq_step,
};
use crate::resource::RabbitmqCluster;
use crate::verify::{EDITED_CONFIG, default_scope, stale_request_scope, verify_reconciler};
use anvil_cluster_model::esr::{CheckOptions, Report};
use anvil_cluster_model::{Faults, Scope};
use anvil_objects::DynamicObject;
use anvil_reconciler::chain::{
    self, ChainReconciler, ChainState, ExternalStep, Facts, ManagedObject, Step,
};
use anvil_reconciler::{Request, Response};
use serde_json::json;

macro_rules! variant {
    ($name:ident, $steps:expr, $guards:expr) => {
        impl ChainReconciler for $name {
            type R = RabbitmqCluster;
            type ExternalRequest = RandomRequest;
            type ExternalResponse = RandomResponse;

            fn steps() -> &'static [RmqStep] {
                $steps
            }

            fn reconcile_step(
                cr: &RabbitmqCluster,
                resp: Option<Response<RandomResponse>>,
                state: ChainState,
            ) -> (ChainState, Option<Request<RandomRequest>>) {
                rabbitmq_step($steps, $guards, cr, resp, state)
            }

            fn validate(cr: &RabbitmqCluster) -> Result<(), String> {
                crate::resource::validate_spec(&cr.spec)
            }
        }
    };
}

// ---------------------------------------------------------------- stale scale-down

/// The merge of [`StaleScaleDown`]'s StatefulSet step: the desired object over the existing
/// one, *without* its resourceVersion, so the update is unconditional.
pub fn unconditional_merge(
    cr: &RabbitmqCluster,
    existing: &DynamicObject,
    desired: &DynamicObject,
) -> DynamicObject {
    chain::merge_desired(cr, existing, desired).modify(|p| p.metadata.resource_version = None)
}

/// The StatefulSet step of [`StaleScaleDown`].
pub const UNCONDITIONAL_STATEFUL_SET: ManagedObject<RabbitmqCluster> = ManagedObject {
    merge: unconditional_merge,
    ..STATEFUL_SET
};

/// The steps of [`StaleScaleDown`].
pub const STEPS_STALE_SCALE_DOWN: &[RmqStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::Object(ERLANG_COOKIE),
    Step::Object(DEFAULT_USER),
    Step::Object(PLUGINS_CONFIG_MAP),
    Step::Object(SERVER_CONFIG_MAP),
    Step::Object(SERVICE_ACCOUNT),
    Step::Object(ROLE),
    Step::Object(ROLE_BINDING),
    Step::Object(UNCONDITIONAL_STATEFUL_SET),
    Step::Status(STATUS),
];

/// `rabbitmq-stale-scale-down`: unconditional StatefulSet writes from the CR snapshot, no
/// scale-down refusal.
pub struct StaleScaleDown;
variant!(
    StaleScaleDown,
    STEPS_STALE_SCALE_DOWN,
    Guards {
        no_scale_down: false
    }
);

// ---------------------------------------------------------------- cookie rotation

fn fresh_cookie(cr: &RabbitmqCluster, _: &Facts) -> RandomRequest {
    RandomRequest::Fresh {
        namespace: cr.metadata.namespace.clone().unwrap_or_default(),
        secret: erlang_cookie_name(cr),
        count: 1,
    }
}

fn record_cookie(
    _: &RabbitmqCluster,
    resp: &RandomResponse,
    facts: &mut Facts,
) -> Result<(), String> {
    match resp {
        RandomResponse::Fresh(Ok(v)) if v.len() == 1 => {
            facts.insert(FACT_COOKIE, v[0].clone());
            Ok(())
        }
        RandomResponse::Fresh(Ok(v)) => Err(format!("{} values, not 1", v.len())),
        RandomResponse::Fresh(Err(e)) => Err(e.to_string()),
    }
}

/// The step of [`CookieRotation`] that asks for a fresh cookie on every reconcile.
pub const FRESH_COOKIE: ExternalStep<RabbitmqCluster, RandomRequest, RandomResponse> =
    ExternalStep {
        label: "fresh-cookie",
        request: fresh_cookie,
        response: record_cookie,
    };

/// The steps of [`CookieRotation`]: a fresh cookie before the cookie Secret, which is then
/// created or *updated* with it.
pub const STEPS_COOKIE_ROTATION: &[RmqStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::External(FRESH_COOKIE),
    Step::Object(ERLANG_COOKIE),
    Step::Object(DEFAULT_USER),
    Step::Object(PLUGINS_CONFIG_MAP),
    Step::Object(SERVER_CONFIG_MAP),
    Step::Object(SERVICE_ACCOUNT),
    Step::Object(ROLE),
    Step::Object(ROLE_BINDING),
    Step::Object(STATEFUL_SET),
    Step::Status(STATUS),
];

/// `rabbitmq-cookie-rotation`: the Erlang cookie is regenerated on every reconcile.
pub struct CookieRotation;
variant!(
    CookieRotation,
    STEPS_COOKIE_ROTATION,
    Guards {
        no_scale_down: true
    }
);

// ---------------------------------------------------------------- config change, no roll

/// The merge of [`ConfigNoRoll`]'s StatefulSet step: only `spec.replicas` of an existing
/// StatefulSet is brought up to date.
pub fn replicas_only_merge(
    _: &RabbitmqCluster,
    existing: &DynamicObject,
    desired: &DynamicObject,
) -> DynamicObject {
    let replicas = desired.spec().and_then(|s| s.get("replicas")).cloned();
    existing.modify(|p| {
        if let (Some(spec), Some(r)) = (p.body.get_mut("spec"), replicas)
            && let Some(spec) = spec.as_object_mut()
        {
            spec.insert("replicas".into(), r);
        }
    })
}

/// The StatefulSet step of [`ConfigNoRoll`].
pub const SCALE_ONLY_STATEFUL_SET: ManagedObject<RabbitmqCluster> = ManagedObject {
    merge: replicas_only_merge,
    ..STATEFUL_SET
};

/// The steps of [`ConfigNoRoll`].
pub const STEPS_CONFIG_NO_ROLL: &[RmqStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::Object(ERLANG_COOKIE),
    Step::Object(DEFAULT_USER),
    Step::Object(PLUGINS_CONFIG_MAP),
    Step::Object(SERVER_CONFIG_MAP),
    Step::Object(SERVICE_ACCOUNT),
    Step::Object(ROLE),
    Step::Object(ROLE_BINDING),
    Step::Object(SCALE_ONLY_STATEFUL_SET),
    Step::Status(STATUS),
];

/// `rabbitmq-config-no-roll`: an existing StatefulSet only gets its replicas updated.
pub struct ConfigNoRoll;
variant!(
    ConfigNoRoll,
    STEPS_CONFIG_NO_ROLL,
    Guards {
        no_scale_down: true
    }
);

// Each variant differs from the controller in one step only.
const _: () = assert!(
    STEPS.len() == STEPS_STALE_SCALE_DOWN.len()
        && STEPS.len() + 1 == STEPS_COOKIE_ROTATION.len()
        && STEPS.len() == STEPS_CONFIG_NO_ROLL.len()
);

/// The scope of `anvil verify rabbitmq-stale-scale-down`: [`stale_request_scope`] (created
/// with 1 replica, edited once to 2; controller crashes with at most 1 stale request in
/// flight), the smallest scope that exposes the variant (it needs the crash, the stale request
/// and the scale-up).
pub fn stale_scale_down_scope() -> Scope {
    stale_request_scope()
}

/// The scope of `anvil verify rabbitmq-cookie-rotation`: created with 1 replica, no edits, no
/// faults (the second reconcile already rotates the cookie).
pub fn cookie_rotation_scope() -> Scope {
    let mut s = default_scope();
    s.specs = vec![json!({"replicas": 1})];
    s.max_edits = 0;
    s.faults = Faults::default();
    s.max_stale_requests = 0;
    s
}

/// The scope of `anvil verify rabbitmq-config-no-roll`: created with 1 replica, edited once
/// to the default scope's configuration change; no faults.
pub fn config_no_roll_scope() -> Scope {
    let mut s = default_scope();
    s.specs = vec![
        json!({"replicas": 1}),
        json!({"replicas": 1, "rabbitmqConfig": {"additionalConfig": EDITED_CONFIG}}),
    ];
    s.max_edits = 1;
    s.faults = Faults::default();
    s.max_stale_requests = 0;
    s
}

/// `anvil verify rabbitmq-stale-scale-down` at its scope.
pub fn verify_stale_scale_down(opts: &CheckOptions) -> Report {
    verify_reconciler::<StaleScaleDown>("rabbitmq-stale-scale-down", stale_scale_down_scope(), opts)
}

/// `anvil verify rabbitmq-cookie-rotation` at its scope.
pub fn verify_cookie_rotation(opts: &CheckOptions) -> Report {
    verify_reconciler::<CookieRotation>("rabbitmq-cookie-rotation", cookie_rotation_scope(), opts)
}

/// `anvil verify rabbitmq-config-no-roll` at its scope.
pub fn verify_config_no_roll(opts: &CheckOptions) -> Report {
    verify_reconciler::<ConfigNoRoll>("rabbitmq-config-no-roll", config_no_roll_scope(), opts)
}
