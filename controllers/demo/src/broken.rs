//! Deliberately broken variants of the demo controller, each with a bug class that the checker
//! must catch (see `anvil verify demo-*`):
//!
//! * [`StaleUpdate`] (`demo-stale-update`): writes the StatefulSet with an **unconditional**
//!   update built from its read. After a crash, such an update of the earlier incarnation is
//!   still in flight while the next reconcile writes a newer StatefulSet; when it lands it
//!   overwrites changes it never saw. Caught by the `no_lost_updates` invariant (an
//!   unconditional update in flight built from an older generation than the stored one).
//!   With the demo's conditional updates the stale write would fail with `Conflict`. (ESR
//!   alone does not catch it: a level-triggered controller heals the overwrite on its next
//!   reconcile.)
//! * [`AlreadyExistsFatal`] (`demo-alreadyexists-fatal`): treats `AlreadyExists` on create
//!   as fatal and stops for good -- but after a crash, the create of the earlier incarnation
//!   may land between this incarnation's Get and Create.
//! * [`AdoptOrphan`] (`demo-adopt-orphan`): updates existing objects whoever controls them,
//!   so it adopts the objects left behind by a deleted `DemoApp` of the same name (before
//!   the garbage collector removes them).
//! * [`NoDoneOnFailure`] (`demo-no-done-on-failure`): when a write fails, waits forever
//!   instead of ending the reconcile with an error (so it is never retried).
//! * [`SharedConfig`] (`demo-shared-config`): names its ConfigMap `demo-config` whatever the
//!   `DemoApp` is called. Correct for one `DemoApp` (the name happens to be `demo`), but two
//!   `DemoApp`s in one namespace fight over one ConfigMap: only a check with two custom
//!   resources (`--crs 2`) sees it.

use crate::reconciler::{CONFIG_MAP, STATEFUL_SET, STATUS, STEPS};
use crate::resource::DemoApp;
use anvil_cluster_model::esr::{CheckOptions, Report};
use anvil_objects::DynamicObject;
use anvil_reconciler::chain::{self, Adopt, ChainReconciler, ChainState, ManagedObject, Step};
use anvil_reconciler::{
    ErrorReason, KubeResponse, NoExternal, Reconciler, Request, Response, Tokens,
};
use std::marker::PhantomData;

/// Local state of the wrappers: the chain, or a terminal marker.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Tokens)]
pub enum Wrapped {
    /// Running the chain.
    Chain(ChainState),
    /// Gave up for good: never done, never error, no more requests.
    Stuck(String),
}

/// The bug of a wrapper: the response after which it gives up for good (and why), if any.
pub trait GivesUpOn: 'static {
    /// `Some(reason)` when the wrapper stops on `resp`.
    fn gives_up(resp: &Response<NoExternal>) -> Option<String>;
}

/// The demo chain, except that it stops for good (never done, never error) on the responses
/// `B` picks out.
pub struct GivesUp<B>(PhantomData<B>);

impl<B: GivesUpOn> Reconciler for GivesUp<B> {
    type R = DemoApp;
    type T = Wrapped;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn reconcile_init_state() -> Wrapped {
        Wrapped::Chain(ChainState::default())
    }

    fn reconcile_core(
        cr: &DemoApp,
        resp: Option<Response<NoExternal>>,
        s: Wrapped,
    ) -> (Wrapped, Option<Request<NoExternal>>) {
        match s {
            Wrapped::Chain(c) => {
                if let Some(why) = resp.as_ref().and_then(B::gives_up) {
                    return (Wrapped::Stuck(why), None);
                }
                let (c, req) = chain::run_step(STEPS, cr, resp, c);
                (Wrapped::Chain(c), req)
            }
            s => (s, None),
        }
    }

    fn reconcile_done(s: &Wrapped) -> bool {
        matches!(s, Wrapped::Chain(c) if c.is_done())
    }

    fn reconcile_error(s: &Wrapped) -> bool {
        matches!(s, Wrapped::Chain(c) if c.is_error())
    }
}

// ---------------------------------------------------------------- (a) stale update

fn unconditional_merge(
    cr: &DemoApp,
    existing: &DynamicObject,
    desired: &DynamicObject,
) -> DynamicObject {
    let merged = chain::merge_desired(cr, existing, desired);
    if &merged == existing {
        merged
    } else {
        // BUG: the update is built from a read but does not carry its resourceVersion.
        merged.modify(|p| p.metadata.resource_version = None)
    }
}

