//! [`Cli`]: a command with `list`, `verify`, `run`, `crd` and `manifests` subcommands for a set
//! of [`Controller`]s. The repository's `anvil` binary is one (its controllers are the example
//! controllers, see `registry`); an operator crate builds its own in a few lines of `main`:
//!
//! ```no_run
//! # fn my_controller() -> anvil::Controller { unimplemented!() }
//! fn main() {
//!     anvil::Cli::new("my-operator")
//!         .version(env!("CARGO_PKG_VERSION"))
//!         .image("ghcr.io/me/my-operator:latest")
//!         .controller(my_controller())
//!         .main()
//! }
//! ```

use crate::controller::Controller;
use crate::{manifests, run, scaffold, verify};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::collections::BTreeSet;
use std::ffi::OsString;

/// Exit code of a usage or configuration error (bad flag, unknown controller...).
pub const EXIT_USAGE: i32 = 2;

/// A command for a set of controllers: `list`, `verify`, `run`, `crd`, `manifests` (and, for
/// the `anvil` binary, `new`). Build it with [`Cli::new`] and [`Cli::controller`], then call
/// [`Cli::main`] from `main` (or [`Cli::run_from`] to get the exit code).
#[derive(Clone)]
pub struct Cli {
    name: String,
    about: Option<String>,
    version: Option<String>,
    image: Option<String>,
    controllers: Vec<Controller>,
    new_command: bool,
}

/// The subcommands every [`Cli`] has (clap's derive; [`Cli::command`] adds the name, version,
/// the controllers' run options and `new`).
#[derive(Parser, Debug)]
#[command(name = "anvil")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// List the controllers this command can verify.
    List,
    /// Model-check a controller: ESR and its safety invariants within its scope.
    Verify(verify::VerifyArgs),
    /// Run a controller against a real cluster (the current kubeconfig or --kubeconfig).
    Run(run::RunArgs),
    /// Print a controller's CustomResourceDefinition as YAML.
    Crd(run::CrdArgs),
    /// Print everything needed to deploy a controller: CRD, ServiceAccount, least-privilege
    /// RBAC, binding and Deployment, as YAML for `kubectl apply -f -`.
    Manifests(manifests::ManifestsArgs),
}

impl Cli {
    /// A command called `name` (its binary's name: it names the subcommands in messages, and
    /// prefixes what `manifests` creates: `<name>-<controller>`), with no controller yet.
    pub fn new(name: impl Into<String>) -> Self {
        Cli {
            name: name.into(),
            about: None,
            version: None,
            image: None,
            controllers: Vec::new(),
            new_command: false,
        }
    }

    /// The one-line description of `--help`.
    pub fn about(mut self, about: impl Into<String>) -> Self {
        self.about = Some(about.into());
        self
    }

    /// The version of `--version` (usually `env!("CARGO_PKG_VERSION")`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The container image the Deployment of `manifests` runs (default `<name>:latest`); its
    /// entrypoint must be this command.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Adds a controller (`list` shows them in the order added).
    pub fn controller(mut self, controller: Controller) -> Self {
        self.controllers.push(controller);
        self
    }

    /// Adds the `new` subcommand, which scaffolds an operator crate (see [`crate::scaffold`]);
    /// the `anvil` binary has it.
    pub fn with_new_command(mut self) -> Self {
        self.new_command = true;
        self
    }

