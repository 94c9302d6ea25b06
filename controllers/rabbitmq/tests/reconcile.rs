//! The reconciler driven to completion against the cluster model's API server (`Etcd`, no
//! state-space search) and the model's random source: the desired-state predicate holds at the
//! end, a scale-up and a configuration change converge (the pod template's hash changes, the
//! cookie does not), a foreign object is never adopted, and a reconcile holding a stale
//! snapshot of the CR refuses to scale the StatefulSet down. (The exhaustive checks live in
//! `anvil verify rabbitmq`; this is a quick sanity check.)

use anvil_cluster_model::{Etcd, ExternalModel};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_rabbitmq::reconciler::{
    CONFIG_HASH_ANNOTATION, COOKIE_KEY, STEPS, secret_data, stateful_set_replicas,
};
use anvil_rabbitmq::verify::{RandomModel, kinds};
use anvil_rabbitmq::{RabbitmqCluster, RabbitmqController, RandomRequest, current_state_matches};
use anvil_reconciler::chain::ChainState;
use anvil_reconciler::{KubeRequest, Reconciler, Request, Response};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

struct Cluster {
    etcd: Etcd,
    random_requests: Vec<RandomRequest>,
    writes: usize,
}

const NS: &str = "ns";
const NAME: &str = "rabbit";

fn key(kind: Kind, name: &str) -> ObjectRef {
    ObjectRef::new(kind, NS, name)
}

impl Cluster {
    fn new(spec: serde_json::Value) -> Self {
        let mut c = Cluster {
            etcd: Etcd::new(),
            random_requests: Vec::new(),
            writes: 0,
        };
        let obj = DynamicObject::from_json(json!({
            "apiVersion": "rabbitmq.anvil.dev/v1", "kind": "RabbitmqCluster",
            "metadata": {"name": NAME, "namespace": NS}, "spec": spec
        }))
        .unwrap();
        c.etcd.create(&kinds(), &obj).unwrap();
        c
    }

    fn cr(&self) -> RabbitmqCluster {
        self.etcd
            .get_obj(&key(Kind::of::<RabbitmqCluster>(), NAME))
            .unwrap()
            .to_typed()
            .unwrap()
    }