const STALE_STEPS: &[Step<DemoApp, NoExternal, NoExternal>] = &[
    Step::Object(CONFIG_MAP),
    Step::Object(ManagedObject {
        merge: unconditional_merge,
        ..STATEFUL_SET
    }),
    Step::Status(STATUS),
];

/// Variant (a): the StatefulSet is written with an unconditional update built from a
/// (possibly stale) read.
pub struct StaleUpdate;

impl ChainReconciler for StaleUpdate {
    type R = DemoApp;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<DemoApp, NoExternal, NoExternal>] {
        STALE_STEPS
    }
}

// ---------------------------------------------------------------- (b) AlreadyExists fatal

/// The bug of variant (b).
pub struct OnAlreadyExists;

impl GivesUpOn for OnAlreadyExists {
    fn gives_up(resp: &Response<NoExternal>) -> Option<String> {
        match resp {
            Response::Kube(KubeResponse::Create(Err(e)))
                if e.reason == ErrorReason::AlreadyExists =>
            {
                // BUG: "someone else created it; nothing we can do".
                Some(format!("fatal: {e}"))
            }
            _ => None,
        }
    }
}

/// Variant (b): `AlreadyExists` on create is treated as fatal, forever.
pub type AlreadyExistsFatal = GivesUp<OnAlreadyExists>;

// ---------------------------------------------------------------- (c) adopt orphan

const ADOPT_STEPS: &[Step<DemoApp, NoExternal, NoExternal>] = &[
    Step::Object(ManagedObject {
        adopt: Adopt::Always,
        ..CONFIG_MAP
    }),
    Step::Object(ManagedObject {
        adopt: Adopt::Always,
        ..STATEFUL_SET
    }),
    Step::Status(STATUS),
];

/// Variant (c): updates existing objects whoever controls them.
pub struct AdoptOrphan;

impl ChainReconciler for AdoptOrphan {
    type R = DemoApp;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<DemoApp, NoExternal, NoExternal>] {
        ADOPT_STEPS
    }
}

// ---------------------------------------------------------------- (d) no done on failure

/// The bug of variant (d).
pub struct OnWriteFailure;

impl GivesUpOn for OnWriteFailure {
    fn gives_up(resp: &Response<NoExternal>) -> Option<String> {
        match resp {
            Response::Kube(
                KubeResponse::Create(Err(e))
                | KubeResponse::Update(Err(e))
                | KubeResponse::UpdateStatus(Err(e)),
            ) => {
                // BUG: waits for a retry that never comes.
                Some(format!("write failed: {e}"))
            }
            _ => None,
        }
    }
}

/// Variant (d): a failed write leaves the reconcile waiting forever.
pub type NoDoneOnFailure = GivesUp<OnWriteFailure>;

// ---------------------------------------------------------------- (e) shared config

/// BUG of variant (e): one ConfigMap name for every `DemoApp`.
fn shared_config_map_name(_: &DemoApp) -> String {
    "demo-config".into()
}

const SHARED_STEPS: &[Step<DemoApp, NoExternal, NoExternal>] = &[
    Step::Object(ManagedObject {
        name: shared_config_map_name,
        ..CONFIG_MAP
    }),
    Step::Object(STATEFUL_SET),
    Step::Status(STATUS),
];

/// Variant (e): the ConfigMap's name does not depend on the custom resource.
pub struct SharedConfig;

impl ChainReconciler for SharedConfig {
    type R = DemoApp;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn steps() -> &'static [Step<DemoApp, NoExternal, NoExternal>] {
        SHARED_STEPS
    }
}

// ---------------------------------------------------------------- scopes and entry points

use crate::verify::{default_scope, verify_reconciler};
use anvil_cluster_model::{Faults, Scope};

fn no_faults(mut s: Scope) -> Scope {
    s.faults = Faults::default();
    s.max_edits = 0;
    s.max_deletes = 0;
    // the broken variants' scopes keep one stale request (the default has two)
    s.max_stale_requests = 1;
    // without edits only the creation spec is reachable (another would make ESR vacuous)
    s.specs.truncate(1);
    s
}

/// Scope of `demo-stale-update`: one edit and crashes.
pub fn stale_update_scope() -> Scope {
    let mut s = no_faults(default_scope());
    s.specs = default_scope().specs;
    s.max_edits = 1;
    s.faults.crash = true;
    s
}

