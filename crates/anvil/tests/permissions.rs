//! The RBAC permissions each runnable controller declares in its `ShimConfig` (what `anvil
//! manifests` grants) against the model: the cluster model explores every state of the
//! controller's verification scope and collects the permissions of every Kubernetes request
//! its reconciler sends (`anvil_shim::rbac::request_permissions`, the HTTP calls the shim
//! makes for it). The declaration must be exactly that set: nothing missing (the generated
//! Role would make a request fail with Forbidden) and nothing unused (least privilege), except
//! the few permissions listed in `beyond_the_scope` with the reason each is still granted.
//!
//! The scope is the controller's default scope (its specs and edits) with the fault classes
//! that change which requests are sent: transient failures (every error reason the shim can
//! surface) and applied-then-failed requests (AlreadyExists after a create whose answer was
//! lost). Crashes and dropped requests only repeat requests from a fresh reconcile, so they
//! are left out to keep the search small in debug builds.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anvil_checker::{Checker, Property};
use anvil_cluster_model::{
    ClusterMachine, ControllerSpec, ExternalModel, Faults, ModelReconciler, Scope,
};
use anvil_reconciler::Request;
use anvil_shim::Permission;
use anvil_shim::rbac::request_permissions;

/// Every permission the reconciler's requests need in the reachable states of `scope`.
fn observed<R, X>(spec: ControllerSpec<R, X>, scope: Scope) -> BTreeSet<Permission>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse> + Clone,
{
    let m = ClusterMachine::<R, X>::new(spec.kinds, scope, spec.external);
    let seen: Arc<Mutex<BTreeSet<Permission>>> = Arc::default();
    let sink = seen.clone();
    let collect = Property::<ClusterMachine<R, X>>::always("collect requests", move |s| {
        for msg in &s.network {
            if let Request::Kube(req) = &msg.req {
                let perms = request_permissions(req);
                let mut set = sink.lock().unwrap();
                set.extend(perms);
            }
        }
        true
    });
    let r = Checker::new(&m)
        .properties(vec![collect])
        .state_limit(3_000_000)
        .run();
    assert!(
        r.complete,
        "the search must be complete to derive permissions from it: {:?} after {} states",
        r.stopped, r.states
    );
    eprintln!(
        "explored {} states, {} transitions in {:.1}s",
        r.states, r.transitions, r.seconds
    );
    seen.lock().unwrap().clone()
}

fn request_faults(mut scope: Scope) -> Scope {
    scope.faults = Faults {
        transient: true,
        lost_response: true,
        ..Faults::default()
    };
    scope
}

/// Declared permissions that no request of the scope needs, each with the reason it is still
/// granted. Keep this short: every entry is a permission the model does not justify.
fn beyond_the_scope(controller: &str) -> Vec<(Permission, &'static str)> {
    // The chain updates a managed object whenever it differs from its desired form
    // (`merge_desired` / `replace_body`). For these objects the desired form does not change
    // with the specs of the scope, so only another writer's change makes it differ, and the
    // scopes here have no other writers (`other_updates = 0`: they multiply the state space).
    // The real controller repairs such drift, so it keeps these permissions.
    const DRIFT: &str = "update only to repair another writer's change (no other writers here)";
    let update = |group: &str, resource: &str| (Permission::new(group, resource, "update"), DRIFT);
    match controller {
        "zookeeper" => vec![update("", "services")],
        "rabbitmq" => vec![
            update("", "services"),
            update("", "secrets"),
            update("", "serviceaccounts"),
            update("rbac.authorization.k8s.io", "roles"),
            update("rbac.authorization.k8s.io", "rolebindings"),
        ],
        "fluentbit" => vec![
            update("", "services"),
            update("", "serviceaccounts"),
            update("rbac.authorization.k8s.io", "roles"),
            update("rbac.authorization.k8s.io", "rolebindings"),
        ],
        _ => Vec::new(),
    }
}

fn assert_declared_exactly(controller: &str, observed: BTreeSet<Permission>) {
    let r = anvil::registry::runnable(controller).unwrap();
    let mut declared = r.config.permissions.clone();
    for (p, why) in beyond_the_scope(controller) {
        assert!(
            declared.remove(&p),
            "{controller}: {p} is listed as beyond the scope but not declared"
        );
        assert!(
            !observed.contains(&p),
            "{controller}: {p} is needed in the scope after all; remove it from \
             beyond_the_scope ({why})"
        );
    }
    let declared = &declared;
    let missing: Vec<String> = observed
        .difference(declared)
        .map(|p| p.to_string())
        .collect();
    let unused: Vec<String> = declared
        .difference(&observed)
        .map(|p| p.to_string())
        .collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "{controller}: the declared permissions (ShimConfig::may) differ from the model's \
         requests\n  missing (the model sends requests that need them): {missing:?}\n  \
         unused (no request of the scope needs them): {unused:?}"
    );
}

#[test]
fn demo_declares_exactly_the_permissions_of_its_requests() {
    let _ = anvil::registry::runnable("demo");
    let scope = request_faults(anvil_demo::verify::default_scope());
    let seen = observed(
        anvil_demo::verify::spec::<anvil_demo::DemoController>("demo"),
        scope,
    );
    assert_declared_exactly("demo", seen);
}

#[test]
fn zookeeper_declares_exactly_the_permissions_of_its_requests() {
    let _ = anvil::registry::runnable("zookeeper");
    let scope = request_faults(anvil_zookeeper::verify::default_scope());
    let seen = observed(
        anvil_zookeeper::verify::spec::<anvil_zookeeper::ZookeeperController>("zookeeper"),
        scope,
    );
    assert_declared_exactly("zookeeper", seen);
}

#[test]
fn rabbitmq_declares_exactly_the_permissions_of_its_requests() {
    let _ = anvil::registry::runnable("rabbitmq");
    // Faults are left out here: with three specs and two edits they make the search too
    // long for a debug build (over 5 minutes), and a failed request only ends the chain's
    // reconcile: no request of a new kind or verb follows one (see the demo and ZooKeeper).
    let mut scope = anvil_rabbitmq::verify::default_scope();
    scope.faults = Faults::default();
    let seen = observed(
        anvil_rabbitmq::verify::spec::<anvil_rabbitmq::RabbitmqController>("rabbitmq", &scope),
        scope.clone(),
    );
    assert_declared_exactly("rabbitmq", seen);
}

#[test]
fn fluentbit_declares_exactly_the_permissions_of_its_requests() {
    let scope = request_faults(anvil_fluent::verify::fluent_bit_scope());
    let seen = observed(
        anvil_fluent::verify::fluent_bit_spec::<anvil_fluent::FluentBitController>("fluentbit"),
        scope,
    );
    assert_declared_exactly("fluentbit", seen);
}

#[test]
fn fluentbit_config_declares_exactly_the_permissions_of_its_requests() {
    let scope = request_faults(anvil_fluent::verify::config_scope());
    let spec = anvil_fluent::verify::config_spec("fluentbit-config");
    assert_declared_exactly("fluentbit-config", observed(spec, scope));
}

/// `anvil run fluent` runs both controllers in one process: its declaration is the union of
/// the two checked above.
#[test]
fn fluent_declares_the_union_of_both_controllers() {
    let both = anvil::registry::runnable("fluent")
        .unwrap()
        .config
        .permissions;
    let fb = anvil::registry::runnable("fluentbit")
        .unwrap()
        .config
        .permissions;
    let fbc = anvil::registry::runnable("fluentbit-config")
        .unwrap()
        .config
        .permissions;
    assert_eq!(both, fb.union(&fbc).cloned().collect());
}
