//! The demo controller's verification scope: the `DemoApp` kind as the cluster model's API
//! server sees it (its CRD rules in Rust), the default scope, and `verify`.

use crate::desired::current_state_matches;
use crate::reconciler::DemoController;
use crate::resource::{DemoApp, validate_spec, validate_transition};
use anvil_cluster_model::esr::{self, CheckOptions, ControllerSpec, Report};
use anvil_cluster_model::model::{StateOf, lost_update_in};
use anvil_cluster_model::{
    CrdRules, Etcd, Faults, KindInfo, KindRegistry, NoExternalModel, Scope, Tokens,
};
use anvil_reconciler::{NoExternal, Reconciler};
use serde_json::json;
use std::sync::Arc;

impl CrdRules for DemoApp {
    fn validate(&self) -> Result<(), String> {
        validate_spec(&self.spec)
    }

    fn validate_transition(old: &Self, new: &Self) -> Result<(), String> {
        validate_transition(&old.spec, &new.spec)
    }
}

/// The kinds the model's API server knows: the built-ins and `DemoApp` with the CRD's rules.
pub fn kinds() -> KindRegistry {
    KindRegistry::builtin().with(KindInfo::custom_resource_with_rules::<DemoApp>())
}

/// The default scope of `anvil verify demo`: a `DemoApp` created with one replica, edited once
/// (more replicas and a new message, which changes the ConfigMap and so the StatefulSet's pod
/// template), deleted and re-created once, with controller crashes and dropped requests.
pub fn default_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "demo".into(),
        specs: vec![
            json!({"replicas": 1, "image": "nginx", "message": "hello"}),
            json!({"replicas": 2, "image": "nginx", "message": "bye"}),
        ],
        max_edits: 1,
        max_deletes: 1,
        faults: Faults {
            crash: true,
            drop: true,
            other_deletes: 0,
            pod_losses: 0,
        },
        max_stale_requests: 1,
    }
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
        invariants: vec![(
            "no_lost_updates".to_string(),
            Arc::new(|s: &StateOf<R, NoExternalModel>| !lost_update_in(s)),
        )],
        no_foreign_writes: true,
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

    /// The model's API server enforces the CRD's rules through `CrdRules`.
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