/// Scope of `demo-alreadyexists-fatal`: crashes.
pub fn already_exists_scope() -> Scope {
    let mut s = no_faults(default_scope());
    s.faults.crash = true;
    s
}

/// Scope of `demo-adopt-orphan`: one deletion and re-creation.
pub fn adopt_orphan_scope() -> Scope {
    let mut s = no_faults(default_scope());
    s.max_deletes = 1;
    s
}

/// Scope of `demo-no-done-on-failure`: dropped requests.
pub fn no_done_scope() -> Scope {
    let mut s = no_faults(default_scope());
    s.faults.drop = true;
    s
}

/// Scope of `demo-shared-config`: two `DemoApp`s, no faults.
pub fn shared_config_scope() -> Scope {
    let mut s = no_faults(default_scope());
    s.crs = 2;
    s
}

/// `anvil verify demo-shared-config`.
pub fn verify_shared_config(opts: &CheckOptions) -> Report {
    verify_reconciler::<SharedConfig>("demo-shared-config", shared_config_scope(), opts)
}

/// `anvil verify demo-stale-update`.
pub fn verify_stale_update(opts: &CheckOptions) -> Report {
    verify_reconciler::<StaleUpdate>("demo-stale-update", stale_update_scope(), opts)
}

/// `anvil verify demo-alreadyexists-fatal`.
pub fn verify_already_exists_fatal(opts: &CheckOptions) -> Report {
    verify_reconciler::<AlreadyExistsFatal>(
        "demo-alreadyexists-fatal",
        already_exists_scope(),
        opts,
    )
}

/// `anvil verify demo-adopt-orphan`.
pub fn verify_adopt_orphan(opts: &CheckOptions) -> Report {
    verify_reconciler::<AdoptOrphan>("demo-adopt-orphan", adopt_orphan_scope(), opts)
}

/// `anvil verify demo-no-done-on-failure`.
pub fn verify_no_done_on_failure(opts: &CheckOptions) -> Report {
    verify_reconciler::<NoDoneOnFailure>("demo-no-done-on-failure", no_done_scope(), opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(r: &Report) {
        for p in &r.results {
            eprintln!(
                "{} {}: {} states={} transitions={} {:.2}s validated={:?} {:?}",
                r.controller,
                p.property,
                p.verdict,
                p.states,
                p.transitions,
                p.seconds,
                p.counterexample_validated,
                p.validation_error
            );
            if let Some(t) = &p.counterexample {
                eprintln!("{}", anvil_cluster_model::render::trace_text(t));
            }
        }
    }

    #[test]
    fn broken_variants_are_caught() {
        let o = CheckOptions::default();
        let mut failures = Vec::new();
        for (r, prop) in [
            (verify_stale_update(&o), "no_lost_updates"),
            (verify_already_exists_fatal(&o), "esr"),
            (verify_adopt_orphan(&o), "no_foreign_writes"),
            (verify_no_done_on_failure(&o), "esr"),
            (verify_shared_config(&o), "esr:demo-2"),
        ] {
            show(&r);
            let p = r.result(prop).unwrap();
            if p.verdict != "violated" || p.counterexample_validated != Some(true) {
                failures.push(r.controller.clone());
            }
        }
        assert!(failures.is_empty(), "not caught: {failures:?}");
    }

    /// The shared-name bug is invisible with one custom resource.
    #[test]
    fn shared_config_holds_with_one_custom_resource() {
        let mut s = shared_config_scope();
        s.crs = 1;
        let r =
            verify_reconciler::<SharedConfig>("demo-shared-config", s, &CheckOptions::default());
        show(&r);
        assert!(r.holds());
    }

    /// The correct controller holds with two custom resources (65,095 states with the
    /// model's eager steps, 288,417 before: now in the debug builds of the test command too).
    #[test]
    fn demo_holds_with_two_custom_resources() {
        let r = verify_reconciler::<crate::DemoController>(
            "demo",
            shared_config_scope(),
            &CheckOptions::default(),
        );
        show(&r);
        assert!(r.holds());
        assert_eq!(
            r.results
                .iter()
                .filter(|p| anvil_cluster_model::esr::is_esr(&p.property))
                .count(),
            2
        );
        let cov = r.coverage.as_ref().unwrap();
        assert_eq!(cov.specs.len(), 2);
        assert_eq!(cov.specs[1].cr, "demo-2");
    }
}
