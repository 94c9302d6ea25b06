//! `no_lost_updates` sees a write built from a stale read on every kind, including kinds
//! without `metadata.generation` (ConfigMap, Secret, Service).

mod support;

use anvil_checker::Machine;
use anvil_cluster_model::model::{Action, ClusterMachine, lost_update_in};
use anvil_cluster_model::tokens::{Renaming, Tokens};
use anvil_cluster_model::{Faults, NoExternalModel};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{KubeRequest, KubeResponse, NoExternal, Reconciler, Request, Response};
use serde_json::{Value, json};
use support::*;

/// Reads the object named by the CR's `text` (a kind), then writes it back unconditionally
/// with a label added: correct only if nobody wrote it in between.
struct LabelStamp;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Stamp {
    Init,
    Read,
    Written,
}

impl Tokens for Stamp {
    fn visit(&self, _: &mut dyn FnMut(&str)) {}
    fn rename(&self, _: &Renaming) -> Self {
        self.clone()
    }
}

fn target(text: &str) -> DynamicObject {
    let (api_version, spec) = match text {
        "StatefulSet" => (
            "apps/v1",
            json!({"replicas": 1, "serviceName": "t", "selector": {}}),
        ),
        "Service" => ("v1", json!({"ports": [{"port": 80}]})),
        _ => ("v1", Value::Null),
    };
    let mut body = json!({"apiVersion": api_version, "kind": text,
        "metadata": {"name": "t", "namespace": "default"}});
    match text {
        "ConfigMap" => body["data"] = json!({"k": "v"}),
        "Secret" => body["stringData"] = json!({"k": "v"}),
        _ => body["spec"] = spec,
    }
    DynamicObject::from_json(body).unwrap()
}

impl Reconciler for LabelStamp {
    type R = Greeting;
    type T = Stamp;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn reconcile_init_state() -> Stamp {
        Stamp::Init
    }
    fn reconcile_core(
        cr: &Greeting,
        resp: Option<Response<NoExternal>>,
        t: Stamp,
    ) -> (Stamp, Option<Request<NoExternal>>) {
        match (t, resp) {
            (Stamp::Init, _) => (
                Stamp::Read,
                Some(Request::Kube(KubeRequest::Get(
                    target(&cr.spec.text).object_ref(),
                ))),
            ),
            (Stamp::Read, Some(Response::Kube(KubeResponse::Get(Ok(o))))) => {
                let stamped = o.modify(|p| {
                    p.metadata.resource_version = None;
                    p.metadata
                        .labels
                        .get_or_insert_default()
                        .insert("stamped".into(), "yes".into());
                });
                (
                    Stamp::Written,
                    Some(Request::Kube(KubeRequest::Update(stamped))),
                )
            }
            (t, _) => (t, None),
        }
    }
    fn reconcile_done(t: &Stamp) -> bool {
        *t == Stamp::Written
    }
    fn reconcile_error(_: &Stamp) -> bool {
        false
    }
}

fn check_kind(kind: &str) {
    // unreduced: the response waits for a separate step; reduced: it is processed in the
    // step that delivers it (eager steps), and the Update is in flight at once
    for reduce in [false, true] {
        check_kind_with(kind, reduce);
    }
}

fn check_kind_with(kind: &str, reduce: bool) {
    let mut sc = scope(Faults::default(), 0, 0);
    sc.specs = vec![json!({"text": kind})];
    let m = ClusterMachine::<LabelStamp, NoExternalModel>::new(kinds(), sc, NoExternalModel)
        .with_read_tracking(true)
        .with_reductions(reduce);
    let mut s = m.init_states().remove(0);
    let stored = s.etcd.create(&m.kinds, &target(kind)).unwrap();
    let key: ObjectRef = stored.object_ref();
    s = m.next_state(&s, &Action::UserCreate(0)).unwrap();
    s = m.next_state(&s, &Action::Start(m.cr_key())).unwrap();
    s = m.next_state(&s, &Action::Handle(0)).unwrap();
    if !reduce {
        s = m.next_state(&s, &Action::Continue(m.cr_key())).unwrap();
    }
    assert!(
        matches!(
            &s.network[0].req,
            Request::Kube(KubeRequest::Update(o)) if o.resource_version().is_none()
        ),
        "{kind}: an unconditional Update is in flight"
    );
    assert_eq!(
        s.network[0].basis.as_deref(),
        stored.resource_version(),
        "{kind}: built from the version it read"
    );
    assert!(!lost_update_in(&s), "{kind}: nobody wrote in between");
    // another writer changes the object after the read
    let cur = s.etcd.objects[&key].clone();
    let edited = cur.modify(|p| {
        p.metadata
            .annotations
            .get_or_insert_default()
            .insert("edited-by".into(), "someone-else".into());
    });
    s.etcd.update(&m.kinds, &edited).unwrap();
    assert!(
        lost_update_in(&s),
        "{kind}: the update would overwrite a change its sender never saw"
    );
    assert_eq!(key.kind, Kind::new(key.kind.api_version(), kind));
}

#[test]
fn lost_update_of_a_config_map() {
    check_kind("ConfigMap");
}

#[test]
fn lost_update_of_a_secret() {
    check_kind("Secret");
}

#[test]
fn lost_update_of_a_service() {
    check_kind("Service");
}

#[test]
fn lost_update_of_a_stateful_set() {
    check_kind("StatefulSet");
}
