//! [`Controller`]: what a command built with [`crate::Cli`] knows about one controller -- its
//! name, how to verify it, its CRD, and (for controllers that can be deployed) how to run it.
//!
//! ```
//! use anvil::Controller;
//! use anvil::model::esr::{CheckOptions, Report};
//! use anvil::model::Scope;
//!
//! /// The custom resource's specs, edits, faults and bounds to check.
//! fn default_scope() -> Scope {
//!     unimplemented!("see the `verify.rs` of an `anvil new` crate")
//! }
//! /// `anvil::model::esr::verify(<the controller's ControllerSpec>, scope, opts)`.
//! fn check(scope: Scope, opts: &CheckOptions) -> Report {
//!     unimplemented!("see the `verify.rs` of an `anvil new` crate")
//! }
//!
//! let c = Controller::new("greeter", "Greeter: a ConfigMap per custom resource", default_scope, check);
//! assert_eq!(c.name, "greeter");
//! assert!(c.runner.is_none(), "verification only until `.runs::<R>(...)`");
//! ```

use anvil_cluster_model::Scope;
use anvil_cluster_model::esr::{CheckOptions, Report};
use anvil_objects::Kind;
use anvil_reconciler::{CustomResource, NoExternal, Reconciler};
use anvil_shim::{NoExternalShim, ShimConfig, ShimError};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// The future a [`Runner`] returns: the controller running until shutdown.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<(), ShimError>>>>;

/// One controller of a command: `verify`, `crd`, `run` and `manifests` find it by
/// [`Controller::name`]. Build it with [`Controller::new`] and the builder methods
/// ([`Controller::crd`], [`Controller::runs`], ...); every part is a plain function, so a
/// controller is cheap to copy and needs no state.
#[derive(Clone)]
pub struct Controller {
    /// Name on the command line (`<command> verify <name>`).
    pub name: &'static str,
    /// One line for `<command> list`.
    pub description: &'static str,
    /// The controller's default scope (what `verify` checks without flags).
    pub scope: fn() -> Scope,
    /// Runs the checker within a scope (the default one, or one the user widened or narrowed
    /// with flags or a scope file).
    pub check: fn(Scope, &CheckOptions) -> Report,
    /// The CRDs of its custom resources (`crd` prints them, `manifests` installs them, `run`
    /// looks for them): the controller's own first, then those of controllers that run in
    /// the same process (e.g. `fluent`'s two). Empty for a controller without a CRD.
    pub crds: Vec<fn() -> CustomResourceDefinition>,
    /// How to run it on a real cluster; `None` for controllers kept for verification only
    /// (e.g. deliberately broken variants).
    pub runner: Option<Runner>,
    /// Options of `run` that only this controller takes (see [`Controller::run_option`]).
    pub run_options: Vec<RunOption>,
}

/// How a controller runs on a real cluster (`run`, `manifests`).
#[derive(Clone)]
pub struct Runner {
    /// The custom resource's kind.
    pub cr: fn() -> Kind,
    /// The shim configuration: owned kinds (watches) and the permissions the reconciler's
    /// requests need (`manifests` grants exactly these plus the runtime's own).
    pub config: fn() -> ShimConfig,
    /// Runs the controller with a client and the configuration `run` built from
    /// [`Runner::config`] and its flags.
    pub run: fn(RunContext) -> RunFuture,
}

/// A `run` flag that only some controllers take, e.g. the address of an external system
/// (`--zk-address host:port`); its value reaches the controller through
/// [`RunContext::option`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOption {
    /// The long flag without dashes (`zk-address`).
    pub long: &'static str,
    /// Help text.
    pub help: &'static str,
}

/// What [`Runner::run`] gets: a client of the cluster, the shim configuration (namespace,
/// requeue delay, leader election, metrics and crash injection already applied) and the
/// values of the controller's own [`RunOption`]s.
pub struct RunContext {
    /// A client of the cluster `run` connected to.
    pub client: kube::Client,
    /// The shim configuration.
    pub config: ShimConfig,
    /// The controller's run options that were given, by long flag.
    pub options: BTreeMap<String, String>,
}

impl RunContext {
    /// The value of the run option `long` (e.g. `"zk-address"`), if it was given.
    pub fn option(&self, long: &str) -> Option<&str> {
        self.options.get(long).map(String::as_str)
    }
}

