//! Differential test of CRD rules: for every CRD in the repository (demo's `DemoApp`,
//! zookeeper's `ZookeeperCluster`, rabbitmq's `RabbitmqCluster` and the fidelity test CRD
//! `Widget`), generated specs are created and then updated (including changes of fields under
//! `oldSelf` transition rules, type errors, missing required fields, partial specs that rely on
//! the schema's defaults, and for `Widget` status writes) on the real kube-apiserver and on
//! the model's API server with the registry the verifier uses (`anvil_demo::verify::kinds`,
//! `anvil_zookeeper::verify::kinds`, `anvil_rabbitmq::verify::kinds`,
//! `anvil_fidelity::kinds::registry`). Every answer must agree: accepted on both sides, or
//! `Invalid` on both sides with the same list of field errors (same fields, same messages, in
//! any order).
//!
//! `cargo test -p anvil-fidelity --test cel_rules` runs 100 cases per CRD;
//! `ANVIL_FIDELITY_CEL_CASES=n` changes that.

use anvil_cluster_model::crd::FieldError;
use anvil_cluster_model::{Etcd, KindRegistry};
use anvil_fidelity::{Harness, cases, kinds};
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::{ErrorReason, KubeRequest, KubeResponse};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One write after the create.
#[derive(Clone, Debug)]
enum Write {
    /// Update with this spec.
    Spec(Value),
    /// UpdateStatus with this status.
    Status(Value),
}

/// A create and the writes that follow it.
#[derive(Clone, Debug)]
struct Case {
    spec: Value,
    writes: Vec<Write>,
}

/// A CRD under test.
struct Subject {
    name: &'static str,
    kind: Kind,
    kinds: KindRegistry,
    spec: BoxedStrategy<Value>,
    status: Option<BoxedStrategy<Value>>,
}

fn demo_spec() -> BoxedStrategy<Value> {
    let replicas = prop_oneof![
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(10)),
        Just(json!(11)),
        Just(json!("3")),
    ];
    let image = prop_oneof![Just(json!("nginx")), Just(json!("httpd"))];
    (replicas, image, any::<bool>(), 0..8u8)
        .prop_map(|(replicas, image, message, drop)| {
            let mut s = json!({"replicas": replicas, "image": image, "message": "m"});
            if !message {
                s["message"] = json!("other");
            }
            // sometimes a required field is missing
            match drop {
                0 => {
                    s.as_object_mut().unwrap().remove("image");
                }
                1 => {
                    s.as_object_mut().unwrap().remove("replicas");
                }
                _ => {}
            }
            s
        })
        .boxed()
}

fn zookeeper_spec() -> BoxedStrategy<Value> {
    // mostly valid values, so that updates (and the transition rules) are reached
    let replicas = prop_oneof![1 => Just(2), 2 => Just(3), 2 => Just(5)];
    let sync =
        prop_oneof![2 => Just(None), 1 => Just(Some(0)), 2 => Just(Some(1)), 2 => Just(Some(2))];
    let sessions = prop_oneof![
        3 => Just(None),
        3 => Just(Some((4000, 40000))),
        1 => Just(Some((50000, 40000))),
        1 => Just(Some((4000, 3000))),
    ];
    let client = prop_oneof![Just(None), Just(Some(2181)), Just(Some(2182))];
    let storage = prop_oneof![
        3 => Just(None),
        2 => Just(Some("20Gi".to_string())),
        2 => Just(Some("1Gi".to_string())),
        1 => Just(Some("9".repeat(65))),
    ];
    (replicas, sync, sessions, client, storage, any::<bool>())
        .prop_map(|(replicas, sync, sessions, client, storage, tick)| {
            let mut s = json!({"replicas": replicas});
            let mut conf = serde_json::Map::new();
            if let Some(v) = sync {
                conf.insert("syncLimit".into(), json!(v));
            }
            if let Some((min, max)) = sessions {
                conf.insert("minSessionTimeout".into(), json!(min));
                conf.insert("maxSessionTimeout".into(), json!(max));
            }
            if tick {
                conf.insert("tickTime".into(), json!(3000));
            }
            if !conf.is_empty() {
                s["conf"] = Value::Object(conf);
            }
            if let Some(c) = client {
                s["ports"] = json!({"client": c});
            }
            if let Some(st) = storage {
                s["persistence"] = json!({"storageSize": st});
            }
            s
        })
        .boxed()
}

