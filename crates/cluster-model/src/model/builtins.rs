//! Built-in controllers that take time (DESIGN §5): the StatefulSet controller brings pods up
//! (and down) **one replica at a time**, so a desired-state predicate that reads status is
//! checked against every intermediate value, not only the settled one. Pod losses lower the
//! ready count again (see `Action::PodLoss`). The DaemonSet controller runs on a one-node
//! cluster: its single pod becomes ready in one step.

use anvil_objects::DynamicObject;
use serde_json::{Map, Value, json};

const STS_COUNTS: [&str; 5] = [
    "replicas",
    "readyReplicas",
    "availableReplicas",
    "currentReplicas",
    "updatedReplicas",
];

fn count(st: &Map<String, Value>, field: &str) -> i64 {
    st.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// The status a built-in controller writes next for `obj`, or `None` when it manages no
/// such kind or has nothing to do (the status is settled).
pub fn next_status(obj: &DynamicObject) -> Option<Value> {
    if obj.metadata().deletion_timestamp.is_some() {
        return None;
    }
    let generation = obj.metadata().generation.unwrap_or(0);
    let empty = Map::new();
    let st = obj.status().and_then(Value::as_object).unwrap_or(&empty);
    let next = match (obj.kind().api_version(), obj.kind().kind()) {
        ("apps/v1", "StatefulSet") => {
            let want = obj
                .spec()
                .and_then(|s| s.get("replicas"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = count(st, "readyReplicas");
            let step = ready + (want - ready).signum();
            let mut next = st.clone();
            for f in STS_COUNTS {
                next.insert(f.into(), json!(step));
            }
            next.insert("observedGeneration".into(), json!(generation));
            next
        }
        ("apps/v1", "DaemonSet") => {
            let mut next = st.clone();
            for (f, v) in [
                ("currentNumberScheduled", 1),
                ("desiredNumberScheduled", 1),
                ("numberAvailable", 1),
                ("numberMisscheduled", 0),
                ("numberReady", 1),
                ("updatedNumberScheduled", 1),
            ] {
                next.insert(f.into(), json!(v));
            }
            next.insert("observedGeneration".into(), json!(generation));
            next
        }
        _ => return None,
    };
    (Some(&next) != obj.status().and_then(Value::as_object)).then_some(Value::Object(next))
}

/// The status after one pod of a StatefulSet is lost, if it has a ready pod.
pub fn after_pod_loss(obj: &DynamicObject) -> Option<Value> {
    let st = obj.status()?.as_object()?;
    let ready = st.get("readyReplicas")?.as_i64()?;
    if ready <= 0 {
        return None;
    }
    let mut next = st.clone();
    next.insert("readyReplicas".into(), json!(ready - 1));
    next.insert("availableReplicas".into(), json!(ready - 1));
    Some(Value::Object(next))
}

/// What another writer does to `obj` when it updates it: scales a workload by hand
/// (`spec.replicas` + 1), changes the first entry of a ConfigMap's or Secret's `data`, or
/// otherwise adds an annotation. Always a real change of the object.
pub fn scribble(obj: &DynamicObject) -> DynamicObject {
    let is_secret = obj.kind().kind() == "Secret";
    obj.modify(|p| {
        let replicas = p
            .body
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64);
        if let Some(n) = replicas {
            p.body["spec"]["replicas"] = json!(n + 1);
            return;
        }
        if let Some(Value::Object(data)) = p.body.get_mut("data")
            && let Some((_, v)) = data.iter_mut().next()
        {
            *v = match v {
                // base64 of "edited", so the Secret stays valid
                _ if is_secret => json!("ZWRpdGVk"),
                Value::String(s) => json!(format!("{s}-edited")),
                _ => json!("edited"),
            };
            return;
        }
        p.metadata
            .annotations
            .get_or_insert_default()
            .insert("anvil.dev/edited-by".into(), "other-writer".into());
    })
}
