//! The RabbitMQ controller's verification scope: the `RabbitmqCluster` kind as the cluster
//! model's API server sees it (its CRD, whose schema and CEL rules the model evaluates), the
//! model of the random source ([`RandomModel`], the cluster model's external-system hook), the
//! default scope, the properties, and `verify`.
//!
//! Properties of `anvil verify rabbitmq`:
//!
//! * `esr`: `[] desired_state_is(cr) ~> [] current_state_matches(cr)` with the predicate of
//!   [`crate::desired`];
//! * `sts_replicas_never_decrease` (a step invariant `[][A(s,s')]`): on every step of the
//!   model, the StatefulSet's `spec.replicas` does not decrease;
//! * `secrets_never_rotated` (a step invariant): on every step, the generated values of the
//!   cookie and default-user Secrets do not change while the Secret exists;
//! * the built-in invariants `no_foreign_writes` (the controller never writes an object
//!   controlled by someone else), `no_lost_updates` (no unconditional update built from a
//!   stale read) and `object_bound`.

use crate::desired::{current_state_matches, replicas_never_decrease, secrets_unchanged};
use crate::random::{RandomRequest, RandomResponse, model_answer, unavailable};
use crate::reconciler::{
    DEFAULT_USER, ERLANG_COOKIE, RabbitmqController, default_user_name, erlang_cookie_name,
    stateful_set_name,
};
use crate::resource::{RabbitmqCluster, RabbitmqClusterSpec, crd};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec, Report, StepInvariant};
use anvil_cluster_model::{Etcd, ExternalModel, Faults, KindInfo, KindRegistry, Scope, Tokens};
use anvil_objects::{Kind, ObjectRef};
use anvil_reconciler::Reconciler;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;
use std::sync::Arc;

/// Name of the step invariant on the StatefulSet's replicas.
pub const REPLICAS_NEVER_DECREASE: &str = "sts_replicas_never_decrease";
/// Name of the step invariant on the generated Secrets.
pub const SECRETS_NEVER_ROTATED: &str = "secrets_never_rotated";

/// The kinds the model's API server knows: the built-ins and `RabbitmqCluster`, validated by
/// its CRD's schema (with its defaults) and CEL rules (including the `oldSelf` transition
/// rules: replicas never decrease, storage and pod management policy immutable).
pub fn kinds() -> KindRegistry {
    let crd = serde_json::to_value(crd()).expect("the CRD serialises");
    let info = KindInfo::custom_resource_from_crd(&crd)
        .unwrap_or_else(|e| panic!("the RabbitmqCluster CRD: {e}"));
    KindRegistry::builtin().with(info)
}

/// The model of the random source (see [`crate::random`]): stateless; each answer holds the
/// smallest values `random-<i>` that no stored Secret contains. Under the request-drop fault a
/// request may fail instead (`Unavailable`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomModel;

impl ExternalModel for RandomModel {
    type Request = RandomRequest;
    type Response = RandomResponse;
    type State = ();

    fn init(&self) {}

    fn handle(&self, _: &mut (), req: &RandomRequest, cluster: &Etcd) -> RandomResponse {
        model_answer(req, cluster.objects.values())
    }

    fn drop_response(&self, req: &RandomRequest) -> Option<RandomResponse> {
        Some(unavailable(req))
    }
}

/// The configuration edit of the default scope (`userDefinedConfiguration.conf`).
pub const EDITED_CONFIG: &str = "channel_max = 1050\n";

/// The specs of the default scope, written as a user writes them (only the fields that differ
/// from the defaults; the model's API server validates with the CRD's defaults applied, and
/// the typed reading of the CR fills in the same values through the serde defaults): created
/// with 1 replica; edits scale to 2, and change the configuration (which changes
/// `userDefinedConfiguration.conf`, hence the configuration hash, hence rolls the pods).
pub fn default_specs() -> Vec<serde_json::Value> {
    vec![
        json!({"replicas": 1}),
        json!({"replicas": 2}),
        json!({"replicas": 2, "rabbitmqConfig": {"additionalConfig": EDITED_CONFIG}}),
    ]
}