    /// The command's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The image of `manifests`' Deployment.
    pub fn default_image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("{}:latest", self.name))
    }

    /// The controllers, in `list` order.
    pub fn controllers(&self) -> &[Controller] {
        &self.controllers
    }

    /// The controller called `name`.
    pub fn find(&self, name: &str) -> Option<&Controller> {
        self.controllers.iter().find(|c| c.name == name)
    }

    /// The names of the controllers that can be run, comma-separated (for messages).
    pub fn runnable_names(&self) -> String {
        let names: Vec<_> = self
            .controllers
            .iter()
            .filter(|c| c.runner.is_some() && !c.crds.is_empty())
            .map(|c| c.name)
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The clap command: the subcommands with this command's name, version and about, the
    /// controllers' run options, and `new` if enabled.
    pub fn command(&self) -> clap::Command {
        let mut cmd = Args::command()
            .name(self.name.clone())
            .bin_name(self.name.clone())
            .about(self.about.clone().unwrap_or_else(|| {
                format!(
                    "{}: verify and run Kubernetes controllers written as state machines",
                    self.name
                )
            }));
        if let Some(v) = &self.version {
            cmd = cmd.version(v.clone());
        }
        let mut seen = BTreeSet::new();
        for o in self.controllers.iter().flat_map(|c| &c.run_options) {
            if seen.insert(o.long) {
                let users: Vec<_> = self
                    .controllers
                    .iter()
                    .filter(|c| c.run_options.iter().any(|x| x.long == o.long))
                    .map(|c| c.name)
                    .collect();
                let arg = clap::Arg::new(o.long)
                    .long(o.long)
                    .value_name("VALUE")
                    .help(format!("{} (only {})", o.help, users.join(", ")));
                cmd = cmd.mut_subcommand("run", |sc| sc.arg(arg));
            }
        }
        if self.new_command {
            // `about` after `augment_args`, which sets it from `NewArgs`' doc comment.
            let new = <scaffold::NewArgs as clap::Args>::augment_args(clap::Command::new("new"))
                .about(
                    "Create a standalone operator crate: a custom resource with CEL rules, a \
                     chain reconciler, its desired-state predicate, scope and tests",
                );
            cmd = cmd.subcommand(new);
        }
        cmd
    }

    /// A configuration mistake in the controllers (duplicate or empty names, a run option
    /// that clashes with a flag of `run`), if any.
    fn config_error(&self) -> Option<String> {
        let mut names = BTreeSet::new();
        for c in &self.controllers {
            if c.name.is_empty() || c.name.starts_with('-') || c.name.contains(char::is_whitespace)
            {
                return Some(format!("invalid controller name {:?}", c.name));
            }
            if !names.insert(c.name) {
                return Some(format!("two controllers are named `{}`", c.name));
            }
        }
        let run_flags: BTreeSet<String> = Args::command()
            .find_subcommand("run")
            .map(|sc| {
                sc.get_arguments()
                    .filter_map(|a| a.get_long().map(str::to_string))
                    .chain(["help".to_string()])
                    .collect()
            })
            .unwrap_or_default();
        for c in &self.controllers {
            for o in &c.run_options {
                let valid = !o.long.is_empty()
                    && o.long
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                    && !o.long.starts_with('-');
                if !valid || run_flags.contains(o.long) {
                    return Some(format!(
                        "controller `{}`: run option `--{}` is not a valid new flag of `run`",
                        c.name, o.long
                    ));
                }
            }
        }
        None
    }

    /// Parses `args` (the first one is the program name) and runs the subcommand; returns the
    /// process exit code (see [`crate::verify`] for `verify`'s codes; `2` for usage errors).
    pub fn run_from<I, T>(&self, args: I) -> i32
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        if let Some(e) = self.config_error() {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        let matches = match self.command().try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                let _ = e.print();
                return e.exit_code();
            }
        };
        match self.dispatch(&matches) {
            Ok(code) => code,
            Err(e) => {
                let _ = e.print();
                e.exit_code()
            }
        }
    }

    /// Runs the command with the process's arguments and exits with its exit code.
    pub fn main(&self) -> ! {
        std::process::exit(self.run_from(std::env::args_os()))
    }

    fn dispatch(&self, m: &ArgMatches) -> Result<i32, clap::Error> {
        if let Some(("new", sub)) = m.subcommand() {
            let args = scaffold::NewArgs::from_arg_matches(sub)?;
            return Ok(scaffold::run(&args));
        }
        let args = Args::from_arg_matches(m)?;
        Ok(match args.command {
            Command::List => {
                for c in &self.controllers {
                    println!("{:<26} {}", c.name, c.description);
                }
                0
            }
            Command::Verify(a) => verify::run(self, &a),
            Command::Run(mut a) => {
                if let Some(("run", sub)) = m.subcommand() {
                    for o in self.controllers.iter().flat_map(|c| &c.run_options) {
                        if let Some(v) = sub.get_one::<String>(o.long) {
                            a.options.insert(o.long.to_string(), v.clone());
                        }
                    }
                }
                run::run(self, &a)
            }
            Command::Crd(a) => run::crd(self, &a),
            Command::Manifests(a) => manifests::run(self, &a),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anvil_cluster_model::Scope;
    use anvil_cluster_model::esr::{CheckOptions, Report};

    fn scope() -> Scope {
        unreachable!("not verified here")
    }

    fn check(_: Scope, _: &CheckOptions) -> Report {
        unreachable!("not verified here")
    }

    fn controller(name: &'static str) -> Controller {
        Controller::new(name, "a test controller", scope, check)
    }

    #[test]
    fn list_help_and_usage_errors() {
        let cli = Cli::new("my-op").controller(controller("a"));
        assert_eq!(cli.run_from(["my-op", "list"]), 0);
        assert_eq!(cli.run_from(["my-op", "--help"]), 0);
        assert_eq!(cli.run_from(["my-op"]), 2);
        assert_eq!(cli.run_from(["my-op", "frobnicate"]), 2);
        assert_eq!(
            cli.run_from(["my-op", "new", "x"]),
            2,
            "no `new` unless enabled"
        );
        assert_eq!(cli.run_from(["my-op", "crd", "a"]), 2, "no CRD");
        assert_eq!(cli.run_from(["my-op", "run", "a"]), 2, "not runnable");
        assert_eq!(cli.run_from(["my-op", "verify", "b"]), 2, "unknown");
        assert_eq!(cli.command().get_name(), "my-op");
    }

    #[test]
    fn bad_controller_lists_are_usage_errors_not_panics() {
        let twice = Cli::new("my-op")
            .controller(controller("a"))
            .controller(controller("a"));
        assert_eq!(
            twice.config_error().unwrap(),
            "two controllers are named `a`"
        );
        assert_eq!(twice.run_from(["my-op", "list"]), 2);
        let clash = Cli::new("my-op").controller(controller("a").run_option("namespace", "x"));
        assert!(clash.config_error().unwrap().contains("--namespace"));
        let blank = Cli::new("my-op").controller(controller(""));
        assert!(blank.config_error().is_some());
    }

    #[test]
    fn a_run_option_is_a_flag_of_run_for_its_controller_only() {
        let cli = Cli::new("my-op")
            .controller(controller("a").run_option("db-address", "the database"))
            .controller(controller("b"));
        assert!(cli.config_error().is_none());
        let run = cli.command().find_subcommand("run").cloned().unwrap();
        assert!(
            run.get_arguments()
                .any(|a| a.get_long() == Some("db-address"))
        );
        assert_eq!(
            cli.run_from(["my-op", "run", "b", "--db-address", "x"]),
            2,
            "b is not runnable"
        );
    }
}
