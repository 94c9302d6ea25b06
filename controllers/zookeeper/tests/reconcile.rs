//! The reconciler driven to completion against a minimal in-memory API server and the
//! znode-store model: the desired-state predicate holds at the end, a scale and a conf change
//! converge, and a foreign StatefulSet is never adopted. (The exhaustive checks live in
//! `anvil verify zookeeper`; this is a quick sanity check that needs no model.)

use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{
    ApiError, ErrorReason, KubeRequest, KubeResponse, Reconciler, Request, Response,
};
use anvil_zookeeper::{
    ZkRequest, ZnodeStore, ZookeeperCluster, ZookeeperClusterSpec, ZookeeperController,
    current_state_matches,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use std::collections::BTreeMap;

#[derive(Default)]
struct Fake {
    objects: BTreeMap<ObjectRef, DynamicObject>,
    rv: u64,
    znodes: ZnodeStore,
    zk_requests: Vec<ZkRequest>,
}

fn err(reason: ErrorReason) -> ApiError {
    ApiError {
        reason,
        message: format!("{reason:?}"),
    }
}

impl Fake {
    fn bump(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn kube(&mut self, req: KubeRequest) -> KubeResponse {
        match req {
            KubeRequest::Get(key) => KubeResponse::Get(
                self.objects
                    .get(&key)
                    .cloned()
                    .ok_or(err(ErrorReason::NotFound)),
            ),
            KubeRequest::Create(obj) => {
                let key = obj.object_ref();
                if self.objects.contains_key(&key) {
                    return KubeResponse::Create(Err(err(ErrorReason::AlreadyExists)));
                }
                let rv = self.bump();
                let stored = obj.modify(|p| {
                    p.metadata.resource_version = Some(rv.clone());
                    p.metadata.uid = Some(format!("00000000-0000-4000-8000-{rv:0>12}"));
                });
                self.objects.insert(key, stored.clone());
                KubeResponse::Create(Ok(stored))
            }
            KubeRequest::Update(obj) | KubeRequest::UpdateStatus(obj) => {
                let key = obj.object_ref();
                let Some(cur) = self.objects.get(&key).cloned() else {
                    return KubeResponse::Update(Err(err(ErrorReason::NotFound)));
                };
                if obj.resource_version() != cur.resource_version() {
                    return KubeResponse::Update(Err(err(ErrorReason::Conflict)));
                }
                let rv = self.bump();
                let stored = obj.modify(|p| p.metadata.resource_version = Some(rv));
                self.objects.insert(key, stored.clone());
                KubeResponse::Update(Ok(stored))
            }
            other => panic!("unexpected request {other:?}"),
        }
    }

    fn create_cr(&mut self, spec: ZookeeperClusterSpec) -> ZookeeperCluster {
        let mut cr = ZookeeperCluster::new("zk", spec);
        cr.metadata.namespace = Some("ns".into());
        let obj = DynamicObject::from_typed(&cr).unwrap();
        let KubeResponse::Create(Ok(stored)) = self.kube(KubeRequest::Create(obj)) else {
            panic!()
        };
        stored.to_typed().unwrap()
    }

    fn cr(&self) -> ZookeeperCluster {
        let key = ObjectRef::new(Kind::of::<ZookeeperCluster>(), "ns", "zk");
        self.objects[&key].to_typed().unwrap()
    }

    /// Runs one reconcile; true when it ended done.
    fn reconcile(&mut self) -> bool {
        let cr = self.cr();
        let mut state = ZookeeperController::reconcile_init_state();
        let mut resp = None;
        for _ in 0..100 {
            let (next, req) = ZookeeperController::reconcile_core(&cr, resp.take(), state);
            state = next;
            if ZookeeperController::reconcile_done(&state) {
                return true;
            }
            if ZookeeperController::reconcile_error(&state) {
                eprintln!("reconcile error: {state:?}");
                return false;
            }
            resp = match req {
                Some(Request::Kube(k)) => {
                    // UpdateStatus answers with an UpdateStatus response.
                    let is_status = matches!(k, KubeRequest::UpdateStatus(_));
                    match self.kube(k) {
                        KubeResponse::Update(r) if is_status => {
                            Some(Response::Kube(KubeResponse::UpdateStatus(r)))
                        }
                        r => Some(Response::Kube(r)),
                    }
                }
                Some(Request::External(z)) => {
                    self.zk_requests.push(z.clone());
                    Some(Response::External(self.znodes.handle(&z)))
                }
                None => None,
            };
        }
        panic!("reconcile did not end");
    }

    fn edit(&mut self, f: impl FnOnce(&mut ZookeeperClusterSpec)) {
        let mut cr = self.cr();
        f(&mut cr.spec);
        let obj = DynamicObject::from_typed(&cr).unwrap();
        assert!(self.kube(KubeRequest::Update(obj)).error().is_none());
    }

    fn matches(&self) -> bool {
        current_state_matches(&self.cr(), &self.objects, &self.znodes)
    }
}

#[test]
fn converges_creates_scales_and_rolls_on_conf_change() {
    let mut api = Fake::default();
    api.create_cr(ZookeeperClusterSpec::default());
    assert!(!api.matches());
    assert!(api.reconcile());
    assert!(api.matches(), "{:#?}", api.objects.keys());
    assert_eq!(
        api.objects.len(),
        6,
        "CR + 3 Services + ConfigMap + StatefulSet"
    );
    assert!(api.reconcile(), "a second reconcile changes nothing");
    assert!(api.matches());

    api.edit(|s| s.replicas = 5);
    assert!(!api.matches());
    assert!(api.reconcile());
    assert!(api.matches());
    assert_eq!(
        api.znodes.ensembles[&("ns".to_string(), "zk".to_string())]["/zookeeper-operator/zk"],
        "CLUSTER_SIZE=5"
    );

    let sts_key = ObjectRef::new(Kind::of::<StatefulSet>(), "ns", "zk");
    let annotation = |api: &Fake| {
        api.objects[&sts_key]
            .spec()
            .unwrap()
            .pointer("/template/metadata/annotations/zookeeper.anvil.dev~1config-version")
            .cloned()
    };
    let before = annotation(&api);
    api.edit(|s| s.conf.tick_time = 3000);
    assert!(!api.matches());
    assert!(api.reconcile());
    assert!(api.matches());
    assert_ne!(annotation(&api), before, "a conf change rolls the pods");
}

#[test]
fn znode_is_written_before_the_stateful_set_is_created() {
    let mut api = Fake::default();
    api.create_cr(ZookeeperClusterSpec::default());
    api.reconcile();
    assert_eq!(api.zk_requests.len(), 1);
    // The znode was written while the StatefulSet did not exist yet: the StatefulSet has a
    // higher resourceVersion than any object created before the znode write.
    let sts_rv: u64 = api.objects[&ObjectRef::new(Kind::of::<StatefulSet>(), "ns", "zk")]
        .resource_version()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        sts_rv, 6,
        "StatefulSet created after CR, 3 Services and ConfigMap"
    );
}

#[test]
fn a_foreign_stateful_set_is_never_adopted() {
    let mut api = Fake::default();
    api.create_cr(ZookeeperClusterSpec::default());
    let foreign = DynamicObject::named(Kind::of::<StatefulSet>(), "ns", "zk");
    api.kube(KubeRequest::Create(foreign.clone()));
    assert!(!api.reconcile());
    let stored = &api.objects[&foreign.object_ref()];
    assert!(
        stored.spec().is_none(),
        "the foreign StatefulSet was not touched"
    );
    assert!(!api.matches());
}