fn rabbitmq_spec() -> BoxedStrategy<Value> {
    let replicas = prop_oneof![1 => Just(-1), 2 => Just(0), 2 => Just(1), 2 => Just(3)];
    let policy = prop_oneof![
        3 => Just(None),
        2 => Just(Some("Parallel")),
        2 => Just(Some("OrderedReady")),
        1 => Just(Some("Sometimes")),
    ];
    let persistence = prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        Just(Some(json!({"storage": "10Gi"}))),
        Just(Some(json!({"storage": "20Gi"}))),
        Just(Some(json!({"storageClassName": "fast"}))),
        Just(Some(json!({"storage": "10Gi", "storageClassName": "slow"}))),
    ];
    (replicas, policy, persistence)
        .prop_map(|(replicas, policy, persistence)| {
            let mut s = json!({"replicas": replicas});
            if let Some(p) = policy {
                s["podManagementPolicy"] = json!(p);
            }
            if let Some(p) = persistence {
                s["persistence"] = p;
            }
            s
        })
        .boxed()
}

fn widget_spec() -> BoxedStrategy<Value> {
    let size = prop_oneof![
        Just(Some(json!(-1))),
        Just(Some(json!(0))),
        Just(Some(json!(5))),
        Just(Some(json!(10))),
        Just(Some(json!(11))),
        Just(Some(json!("x"))),
        Just(None),
    ];
    let mode = prop_oneof![
        Just(Some("fast")),
        Just(Some("slow")),
        Just(Some("fast")),
        Just(None)
    ];
    (size, mode)
        .prop_map(|(size, mode)| {
            let mut s = json!({});
            if let Some(v) = size {
                s["size"] = v;
            }
            if let Some(m) = mode {
                s["mode"] = json!(m);
            }
            s
        })
        .boxed()
}

fn widget_status() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"phase": "A"})),
        Just(json!({"phase": "B", "count": 1})),
        Just(json!({"phase": "C", "count": "many"})),
        Just(json!({"phase": 7})),
    ]
    .boxed()
}

fn case(s: &Subject) -> BoxedStrategy<Case> {
    let write = match &s.status {
        Some(st) => prop_oneof![
            3 => s.spec.clone().prop_map(Write::Spec),
            1 => st.clone().prop_map(Write::Status),
        ]
        .boxed(),
        None => s.spec.clone().prop_map(Write::Spec).boxed(),
    };
    (s.spec.clone(), proptest::collection::vec(write, 1..=3))
        .prop_map(|(spec, writes)| Case { spec, writes })
        .boxed()
}

/// Verdict of one answer: `Ok`, or the error reason and message.
fn verdict(r: &KubeResponse) -> Result<(), (ErrorReason, String)> {
    match r.error() {
        None => Ok(()),
        Some(e) => Err((e.reason, e.message.clone())),
    }
}

/// Compares one pair of answers; `errors` are the model's field errors for the write.
fn compare(
    what: &str,
    m: &KubeResponse,
    r: &KubeResponse,
    errors: &[FieldError],
) -> Result<(), String> {
    if std::env::var_os("ANVIL_FIDELITY_VERBOSE").is_some() {
        eprintln!(
            "{what}\n  model: {:?}\n  real:  {:?}",
            verdict(m),
            verdict(r)
        );
    }
    match (verdict(m), verdict(r)) {
        (Ok(()), Ok(())) => Ok(()),
        (Err((mr, mm)), Err((rr, rm))) => {
            if mr != rr {
                return Err(format!(
                    "{what}: reasons differ: model {mr:?} {mm:?}, real {rr:?} {rm:?}"
                ));
            }
            // the same field errors, in any order: each of the model's errors appears in the
            // real message, and the lists have the same length
            let list = rm
                .split_once(" is invalid: ")
                .map_or(rm.as_str(), |(_, l)| l);
            for e in errors {
                let text = e.to_string();
                if !list.contains(&text) {
                    return Err(format!(
                        "{what}: the model's error {text:?} is not in the real answer {rm:?} \
                         (model: {mm:?})"
                    ));
                }
            }
            if list.len() != mm.len() {
                return Err(format!(
                    "{what}: the real server lists other errors: {rm:?} (model: {mm:?})"
                ));
            }
            Ok(())
        }
        (m, r) => Err(format!("{what}: verdicts differ: model {m:?}, real {r:?}")),
    }
}

fn make(kind: &Kind, ns: &str, name: &str, spec: &Value) -> DynamicObject {
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), name.into());
    kinds::object(kind, ns, meta, vec![("spec", spec.clone())])
}

fn with(o: &DynamicObject, field: &str, v: &Value) -> DynamicObject {
    o.modify(|p| {
        p.body.insert(field.into(), v.clone());
    })
}

#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    rejected: BTreeMap<&'static str, usize>,
}