    fn edit(&mut self, spec: serde_json::Value) -> Result<(), String> {
        let cur = self
            .etcd
            .get_obj(&key(Kind::of::<RabbitmqCluster>(), NAME))
            .unwrap();
        let new = cur.modify(|p| {
            p.body.insert("spec".into(), spec);
        });
        self.etcd
            .update(&kinds(), &new)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn get(&self, kind: Kind, name: &str) -> Option<DynamicObject> {
        self.etcd.get_obj(&key(kind, name)).ok()
    }

    /// Runs one reconcile with the CR snapshot `cr`; the final local state.
    fn reconcile_with(&mut self, cr: &RabbitmqCluster) -> ChainState {
        let mut state = RabbitmqController::reconcile_init_state();
        let mut resp = None;
        for _ in 0..200 {
            let (next, req) = RabbitmqController::reconcile_core(cr, resp.take(), state);
            state = next;
            if RabbitmqController::reconcile_done(&state)
                || RabbitmqController::reconcile_error(&state)
            {
                assert!(req.is_none());
                return state;
            }
            resp = match req {
                Some(Request::Kube(k)) => {
                    if k.is_mutating() {
                        self.writes += 1;
                    }
                    Some(Response::Kube(self.etcd.handle(&kinds(), &k)))
                }
                Some(Request::External(q)) => {
                    self.random_requests.push(q.clone());
                    Some(Response::External(RandomModel.handle(
                        &mut (),
                        &q,
                        &self.etcd,
                    )))
                }
                None => None,
            };
        }
        panic!("the reconcile did not end: {state:?}");
    }

    fn reconcile(&mut self) -> ChainState {
        let cr = self.cr();
        self.reconcile_with(&cr)
    }

    fn matches(&self) -> bool {
        current_state_matches(&self.cr(), &self.etcd)
    }
}

fn cookie(c: &Cluster) -> String {
    let s = c.get(Kind::of::<Secret>(), "rabbit-erlang-cookie").unwrap();
    secret_data(&s, COOKIE_KEY).unwrap().to_string()
}

fn hash(c: &Cluster) -> String {
    let sts = c.get(Kind::of::<StatefulSet>(), "rabbit-server").unwrap();
    sts.spec().unwrap()["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn creates_everything_then_scales_and_rolls_on_a_config_change() {
    let mut c = Cluster::new(json!({"replicas": 1}));
    let s = c.reconcile();
    assert!(s.is_done(), "{s:?}");
    // one create per managed object, and the first status
    assert_eq!(c.writes, STEPS.len());
    assert_eq!(c.random_requests.len(), 2, "{:?}", c.random_requests);
    assert!(c.matches());
    let first_cookie = cookie(&c);
    let first_hash = hash(&c);

    // a second reconcile writes nothing and asks for nothing
    c.writes = 0;
    assert!(c.reconcile().is_done());
    assert_eq!(c.writes, 0);
    assert_eq!(c.random_requests.len(), 2);

    // scale 1 -> 3: only the StatefulSet and the server-conf (size hint) change
    c.edit(json!({"replicas": 3})).unwrap();
    assert!(!c.matches());
    assert!(c.reconcile().is_done());
    assert!(c.matches());
    assert_eq!(c.writes, 2);
    let sts = c.get(Kind::of::<StatefulSet>(), "rabbit-server").unwrap();
    assert_eq!(stateful_set_replicas(&sts), 3);
    assert_eq!(hash(&c), first_hash, "a scale-up does not roll the pods");

    // a configuration change rolls the pods, and keeps the cookie
    c.edit(json!({"replicas": 3, "rabbitmqConfig": {"additionalConfig": "channel_max = 1050\n"}}))
        .unwrap();
    assert!(c.reconcile().is_done());
    assert!(c.matches());
    assert_ne!(hash(&c), first_hash);
    assert_eq!(cookie(&c), first_cookie);
    assert_eq!(c.random_requests.len(), 2, "no new random values");

    // the CRD's rules reject a scale-down
    let e = c.edit(json!({"replicas": 1})).unwrap_err();
    assert!(e.contains("replicas cannot be decreased"), "{e}");
}

#[test]
fn a_stale_snapshot_never_scales_the_stateful_set_down() {
    let mut c = Cluster::new(json!({"replicas": 1}));
    assert!(c.reconcile().is_done());
    let stale = c.cr();
    c.edit(json!({"replicas": 3})).unwrap();
    assert!(c.reconcile().is_done());
    c.writes = 0;
    // a reconcile still holding the 1-replica snapshot
    let s = c.reconcile_with(&stale);
    assert!(s.is_error(), "{s:?}");
    assert!(format!("{s:?}").contains("refusing to scale"), "{s:?}");
    let sts = c.get(Kind::of::<StatefulSet>(), "rabbit-server").unwrap();
    assert_eq!(stateful_set_replicas(&sts), 3);
    // it wrote only what the snapshot shares with the CR (the size hint of the server-conf)
    assert!(c.writes <= 1, "{}", c.writes);
    assert!(c.reconcile().is_done());
    assert!(c.matches());
}

#[test]
fn a_deleted_cookie_is_generated_again_but_an_emptied_one_is_not_rotated() {
    let mut c = Cluster::new(json!({"replicas": 1}));
    assert!(c.reconcile().is_done());
    let before = cookie(&c);
    let k = key(Kind::of::<Secret>(), "rabbit-erlang-cookie");
    // emptied by someone: the controller refuses to regenerate it silently
    let emptied = c.etcd.get_obj(&k).unwrap().modify(|p| {
        p.body.insert("data".into(), json!({}));
    });
    c.etcd.update(&kinds(), &emptied).unwrap();
    let s = c.reconcile();
    assert!(
        s.is_error() && format!("{s:?}").contains("lacks its generated data"),
        "{s:?}"
    );
    // deleted: a fresh cookie is generated (a new random request). The model's values only
    // avoid the values *stored* in the cluster, and the old cookie is gone, so the model may
    // hand out the same text again (see `random`'s documentation).
    c.etcd.delete(&kinds(), &k, None).unwrap();
    let asked = c.random_requests.len();
    assert!(c.reconcile().is_done());
    assert!(c.matches());
    assert_eq!(c.random_requests.len(), asked + 1);
    assert!(!before.is_empty());
}

#[test]
fn a_foreign_object_is_never_adopted() {
    let mut c = Cluster::new(json!({"replicas": 1}));
    let foreign = DynamicObject::from_json(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "rabbit-erlang-cookie", "namespace": NS},
        "data": {".erlang.cookie": "c29tZW9uZS1lbHNlcw=="}
    }))
    .unwrap();
    c.etcd.create(&kinds(), &foreign).unwrap();
    let s = c.reconcile();
    assert!(s.is_error(), "{s:?}");
    assert!(
        format!("{s:?}").contains("not controlled by this resource"),
        "{s:?}"
    );
    let stored = c.get(Kind::of::<Secret>(), "rabbit-erlang-cookie").unwrap();
    assert_eq!(stored, c.etcd.get_obj(&foreign.object_ref()).unwrap());
    assert!(stored.metadata().owner_references.is_none());
    assert!(!c.matches());
}

