//! Deliberately broken variants of the ZooKeeper controller, each caught by `anvil verify`.
//!
//! * [`Zookeeper569`] (`zookeeper-569`): a port of the logic behind Pravega zookeeper-operator
//!   issue #569. The cluster-size znode is written in a step *after* the StatefulSet, and only
//!   when that reconcile has just written (created or resized) the StatefulSet. A crash
//!   between the StatefulSet write and the znode write loses the znode write for good: every
//!   later reconcile finds the StatefulSet already as desired, skips the znode step, and the
//!   znode never holds the size (ESR is violated; in a real ensemble the servers wait forever
//!   for `CLUSTER_SIZE`).
//! * [`ZookeeperAdopt`] (`zookeeper-adopt`): updates an existing StatefulSet without checking
//!   who controls it. When the CR is deleted and re-created with the same name before the
//!   garbage collector has removed the old StatefulSet, the new CR's reconcile writes the old
//!   CR's StatefulSet (the no-foreign-writes invariant is violated).

use crate::reconciler::{
    ADMIN_SERVER_SERVICE, CLIENT_SERVICE, CONFIG_MAP, HEADLESS_SERVICE, STATEFUL_SET, STATUS,
    STEPS, ZNODE, ZkStep,
};
use crate::resource::ZookeeperCluster;
use crate::zk::{ZkRequest, ZkResponse};
use anvil_reconciler::chain::{
    self, Adopt, ChainReconciler, ChainState, ManagedObject, Phase, Step,
};
use anvil_reconciler::{KubeResponse, Request, Response};

/// Fact of [`Zookeeper569`]: this reconcile wrote the StatefulSet.
pub const FACT_STS_WRITTEN: &str = "statefulset-written";

/// The steps of [`Zookeeper569`]: the znode step comes after the StatefulSet.
pub const STEPS_569: &[ZkStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::Object(ADMIN_SERVER_SERVICE),
    Step::Object(CONFIG_MAP),
    Step::Object(STATEFUL_SET),
    Step::External(ZNODE),
    Step::Status(STATUS),
];
const STS_569: usize = 4;
const ZNODE_569: usize = 5;

/// `zookeeper-569`: the znode is written only right after the StatefulSet was written.
pub struct Zookeeper569;

impl ChainReconciler for Zookeeper569 {
    type R = ZookeeperCluster;
    type ExternalRequest = ZkRequest;
    type ExternalResponse = ZkResponse;

    fn steps() -> &'static [ZkStep] {
        STEPS_569
    }

    fn reconcile_step(
        cr: &ZookeeperCluster,
        resp: Option<Response<ZkResponse>>,
        mut state: ChainState,
    ) -> (ChainState, Option<Request<ZkRequest>>) {
        let wrote_sts = state.step == STS_569
            && matches!(state.phase, Phase::AwaitCreate | Phase::AwaitUpdate)
            && matches!(
                &resp,
                Some(Response::Kube(
                    KubeResponse::Create(Ok(_)) | KubeResponse::Update(Ok(_))
                ))
            );
        if wrote_sts {
            state.facts.insert(FACT_STS_WRITTEN, "true".into());
        }
        let (mut s, req) = chain::run_step(STEPS_569, cr, resp, state);
        if s.step == ZNODE_569
            && s.phase == Phase::AwaitExternal
            && !s.facts.contains_key(FACT_STS_WRITTEN)
        {
            // "The StatefulSet already exists, so its znode was written when it was created."
            s.step += 1;
            s.phase = Phase::Start;
            return chain::run_step(STEPS_569, cr, None, s);
        }
        (s, req)
    }

    fn validate(cr: &ZookeeperCluster) -> Result<(), String> {
        crate::resource::validate_spec(&cr.spec)
    }
}

/// The StatefulSet step of [`ZookeeperAdopt`]: updates whatever StatefulSet has the name.
pub const ADOPTING_STATEFUL_SET: ManagedObject<ZookeeperCluster> = ManagedObject {
    adopt: Adopt::Always,
    ..STATEFUL_SET
};

/// The steps of [`ZookeeperAdopt`].
pub const STEPS_ADOPT: &[ZkStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::Object(ADMIN_SERVER_SERVICE),
    Step::Object(CONFIG_MAP),
    Step::External(ZNODE),
    Step::Object(ADOPTING_STATEFUL_SET),
    Step::Status(STATUS),
];

/// `zookeeper-adopt`: the StatefulSet step never checks the owner.
pub struct ZookeeperAdopt;

impl ChainReconciler for ZookeeperAdopt {
    type R = ZookeeperCluster;
    type ExternalRequest = ZkRequest;
    type ExternalResponse = ZkResponse;

    fn steps() -> &'static [ZkStep] {
        STEPS_ADOPT
    }

    fn validate(cr: &ZookeeperCluster) -> Result<(), String> {
        crate::resource::validate_spec(&cr.spec)
    }
}

// Both variants differ from the controller in one place only.
const _: () = assert!(STEPS.len() == STEPS_569.len() && STEPS.len() == STEPS_ADOPT.len());