fn run_case(
    h: &Harness,
    s: &Subject,
    ns: &str,
    name: &str,
    c: &Case,
    tally: &Mutex<Tally>,
) -> Result<(), String> {
    let mut etcd = Etcd::new();
    let real = |req: &KubeRequest| h.runtime.block_on(anvil_shim::execute(&h.client, req));
    let rules = s
        .kinds
        .info(&s.kind)
        .crd
        .clone()
        .expect("registered from the CRD");
    let obj = make(&s.kind, ns, name, &c.spec);
    let errors = rules.errors(&obj, None);
    let m = etcd.handle(&s.kinds, &KubeRequest::Create(obj.clone()));
    let r = real(&KubeRequest::Create(obj));
    let count = |m: &KubeResponse, what: &'static str| {
        let mut t = tally.lock().unwrap();
        match m.error() {
            None => t.accepted += 1,
            Some(_) => *t.rejected.entry(what).or_default() += 1,
        }
    };
    compare(&format!("create {}", c.spec), &m, &r, &errors)?;
    count(&m, "create");
    let (Some(mut mo), Some(mut ro)) = (m.object().cloned(), r.object().cloned()) else {
        return Ok(());
    };
    for w in &c.writes {
        let (mreq, rreq, what, label) = match w {
            Write::Spec(spec) => (
                KubeRequest::Update(with(&mo, "spec", spec)),
                KubeRequest::Update(with(&ro, "spec", spec)),
                format!("update to spec {spec}"),
                "update",
            ),
            Write::Status(st) => (
                KubeRequest::UpdateStatus(with(&mo, "status", st)),
                KubeRequest::UpdateStatus(with(&ro, "status", st)),
                format!("status update to {st}"),
                "update status",
            ),
        };
        let errors = match &mreq {
            KubeRequest::Update(o) | KubeRequest::UpdateStatus(o) => rules.errors(o, Some(&mo)),
            _ => Vec::new(),
        };
        let m = etcd.handle(&s.kinds, &mreq);
        let r = real(&rreq);
        compare(&what, &m, &r, &errors)?;
        count(&m, label);
        if let (Some(m), Some(r)) = (m.object(), r.object()) {
            mo = m.clone();
            ro = r.clone();
        }
    }
    Ok(())
}

#[test]
fn model_evaluates_crd_rules_as_the_real_api_server() {
    let h = Harness::get();
    anvil_shim::register_resource::<anvil_demo::DemoApp>();
    anvil_shim::register_resource::<anvil_zookeeper::ZookeeperCluster>();
    anvil_shim::register_resource::<anvil_rabbitmq::RabbitmqCluster>();
    h.runtime.block_on(async {
        for crd in [
            anvil_demo::crd(),
            anvil_zookeeper::crd(),
            anvil_rabbitmq::crd(),
        ] {
            h.control_plane
                .apply_crd(crd)
                .await
                .unwrap_or_else(|e| panic!("cannot apply a CRD: {e}"));
        }
    });
    let subjects = [
        Subject {
            name: "DemoApp",
            kind: Kind::new("demo.anvil.dev/v1", "DemoApp"),
            kinds: anvil_demo::verify::kinds(),
            spec: demo_spec(),
            status: None,
        },
        Subject {
            name: "ZookeeperCluster",
            kind: Kind::new("zookeeper.anvil.dev/v1", "ZookeeperCluster"),
            kinds: anvil_zookeeper::verify::kinds(),
            spec: zookeeper_spec(),
            status: None,
        },
        Subject {
            name: "RabbitmqCluster",
            kind: Kind::new("rabbitmq.anvil.dev/v1", "RabbitmqCluster"),
            kinds: anvil_rabbitmq::verify::kinds(),
            spec: rabbitmq_spec(),
            status: None,
        },
        Subject {
            name: "Widget",
            kind: kinds::widget_kind(),
            kinds: kinds::registry(),
            spec: widget_spec(),
            status: Some(widget_status()),
        },
    ];
    let n = cases("ANVIL_FIDELITY_CEL_CASES", 100);
    for s in &subjects {
        let ns = h.namespace(&format!("cel-{}", s.name));
        let counter = AtomicUsize::new(0);
        let tally = Mutex::new(Tally::default());
        let mut runner = TestRunner::new(Config {
            cases: n,
            max_shrink_iters: 200,
            failure_persistence: None,
            ..Config::default()
        });
        let began = std::time::Instant::now();
        let result = runner.run(&case(s), |c| {
            let name = format!("c{}", counter.fetch_add(1, Ordering::Relaxed));
            run_case(h, s, &ns, &name, &c, &tally).map_err(TestCaseError::fail)
        });
        let t = tally.into_inner().unwrap();
        eprintln!(
            "{}: {} cases in {:?}: {} writes accepted on both sides, rejected (Invalid) on both: {:?}",
            s.name,
            counter.load(Ordering::Relaxed),
            began.elapsed(),
            t.accepted,
            t.rejected
        );
        if let Err(e) = result {
            panic!("{}: {e}", s.name);
        }
        assert!(
            t.accepted > 0 && !t.rejected.is_empty(),
            "{}: {t:?}",
            s.name
        );
    }
}
