//! The Greeting controller (a ConfigMap and a Secret that copies the ConfigMap's
//! resourceVersion) and helpers shared by the cluster-model tests.
#![allow(dead_code)]

use anvil_checker::Machine;
use anvil_cluster_model::esr::{self, ControllerSpec};
use anvil_cluster_model::model::{ClusterMachine, StateOf};
use anvil_cluster_model::{Etcd, Faults, KindInfo, KindRegistry, NoExternalModel, Scope};
use anvil_objects::{DynamicObject, Kind, ObjectRef, is_controlled_by};
use anvil_reconciler::NoExternal;
use anvil_reconciler::chain::{self, Adopt, ChainReconciler, Facts, ManagedObject, Step};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashSet, VecDeque};

#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "test.anvil.dev",
    version = "v1",
    kind = "Greeting",
    namespaced
)]
pub struct GreetingSpec {
    pub text: String,
}

pub fn name(cr: &Greeting) -> String {
    cr.metadata.name.clone().unwrap_or_default()
}

pub fn config_map(cr: &Greeting, _: &Facts) -> Result<DynamicObject, String> {
    let cm = ConfigMap {
        data: Some([("text".to_string(), cr.spec.text.clone())].into()),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).map_err(|e| e.to_string())
}

pub fn record_rv(o: &DynamicObject, f: &mut Facts) {
    if let Some(rv) = o.resource_version() {
        f.insert("cm-rv", rv.to_string());
    }
}

// A Secret that carries a copy of the ConfigMap's resourceVersion: tokens copied into
// annotations and local state must be renamed consistently.
pub fn secret(_: &Greeting, f: &Facts) -> Result<DynamicObject, String> {
    let rv = f.get("cm-rv").ok_or("no rv")?;
    let mut s = Secret::default();
    s.metadata.annotations = Some([("cm-rv".to_string(), rv.clone())].into());
    DynamicObject::from_typed(&s).map_err(|e| e.to_string())
}

pub const STEPS: &[Step<Greeting, NoExternal, NoExternal>] = &[
    Step::Object(ManagedObject {
        label: "cm",
        kind: Kind::of::<ConfigMap>,
        name,
        desired: config_map,
        merge: chain::merge_desired,
        record: record_rv,
        adopt: Adopt::Never,
    }),
    Step::Object(ManagedObject {
        label: "secret",
        kind: Kind::of::<Secret>,
        name,
        desired: secret,
        merge: chain::merge_desired,
        record: chain::record_nothing,
        adopt: Adopt::Never,
    }),
];

pub struct G;
impl ChainReconciler for G {
    type R = Greeting;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn steps() -> &'static [Step<Greeting, NoExternal, NoExternal>] {
        STEPS
    }
}

pub fn kinds() -> KindRegistry {
    KindRegistry::builtin().with(KindInfo::custom_resource(Kind::of::<Greeting>()))
}

pub fn scope(faults: Faults, edits: u8, deletes: u8) -> Scope {
    Scope {
        namespace: "default".into(),
        name: "g".into(),
        crs: 1,
        specs: vec![json!({"text": "a"}), json!({"text": "b"})],
        max_edits: edits,
        max_deletes: deletes,
        faults,
        max_stale_requests: 1,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: Vec::new(),
    }
}

pub fn all_faults() -> Faults {
    Faults {
        crash: true,
        drop: true,
        other_deletes: 1,
        ..Default::default()
    }
}

pub fn matches(cr: &Greeting, etcd: &Etcd) -> bool {
    let Some(owner) = chain::owner_of(cr) else {
        return false;
    };
    let ns = "default";
    let cm = etcd
        .objects
        .get(&ObjectRef::new(Kind::of::<ConfigMap>(), ns, name(cr)));
    let sec = etcd
        .objects
        .get(&ObjectRef::new(Kind::of::<Secret>(), ns, name(cr)));
    match (cm, sec) {
        (Some(cm), Some(sec)) => {
            is_controlled_by(cm, &owner)
                && is_controlled_by(sec, &owner)
                && cm.body()["data"]["text"] == json!(cr.spec.text)
                && sec
                    .metadata()
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("cm-rv"))
                    .map(String::as_str)
                    == cm.resource_version()
        }
        _ => false,
    }
}

pub fn spec() -> ControllerSpec<G, NoExternalModel> {
    ControllerSpec {
        name: "greeting".into(),
        kinds: kinds(),
        external: NoExternalModel,
        matches: esr::matches_etcd(matches),
        invariants: Vec::new(),
        step_invariants: Vec::new(),
        no_foreign_writes: true,
        no_lost_updates: true,
    }
}

pub type M = ClusterMachine<G, NoExternalModel>;
pub type S = StateOf<G, NoExternalModel>;

pub fn machine(sc: Scope) -> M {
    ClusterMachine::new(kinds(), sc, NoExternalModel)
}

/// Every reachable canonical state (BFS).
pub fn reachable(m: &M, limit: usize) -> Vec<S> {
    let mut seen = HashSet::new();
    let mut q = VecDeque::new();
    let mut out = Vec::new();
    for s in m.init_states() {
        let s = m.representative(s);
        if seen.insert(s.clone()) {
            q.push_back(s);
        }
    }
    let mut acts = Vec::new();
    while let Some(s) = q.pop_front() {
        out.push(s.clone());
        if out.len() >= limit {
            break;
        }
        acts.clear();
        m.actions(&s, &mut acts);
        for a in &acts {
            if let Some(n) = m.next_state(&s, a) {
                let n = m.representative(n);
                if seen.insert(n.clone()) {
                    q.push_back(n);
                }
            }
        }
    }
    out
}
