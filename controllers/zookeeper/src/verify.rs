//! The ZooKeeper controller's verification scope: the `ZookeeperCluster` kind as the cluster
//! model's API server sees it (its CRD, whose schema and CEL rules the model evaluates), the
//! model of the ZooKeeper API ([`ZkModel`], the cluster model's external-system hook), the
//! default scope, and `verify`.
//!
//! ESR here reads `[] desired_state_is(cr) ~> [] current_state_matches(cr, etcd, znodes)`: the
//! desired-state predicate also looks at the znode store, which is the external system's state
//! (`state.external`), not part of etcd; the harness's [`ControllerSpec::matches`] sees both.

use crate::desired::current_state_matches;
use crate::reconciler::{ZookeeperController, client_service_name};
use crate::resource::{ZookeeperCluster, ZookeeperClusterSpec, crd};
use crate::zk::{ZkRequest, ZkResponse, ZnodeStore};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec, Report};
use anvil_cluster_model::{Etcd, ExternalModel, Faults, KindInfo, KindRegistry, Scope, Tokens};
use anvil_objects::{Kind, ObjectRef};
use anvil_reconciler::Reconciler;
use k8s_openapi::api::core::v1::Service;
use serde_json::json;
use std::sync::Arc;

/// The kinds the model's API server knows: the built-ins and `ZookeeperCluster`, validated by
/// its CRD's schema (with its defaults) and CEL rules (including the `oldSelf` transition
/// rules).
pub fn kinds() -> KindRegistry {
    let crd = serde_json::to_value(crd()).expect("the CRD serialises");
    let info = KindInfo::custom_resource_from_crd(&crd)
        .unwrap_or_else(|e| panic!("the ZookeeperCluster CRD: {e}"));
    KindRegistry::builtin().with(info)
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
/// 3 replicas; a scale to 5, and a configuration change on its own (`tickTime` 2000 -> 3000,
/// which changes `zoo.cfg` and so rolls the pods).
pub fn default_specs() -> Vec<serde_json::Value> {
    vec![
        json!({"replicas": 3}),
        json!({"replicas": 5}),
        json!({"replicas": 3, "conf": {"tickTime": 3000}}),
    ]
}

/// The default scope of `anvil verify zookeeper`: a `ZookeeperCluster` created with 3
/// replicas and edited at most twice among [`default_specs`] (a scale and a configuration
/// change as separate edits, in either order, or one of them and back: A -> B -> A), at any
/// point of reconciliation; controller crashes and request drops (the ZooKeeper API's
/// transient failures among them) until each is disabled; at most 2 stale requests of earlier
/// controller lives in flight. 372,405 states, about 11 s in a release build on two cores
/// (with an update by another writer too: 5,431,708 states, about 3 minutes; BENCHMARKS.md,
/// "Faults without switches").
pub fn default_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "zk".into(),
        crs: 1,
        specs: default_specs(),
        max_edits: 2,
        max_deletes: 0,
        faults: Faults {
            crash: true,
            drop: true,
            other_deletes: 0,
            pod_losses: 0,
            ..Default::default()
        },
        max_stale_requests: 2,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: Vec::new(),
    }
}

/// The scope that exposes `zookeeper-adopt`: the CR is deleted and re-created once with the
/// same name (no edits, no faults).
pub fn recreate_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "zk".into(),
        crs: 1,
        specs: vec![json!({"replicas": 3})],
        max_edits: 0,
        max_deletes: 1,
        faults: Faults::default(),
        max_stale_requests: 1,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: Vec::new(),
    }
}

/// The scope of `anvil verify zookeeper-recreate`: [`recreate_scope`] (the CR deleted and
/// re-created once with the same name) with controller crashes, request drops and a stale
/// request in flight, so the old CR's reconcile, the garbage collector's deletes of its
/// children and the new CR's reconcile race under faults (249,113 states, about 9 s in a
/// release build on two cores; BENCHMARKS.md, "Faults without switches").
pub fn recreate_faults_scope() -> Scope {
    let mut s = recreate_scope();
    s.faults = Faults {
        crash: true,
        drop: true,
        ..Default::default()
    };
    s.max_stale_requests = 1;
    s
}

/// The harness description of a reconciler of `ZookeeperCluster` (the controller or a broken
/// variant): ESR with the two-view predicate (etcd and the znode store) and the
/// no-foreign-writes invariant.
pub fn spec<R>(name: &str) -> ControllerSpec<R, ZkModel>
where
    R: Reconciler<R = ZookeeperCluster, ExternalRequest = ZkRequest, ExternalResponse = ZkResponse>,
    R::T: Tokens,
{
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: ZkModel,
        matches: Arc::new(|cr: &ZookeeperCluster, etcd: &Etcd, znodes: &ZnodeStore| {
            current_state_matches(cr, etcd, znodes)
        }),
        invariants: Vec::new(),
        step_invariants: Vec::new(),
        no_foreign_writes: true,
        no_lost_updates: true,
    }
}

/// Checks a reconciler of `ZookeeperCluster` within `scope`.
pub fn verify_reconciler<R>(name: &str, scope: Scope, opts: &CheckOptions) -> Report
where
    R: Reconciler<R = ZookeeperCluster, ExternalRequest = ZkRequest, ExternalResponse = ZkResponse>,
    R::T: Tokens,
{
    esr::verify(spec::<R>(name), scope, opts)
}

/// `anvil verify zookeeper`.
pub fn verify(opts: &CheckOptions) -> Report {
    verify_reconciler::<ZookeeperController>("zookeeper", default_scope(), opts)
}

/// The scope of `anvil verify zookeeper-569`: the default scope with one edit (the bug needs a
/// scale, and a crash between two writes, not a second edit).
pub fn scope_569() -> Scope {
    let mut s = default_scope();
    s.max_edits = 1;
    s
}

/// `anvil verify zookeeper-569` (see [`crate::broken::Zookeeper569`]): [`scope_569`].
pub fn verify_569(opts: &CheckOptions) -> Report {
    verify_reconciler::<crate::broken::Zookeeper569>("zookeeper-569", scope_569(), opts)
}

/// `anvil verify zookeeper-adopt` (see [`crate::broken::ZookeeperAdopt`]): the CR is deleted
/// and re-created once.
pub fn verify_adopt(opts: &CheckOptions) -> Report {
    verify_reconciler::<crate::broken::ZookeeperAdopt>("zookeeper-adopt", recreate_scope(), opts)
}
