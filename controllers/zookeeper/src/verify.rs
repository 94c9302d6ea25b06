//! The ZooKeeper controller's verification scope: the `ZookeeperCluster` kind as the cluster
//! model's API server sees it (its CRD rules in Rust), the model of the ZooKeeper API
//! ([`ZkModel`], the cluster model's external-system hook), the default scope, and `verify`.
//!
//! ESR here reads `[] desired_state_is(cr) ~> [] current_state_matches(cr, etcd, znodes)`: the
//! desired-state predicate also looks at the znode store, which is the external system's state
//! (`state.external`), not part of etcd. The harness's [`ControllerSpec::matches`] only sees
//! etcd, so [`verify_reconciler`] builds the same properties as [`esr::verify`] with the
//! two-view predicate and runs the checker itself; everything else (machine, scope, checker,
//! counterexample rendering and validation, report) is the harness's.

use crate::desired::current_state_matches;
use crate::reconciler::{ZookeeperController, client_service_name};
use crate::resource::{ZookeeperCluster, ZookeeperClusterSpec, validate_spec, validate_transition};
use crate::zk::{ZkRequest, ZkResponse, ZnodeStore};
use anvil_checker::{Checker, Property, PropertyStatus};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec, PropertyReport, Report};
use anvil_cluster_model::model::{ClusterMachine, StateOf, foreign_write_in, typed};
use anvil_cluster_model::render::render_trace;
use anvil_cluster_model::tokens::Renaming;
use anvil_cluster_model::{Etcd, ExternalModel, Faults, KindInfo, KindRegistry, Scope, Tokens};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::Reconciler;
use k8s_openapi::api::core::v1::Service;
use serde_json::json;
use std::sync::Arc;

fn validate(o: &DynamicObject) -> Result<(), String> {
    let cr: ZookeeperCluster = o.to_typed().map_err(|e| e.to_string())?;
    validate_spec(&cr.spec)
}

fn transition(old: &DynamicObject, new: &DynamicObject) -> Result<(), String> {
    let old: ZookeeperCluster = old.to_typed().map_err(|e| e.to_string())?;
    let new: ZookeeperCluster = new.to_typed().map_err(|e| e.to_string())?;
    validate_transition(&old.spec, &new.spec)
}

/// The kinds the model's API server knows: the built-ins and `ZookeeperCluster` with the CRD's
/// rules.
pub fn kinds() -> KindRegistry {
    KindRegistry::builtin().with(
        KindInfo::custom_resource(Kind::of::<ZookeeperCluster>())
            .with_validation(validate)
            .with_transition_validation(transition),
    )
}

// The ZooKeeper API's types carry no resourceVersions or uids: nothing to rename.
impl Tokens for ZkRequest {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

impl Tokens for ZkResponse {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

impl Tokens for ZnodeStore {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

/// The model of the ZooKeeper API: a [`ZnodeStore`] per ensemble. A request reaches the
/// ensemble through its client Service, so it fails with `Unavailable` while that Service does
/// not exist; under the request-drop fault any request may also fail with `Unavailable`
/// (transient failures, eventually disabled with the other drops).
#[derive(Clone, Copy, Debug, Default)]
pub struct ZkModel;

impl ExternalModel for ZkModel {
    type Request = ZkRequest;
    type Response = ZkResponse;
    type State = ZnodeStore;

    fn init(&self) -> ZnodeStore {
        ZnodeStore::default()
    }

    fn handle(&self, state: &mut ZnodeStore, req: &ZkRequest, cluster: &Etcd) -> ZkResponse {
        let (namespace, name) = req.ensemble();
        let mut probe = ZookeeperCluster::new(name, ZookeeperClusterSpec::default());
        probe.metadata.namespace = Some(namespace.to_string());
        let svc = ObjectRef::new(
            Kind::of::<Service>(),
            namespace,
            client_service_name(&probe),
        );
        if !cluster.objects.contains_key(&svc) {
            return req.error_response(crate::zk::ZkError::Unavailable(format!(
                "service {} not found",
                svc.name
            )));
        }
        state.handle(req)
    }

    fn drop_response(&self, req: &ZkRequest) -> Option<ZkResponse> {
        Some(ZnodeStore::unavailable(req))
    }
}

/// The specs of the default scope, written as a user writes them (only the fields that differ
/// from the defaults; the model's API server does not apply the CRD's schema defaults, the
/// typed reading of the CR fills in the same values through the serde defaults): created with
/// 3 replicas; one edit scales to 5 and changes the configuration (`tickTime` 2000 -> 3000,
/// which changes `zoo.cfg` and so rolls the pods).
pub fn default_specs() -> Vec<serde_json::Value> {
    vec![
        json!({"replicas": 3}),
        json!({"replicas": 5, "conf": {"tickTime": 3000}}),
    ]
}

/// The default scope of `anvil verify zookeeper`: a `ZookeeperCluster` created with 3
/// replicas and edited at most once (scale 3 -> 5 with a conf change), at any point of
/// reconciliation; controller crashes and request drops (the ZooKeeper API's transient
/// failures among them) until each is disabled; at most 1 stale request of earlier controller
/// lives in flight.
pub fn default_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "zk".into(),
        specs: default_specs(),
        max_edits: 1,
        max_deletes: 0,
        faults: Faults {
            crash: true,
            drop: true,
            other_deletes: 0,
            pod_losses: 0,
        },
        max_stale_requests: 1,
    }
}

/// The scope that exposes `zookeeper-adopt`: the CR is deleted and re-created once with the
/// same name (no edits, no faults).
pub fn recreate_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "zk".into(),
        specs: vec![json!({"replicas": 3})],
        max_edits: 0,
        max_deletes: 1,
        faults: Faults::default(),
        max_stale_requests: 1,
    }
}

