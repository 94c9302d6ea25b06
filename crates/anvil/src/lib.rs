//! The `anvil` command as a library: the controller [`registry`], `verify`, and the CLI
//! definition ([`Cli`]). Other subcommands (`run`, `crd`, `manifests`) plug into [`Command`] and
//! [`dispatch`].

pub mod manifests;
pub mod registry;
pub mod report;
pub mod run;
pub mod verify;

use clap::{Parser, Subcommand};

/// `anvil`: verify and run Kubernetes controllers written as state machines.
#[derive(Parser, Debug)]
#[command(name = "anvil", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the controllers anvil can verify.
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

/// Runs a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::List => {
            for c in registry::controllers() {
                println!("{:<26} {}", c.name, c.description);
            }
            0
        }
        Command::Verify(args) => verify::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Crd(args) => run::crd(&args),
        Command::Manifests(args) => manifests::run(&args),
    }
}