/// The default scope of `anvil verify rabbitmq`: a `RabbitmqCluster` created with 1 replica
/// and edited at most twice, at any point of reconciliation, among the specs of
/// [`default_specs`] (so: scale 1 -> 2 then the configuration change; or both at once; or the
/// configuration change then its undo; edits to fewer replicas are rejected by the CRD's
/// rule); controller crashes and request drops (the random source's failures among them)
/// until each is disabled, and at most two stale requests (writes of crashed controllers
/// still in flight, landing at any later point). 74,402 states, about 3 s in a release build
/// on two cores (see `README.md`).
pub fn default_scope() -> Scope {
    let mut s = Scope::new("default", "rabbit", default_specs()[0].clone());
    s.specs = default_specs();
    s.max_edits = 2;
    s.faults = Faults {
        crash: true,
        drop: true,
        ..Faults::default()
    };
    s.max_stale_requests = 2;
    s
}

/// The scope for stale requests: created with 1 replica, edited once to 2 replicas;
/// controller crashes with at most 1 stale request of an earlier controller life in flight
/// (no drops). The controller holds there (`tests/verify.rs`, release builds), and
/// `rabbitmq-stale-scale-down` is caught there.
pub fn stale_request_scope() -> Scope {
    let mut s = default_scope();
    s.specs = vec![json!({"replicas": 1}), json!({"replicas": 2})];
    s.max_edits = 1;
    s.faults = Faults {
        crash: true,
        ..Faults::default()
    };
    s.max_stale_requests = 1;
    s
}

fn probe(scope: &Scope) -> RabbitmqCluster {
    let mut cr = RabbitmqCluster::new(&scope.name, RabbitmqClusterSpec::default());
    cr.metadata.namespace = Some(scope.namespace.clone());
    cr
}

/// The step invariants of `scope`'s custom resource: [`REPLICAS_NEVER_DECREASE`] and
/// [`SECRETS_NEVER_ROTATED`].
pub fn step_invariants<R>(scope: &Scope) -> Vec<(String, StepInvariant<R, RandomModel>)>
where
    R: Reconciler<
            R = RabbitmqCluster,
            ExternalRequest = RandomRequest,
            ExternalResponse = RandomResponse,
        >,
    R::T: Tokens,
{
    let cr = probe(scope);
    let ns = scope.namespace.clone();
    let sts = ObjectRef::new(Kind::of::<StatefulSet>(), &ns, stateful_set_name(&cr));
    let secrets = vec![
        (
            ObjectRef::new(Kind::of::<Secret>(), &ns, erlang_cookie_name(&cr)),
            ERLANG_COOKIE.label,
        ),
        (
            ObjectRef::new(Kind::of::<Secret>(), &ns, default_user_name(&cr)),
            DEFAULT_USER.label,
        ),
    ];
    let replicas: StepInvariant<R, RandomModel> = Arc::new(move |s, t| {
        s.etcd.objects.shares(&t.etcd.objects) || replicas_never_decrease(&sts, &s.etcd, &t.etcd)
    });
    let rotated: StepInvariant<R, RandomModel> = Arc::new(move |s, t| {
        s.etcd.objects.shares(&t.etcd.objects) || secrets_unchanged(&secrets, &s.etcd, &t.etcd)
    });
    vec![
        (REPLICAS_NEVER_DECREASE.to_string(), replicas),
        (SECRETS_NEVER_ROTATED.to_string(), rotated),
    ]
}

/// The harness description of a reconciler of `RabbitmqCluster` (the controller or a broken
/// variant) for `scope`: ESR, the two step invariants, no-foreign-writes and no-lost-updates.
pub fn spec<R>(name: &str, scope: &Scope) -> ControllerSpec<R, RandomModel>
where
    R: Reconciler<
            R = RabbitmqCluster,
            ExternalRequest = RandomRequest,
            ExternalResponse = RandomResponse,
        >,
    R::T: Tokens,
{
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: RandomModel,
        matches: esr::matches_etcd(|cr: &RabbitmqCluster, etcd: &Etcd| {
            current_state_matches(cr, etcd)
        }),
        invariants: Vec::new(),
        step_invariants: step_invariants::<R>(scope),
        no_foreign_writes: true,
        no_lost_updates: true,
    }
}

/// Checks a reconciler of `RabbitmqCluster` within `scope`.
pub fn verify_reconciler<R>(name: &str, scope: Scope, opts: &CheckOptions) -> Report
where
    R: Reconciler<
            R = RabbitmqCluster,
            ExternalRequest = RandomRequest,
            ExternalResponse = RandomResponse,
        >,
    R::T: Tokens,
{
    esr::verify(spec::<R>(name, &scope), scope, opts)
}

/// `anvil verify rabbitmq`.
pub fn verify(opts: &CheckOptions) -> Report {
    verify_reconciler::<RabbitmqController>("rabbitmq", default_scope(), opts)
}