/// A runnable controller, resolved: what `run` and `manifests` need on a cluster.
pub struct Runnable {
    /// Name on the command line.
    pub name: &'static str,
    /// The custom resource's kind.
    pub cr: Kind,
    /// Its CRDs (at least one; the first is the controller's own).
    pub crds: Vec<CustomResourceDefinition>,
    /// The shim configuration (owned kinds, declared permissions).
    pub config: ShimConfig,
}

fn run_plain<Rc>(ctx: RunContext) -> RunFuture
where
    Rc: Reconciler<ExternalRequest = NoExternal>,
{
    Box::pin(anvil_shim::run::<Rc>(
        ctx.client,
        ctx.config,
        NoExternalShim,
    ))
}

impl Controller {
    /// A controller verified by `check` at `scope` (its default scope). Add its CRD with
    /// [`Controller::crd`] and make it runnable with [`Controller::runs`] or
    /// [`Controller::runs_with`].
    pub fn new(
        name: &'static str,
        description: &'static str,
        scope: fn() -> Scope,
        check: fn(Scope, &CheckOptions) -> Report,
    ) -> Self {
        Controller {
            name,
            description,
            scope,
            check,
            crds: Vec::new(),
            runner: None,
            run_options: Vec::new(),
        }
    }

    /// A CRD of its custom resources (printed by `crd`, installed by `manifests`, looked for
    /// by `run`). Call it once per CRD when the process runs several controllers, the
    /// controller's own CRD first.
    pub fn crd(mut self, crd: fn() -> CustomResourceDefinition) -> Self {
        self.crds.push(crd);
        self
    }

    /// Runnable: `run` runs the reconciler `Rc` (which talks to no external system) through
    /// the shim with the configuration `config` returns.
    pub fn runs<Rc>(self, config: fn() -> ShimConfig) -> Self
    where
        Rc: Reconciler<ExternalRequest = NoExternal>,
    {
        self.runs_with::<Rc::R>(config, run_plain::<Rc>)
    }

    /// Runnable with a run function of its own, for controllers with an external system
    /// (`run` typically calls `anvil::shim::run::<MyController>(ctx.client, ctx.config,
    /// my_external_shim)`). `Cr` is the custom resource type.
    pub fn runs_with<Cr: CustomResource>(
        mut self,
        config: fn() -> ShimConfig,
        run: fn(RunContext) -> RunFuture,
    ) -> Self {
        self.runner = Some(Runner {
            cr: Kind::of::<Cr>,
            config,
            run,
        });
        self
    }

    /// A `run` flag `--<long> VALUE` that only this controller takes (given for another
    /// controller, `run` refuses it); read it with [`RunContext::option`].
    pub fn run_option(mut self, long: &'static str, help: &'static str) -> Self {
        self.run_options.push(RunOption { long, help });
        self
    }

    /// Runs the checker at the controller's default scope.
    pub fn verify(&self, opts: &CheckOptions) -> Report {
        (self.check)((self.scope)(), opts)
    }

    /// Its CRDs as one YAML stream (what `crd` prints; documents separated by `---`), if it
    /// has any.
    pub fn crd_yaml(&self) -> Option<String> {
        if self.crds.is_empty() {
            return None;
        }
        let docs: Vec<String> = self
            .crds
            .iter()
            .map(|crd| serde_yaml::to_string(&crd()).expect("a CRD always serialises"))
            .collect();
        Some(docs.join("---\n"))
    }

    /// What `run` and `manifests` need, or why the controller cannot run.
    pub fn runnable(&self) -> Result<Runnable, String> {
        let Some(runner) = &self.runner else {
            return Err(format!(
                "`{}` cannot be run (it is kept for verification only, e.g. a deliberately broken variant)",
                self.name
            ));
        };
        if self.crds.is_empty() {
            return Err(format!(
                "`{}` has no CRD (`Controller::crd`), so it cannot be run or deployed",
                self.name
            ));
        }
        Ok(Runnable {
            name: self.name,
            cr: (runner.cr)(),
            crds: self.crds.iter().map(|crd| crd()).collect(),
            config: (runner.config)(),
        })
    }
}
