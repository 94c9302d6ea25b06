//! The demo controller's verification scope: the `DemoApp` kind as the cluster model's API
//! server sees it (its CRD, whose schema and CEL rules the model evaluates), the default scope,
//! and `verify`.

use crate::desired::current_state_matches;
use crate::reconciler::DemoController;
use crate::resource::{DemoApp, crd};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec, Report};
use anvil_cluster_model::{Etcd, Faults, KindInfo, KindRegistry, NoExternalModel, Scope, Tokens};
use anvil_reconciler::{NoExternal, Reconciler};
use serde_json::json;

/// The kinds the model's API server knows: the built-ins and `DemoApp`, validated by its CRD's
/// schema and CEL rules (including the `oldSelf` transition rule).
pub fn kinds() -> KindRegistry {
    let crd = serde_json::to_value(crd()).expect("the CRD serialises");
    let info =
        KindInfo::custom_resource_from_crd(&crd).unwrap_or_else(|e| panic!("the DemoApp CRD: {e}"));
    KindRegistry::builtin().with(info)
}

/// The default scope of `anvil verify demo`: a `DemoApp` created with one replica and edited
/// up to twice among a scale (2 replicas) and a new message (which changes the ConfigMap and so
/// the StatefulSet's pod template), as separate edits in either order or one of them and back
/// (A -> B -> A); controller crashes, transient request failures (every error the shim can
/// surface), applied-then-failed requests, up to two stale requests in flight, and one update
/// of a managed object by another writer (144,721 states, about 4 s in a release build on
/// two cores). Deletion and re-creation is checked in [`recreate_scope`] (together with this
/// scope, `--deletes 1`, all hold at 11,054,756 states, about 5 minutes and 7.0 GiB; see
/// BENCHMARKS.md, "Faults without switches").
pub fn default_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "demo".into(),
        crs: 1,
        specs: vec![
            json!({"replicas": 1, "image": "nginx", "message": "hello"}),
            json!({"replicas": 2, "image": "nginx", "message": "hello"}),
            json!({"replicas": 1, "image": "nginx", "message": "bye"}),
        ],
        max_edits: 2,
        max_deletes: 0,
        faults: Faults {
            crash: true,
            drop: true,
            transient: true,
            lost_response: true,
            other_updates: 1,
            ..Default::default()
        },
        max_stale_requests: 2,
        max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: Vec::new(),
    }
}

/// The scope of `anvil verify demo-recreate`: the `DemoApp` deleted and re-created once with
/// the same name, under the default scope's faults (controller crashes, every transient
/// failure, applied-then-failed requests, up to two stale requests, one update of a managed
/// object by another writer), without edits (100,725 states, about 3 s in a release build on
/// two cores; with the edits too it is the wide scope: 11,054,756 states, about 5
/// minutes).
pub fn recreate_scope() -> Scope {
    let mut s = default_scope();
    s.specs.truncate(1);
    s.max_edits = 0;
    s.max_deletes = 1;
    s
}

/// The harness description of a reconciler of `DemoApp` (the demo or a broken variant).
pub fn spec<R>(name: &str) -> ControllerSpec<R, NoExternalModel>
where
    R: Reconciler<R = DemoApp, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
    R::T: Tokens,
{
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: NoExternalModel,
        matches: esr::matches_etcd(|cr: &DemoApp, etcd: &Etcd| current_state_matches(cr, etcd)),
        invariants: Vec::new(),
        step_invariants: Vec::new(),
        no_foreign_writes: true,
        no_lost_updates: true,
    }
}

/// Checks a reconciler of `DemoApp` within `scope`.
pub fn verify_reconciler<R>(name: &str, scope: Scope, opts: &CheckOptions) -> Report
where
    R: Reconciler<R = DemoApp, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
    R::T: Tokens,
{
    esr::verify(spec::<R>(name), scope, opts)
}

/// `anvil verify demo`.
pub fn verify(opts: &CheckOptions) -> Report {
    verify_reconciler::<DemoController>("demo", default_scope(), opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_holds_on_a_small_scope() {
        let mut scope = default_scope();
        scope.max_edits = 0;
        scope.specs.truncate(1);
        scope.max_deletes = 0;
        scope.faults = Faults::default();
        let r = verify_reconciler::<DemoController>("demo", scope, &CheckOptions::default());
        for p in &r.results {
            eprintln!(
                "{} {} states={} transitions={} {:.2}s",
                p.property, p.verdict, p.states, p.transitions, p.seconds
            );
            if let Some(t) = &p.counterexample {
                eprintln!("{}", anvil_cluster_model::render::trace_text(t));
            }
        }
        assert!(r.holds());
    }

    /// The model's API server enforces the CRD's CEL rules, evaluated from the CRD.
    #[test]
    fn the_model_enforces_the_crd_rules() {
        use anvil_objects::DynamicObject;
        use anvil_reconciler::{ErrorReason, KubeRequest, KubeResponse};
        let kinds = kinds();
        let mut etcd = Etcd::new();
        let app = |replicas: i32, image: &str| {
            let mut cr = DemoApp::new(
                "a",
                crate::DemoAppSpec {
                    replicas,
                    image: image.into(),
                    message: "m".into(),
                },
            );
            cr.metadata.namespace = Some("default".into());
            DynamicObject::from_typed(&cr).unwrap()
        };
        let reason = |r: KubeResponse| r.error().map(|e| e.reason);
        let too_many = etcd.handle(&kinds, &KubeRequest::Create(app(11, "nginx")));
        assert_eq!(reason(too_many), Some(ErrorReason::Invalid));
        let created = etcd.handle(&kinds, &KubeRequest::Create(app(1, "nginx")));
        let stored = created
            .object()
            .expect("a valid DemoApp is created")
            .clone();
        let httpd = app(1, "httpd").spec().cloned().unwrap();
        let new_image = stored.modify(|p| {
            p.body.insert("spec".into(), httpd);
        });
        let changed = etcd.handle(&kinds, &KubeRequest::Update(new_image));
        assert_eq!(
            reason(changed),
            Some(ErrorReason::Invalid),
            "image is immutable"
        );
    }
}
