//! Verification: the `Website` kind as the cluster model's API server sees it (its CRD, whose
//! schema and CEL rules the model evaluates), the default scope, and [`check`], which
//! model-checks the reconciler composed with the cluster model.
//!
//! The scope is what a result covers, and every result prints it: which specs the custom
//! resource takes and how often the user edits it, which faults happen (each a bounded number
//! of times, and eventually never again), and the bounds. Widen it on the command line
//! (`verify website --edits 2 --transient --lost-responses`) or with `--scope FILE`.

use crate::desired::current_state_matches;
use crate::reconciler::WebsiteController;
use crate::resource::{Website, crd};
use anvil::model::esr::{self, CheckOptions, ControllerSpec, Report};
use anvil::model::{Etcd, Faults, KindInfo, KindRegistry, NoExternalModel, Scope, Tokens};
use anvil::reconciler::{NoExternal, Reconciler};
use serde_json::json;

/// The kinds the model's API server knows: the built-ins and `Website`, validated by its
/// CRD's schema and CEL rules (including the `oldSelf` transition rule).
pub fn kinds() -> KindRegistry {
    let crd = serde_json::to_value(crd()).expect("the CRD serialises");
    let info =
        KindInfo::custom_resource_from_crd(&crd).unwrap_or_else(|e| panic!("the Website CRD: {e}"));
    KindRegistry::builtin().with(info)
}

/// The default scope: a `Website` created with one replica and edited once, at any point of
/// its reconciliation, to two replicas and a new page (which changes the ConfigMap and so the
/// StatefulSet's pod template); controller crashes and dropped requests (Timeout) until each
/// is switched off; at most one stale request of a crashed controller in flight.
pub fn default_scope() -> Scope {
    Scope {
        namespace: "default".into(),
        name: "site".into(),
        crs: 1,
        specs: vec![
            json!({"replicas": 1, "image": "nginx", "content": "hello"}),
            json!({"replicas": 2, "image": "nginx", "content": "hello, world"}),
        ],
        max_edits: 1,
        max_deletes: 0,
        faults: Faults {
            crash: true,
            drop: true,
            ..Default::default()
        },
        max_stale_requests: 1,
        max_objects_per_kind: anvil::model::scope::DEFAULT_OBJECT_BOUND,
        others: Vec::new(),
        objects: Vec::new(),
    }
}

/// What the checker needs to know about a reconciler of `Website` (the controller, or a
/// variant of it in a test): the kinds, the desired-state predicate, and which built-in safety
/// invariants to check besides ESR.
pub fn spec<R>(name: &str) -> ControllerSpec<R, NoExternalModel>
where
    R: Reconciler<R = Website, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
    R::T: Tokens,
{
    ControllerSpec {
        name: name.into(),
        kinds: kinds(),
        external: NoExternalModel,
        matches: esr::matches_etcd(|site: &Website, etcd: &Etcd| current_state_matches(site, etcd)),
        // the controller's own invariants, e.g. "replicas never decrease"
        invariants: Vec::new(),
        step_invariants: Vec::new(),
        // never write an object controlled by someone else
        no_foreign_writes: true,
        // never update unconditionally from a stale read
        no_lost_updates: true,
    }
}

/// Model-checks ESR and the safety invariants of a reconciler of `Website` within `scope`.
pub fn check_reconciler<R>(name: &str, scope: Scope, opts: &CheckOptions) -> Report
where
    R: Reconciler<R = Website, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
    R::T: Tokens,
{
    esr::verify(spec::<R>(name), scope, opts)
}

/// Model-checks the controller within `scope` (`verify website`).
pub fn check(scope: Scope, opts: &CheckOptions) -> Report {
    check_reconciler::<WebsiteController>("website", scope, opts)
}