/// The harness description of a reconciler of `ZookeeperCluster` (the controller or a broken
/// variant). Its `matches` is the Kubernetes half of the predicate; [`verify_reconciler`]
/// checks the full one.
pub fn spec<R>(name: &str) -> ControllerSpec<R, ZkModel>
where
    R: Reconciler<R = ZookeeperCluster, ExternalRequest = ZkRequest, ExternalResponse = ZkResponse>,
    R::T: Tokens,
{
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: ZkModel,
        matches: Arc::new(|cr: &ZookeeperCluster, etcd: &Etcd| {
            crate::desired::kube_state_matches(cr, etcd)
        }),
        invariants: Vec::new(),
        no_foreign_writes: true,
    }
}

/// The properties checked: ESR with the two-view predicate (etcd and the znode store) and
/// the no-foreign-writes invariant.
pub fn properties<R>(m: &ClusterMachine<R, ZkModel>) -> Vec<Property<ClusterMachine<R, ZkModel>>>
where
    R: Reconciler<R = ZookeeperCluster, ExternalRequest = ZkRequest, ExternalResponse = ZkResponse>,
    R::T: Tokens,
{
    let key = m.cr_key();
    let k1 = key.clone();
    let desired = move |s: &StateOf<R, ZkModel>| {
        s.etcd
            .objects
            .get(&k1)
            .is_some_and(|o| o.metadata().deletion_timestamp.is_none())
    };
    let current = move |s: &StateOf<R, ZkModel>| {
        s.etcd.objects.get(&key).is_some_and(|o| {
            typed::<ZookeeperCluster>(o)
                .is_some_and(|cr| current_state_matches(&cr, &s.etcd, &s.external))
        })
    };
    let cr_kind = Kind::of::<ZookeeperCluster>();
    vec![
        Property::stable_leads_to_always(esr::ESR, desired, current),
        Property::always(esr::NO_FOREIGN_WRITES, move |s: &StateOf<R, ZkModel>| {
            !foreign_write_in(&cr_kind, s)
        }),
    ]
}

/// Checks a reconciler of `ZookeeperCluster` within `scope` (as [`esr::verify`], with the
/// predicate that also reads the znode store).
pub fn verify_reconciler<R>(name: &str, scope: Scope, opts: &CheckOptions) -> Report
where
    R: Reconciler<R = ZookeeperCluster, ExternalRequest = ZkRequest, ExternalResponse = ZkResponse>,
    R::T: Tokens,
{
    let spec = spec::<R>(name);
    let m = ClusterMachine::<R, ZkModel>::new(spec.kinds.clone(), scope.clone(), ZkModel);
    let props = properties(&m);
    let mut c = Checker::new(&m).properties(props.clone());
    if let Some(n) = opts.state_limit {
        c = c.state_limit(n);
    }
    if let Some(b) = opts.memory_limit {
        c = c.memory_limit(b);
    }
    if let Some(t) = opts.threads {
        c = c.threads(t);
    }
    if let Some(p) = opts.progress.clone() {
        c = c.progress(move |pr| p(pr));
    }
    let r = c.run();
    let reason = match &r.verdict {
        anvil_checker::Verdict::Incomplete { reason } => Some(reason.clone()),
        _ => None,
    };
    let scope_json = scope.to_json();
    let results = props
        .iter()
        .zip(&r.properties)
        .map(|(p, (name, status))| {
            let (verdict, cx) = match status {
                PropertyStatus::Holds => ("holds", None),
                PropertyStatus::Violated(cx) => ("violated", Some(cx)),
                PropertyStatus::Unknown => ("incomplete", None),
            };
            let validation = cx.map(|cx| anvil_checker::validate(&m, p, cx));
            PropertyReport {
                property: name.clone(),
                formula: p.kind_name().to_string(),
                verdict: verdict.into(),
                complete: r.complete,
                states: r.states,
                transitions: r.transitions,
                depth: r.max_depth,
                seconds: r.seconds,
                peak_memory_bytes: r.peak_memory_bytes,
                scope: scope_json.clone(),
                reason: if verdict == "incomplete" {
                    Some(reason.clone().unwrap_or_else(|| {
                        "the search stopped at another property's violation".into()
                    }))
                } else {
                    None
                },
                counterexample: cx.map(|cx| render_trace(&m, cx)),
                counterexample_validated: validation.as_ref().map(|v| v.is_ok()),
                validation_error: validation.and_then(|v| v.err()),
            }
        })
        .collect();
    Report {
        controller: name.into(),
        scope,
        results,
    }
}

/// `anvil verify zookeeper`.
pub fn verify(opts: &CheckOptions) -> Report {
    verify_reconciler::<ZookeeperController>("zookeeper", default_scope(), opts)
}

/// `anvil verify zookeeper-569` (see [`crate::broken::Zookeeper569`]): the default scope.
pub fn verify_569(opts: &CheckOptions) -> Report {
    verify_reconciler::<crate::broken::Zookeeper569>("zookeeper-569", default_scope(), opts)
}

/// `anvil verify zookeeper-adopt` (see [`crate::broken::ZookeeperAdopt`]): the CR is deleted
/// and re-created once.
pub fn verify_adopt(opts: &CheckOptions) -> Report {
    verify_reconciler::<crate::broken::ZookeeperAdopt>("zookeeper-adopt", recreate_scope(), opts)
}