#[test]
fn requests_carry_resource_versions() {
    // every Update the controller sends is conditional (the no-scale-down argument relies
    // on it): run a scale-up and look at the StatefulSet update
    let mut c = Cluster::new(json!({"replicas": 1}));
    assert!(c.reconcile().is_done());
    c.edit(json!({"replicas": 2})).unwrap();
    let cr = c.cr();
    let mut state = RabbitmqController::reconcile_init_state();
    let mut resp = None;
    let mut updates = Vec::new();
    loop {
        let (next, req) = RabbitmqController::reconcile_core(&cr, resp.take(), state);
        state = next;
        let Some(Request::Kube(k)) = req else {
            assert!(state.is_done(), "{state:?}");
            break;
        };
        if let KubeRequest::Update(o) = &k {
            updates.push(o.clone());
        }
        resp = Some(Response::Kube(c.etcd.handle(&kinds(), &k)));
    }
    assert!(!updates.is_empty());
    assert!(updates.iter().all(|o| o.resource_version().is_some()));
}

/// The StatefulSet Update the reconciler `R` sends with the CR snapshot `cr` (its Gets are
/// answered by `c`; the Update is *not* executed): the request a crash can leave in flight.
fn sts_update_of<R>(c: &mut Cluster, cr: &RabbitmqCluster) -> Option<KubeRequest>
where
    R: Reconciler<
            R = RabbitmqCluster,
            T = ChainState,
            ExternalRequest = RandomRequest,
            ExternalResponse = anvil_rabbitmq::RandomResponse,
        >,
{
    let mut state = R::reconcile_init_state();
    let mut resp = None;
    for _ in 0..200 {
        let (next, req) = R::reconcile_core(cr, resp.take(), state);
        state = next;
        match req {
            Some(Request::Kube(k @ KubeRequest::Update(_)))
                if k.key()
                    .is_some_and(|key| key.kind == Kind::of::<StatefulSet>()) =>
            {
                return Some(k);
            }
            Some(Request::Kube(k)) => {
                resp = Some(Response::Kube(c.etcd.handle(&kinds(), &k)));
            }
            Some(Request::External(q)) => {
                resp = Some(Response::External(RandomModel.handle(&mut (), &q, &c.etcd)));
            }
            None if R::reconcile_done(&state) || R::reconcile_error(&state) => return None,
            None => {}
        }
    }
    None
}

/// The mechanism behind `rabbitmq-stale-scale-down`, replayed by hand: a reconcile holding the
/// 1-replica snapshot sends a StatefulSet update, the controller crashes, the CR is scaled to
/// 2 and a new reconcile scales the StatefulSet; then the stale update is executed. The broken
/// variant's update is unconditional and scales the StatefulSet back down; the controller's
/// update carries the resourceVersion it read and fails with Conflict.
#[test]
fn a_stale_update_scales_down_only_when_it_is_unconditional() {
    use anvil_rabbitmq::broken::StaleScaleDown;
    let sts_key = key(Kind::of::<StatefulSet>(), "rabbit-server");
    for broken in [true, false] {
        let mut c = Cluster::new(json!({"replicas": 1}));
        assert!(c.reconcile().is_done());
        let snapshot = c.cr();
        // the controller's update needs a reason to write: an annotation someone removed
        // from the pod template (the broken variant writes on every reconcile anyway)
        let drifted = c.etcd.get_obj(&sts_key).unwrap().modify(|p| {
            p.body["spec"]["template"]["metadata"]["annotations"] = json!({});
        });
        c.etcd.update(&kinds(), &drifted).unwrap();
        let stale = if broken {
            sts_update_of::<StaleScaleDown>(&mut c, &snapshot)
        } else {
            sts_update_of::<RabbitmqController>(&mut c, &snapshot)
        }
        .expect("a StatefulSet update");
        let KubeRequest::Update(o) = &stale else {
            unreachable!()
        };
        assert_eq!(o.resource_version().is_none(), broken);
        // crash; scale-up; a new reconcile writes 2 replicas
        c.edit(json!({"replicas": 2})).unwrap();
        assert!(c.reconcile().is_done());
        assert_eq!(stateful_set_replicas(&c.etcd.get_obj(&sts_key).unwrap()), 2);
        // the stale update arrives
        let r = c.etcd.handle(&kinds(), &stale);
        let replicas = stateful_set_replicas(&c.etcd.get_obj(&sts_key).unwrap());
        if broken {
            assert!(r.error().is_none(), "{r:?}");
            assert_eq!(replicas, 1, "scaled down");
        } else {
            assert_eq!(
                r.error().map(|e| e.reason),
                Some(anvil_reconciler::ErrorReason::Conflict)
            );
            assert_eq!(replicas, 2);
        }
    }
}
