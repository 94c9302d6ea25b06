//! Anvil for Rust as a library: everything an operator crate needs to verify, run and deploy
//! its own controllers with a command of its own.
//!
//! A controller is a [`Controller`]: a name, its default verification scope and a function
//! that model-checks it within a scope, its CRD, and how to run it through the shim. A
//! [`Cli`] turns a list of controllers into a command with the subcommands `list`, `verify`,
//! `run`, `crd` and `manifests` (the same ones, with the same flags, exit codes and output, as
//! the repository's `anvil` binary, which is built with this API for the example controllers:
//! see `registry`):
//!
//! ```no_run
//! # mod my_operator { pub fn controller() -> anvil::Controller { unimplemented!() } }
//! fn main() {
//!     anvil::Cli::new("my-operator")
//!         .version(env!("CARGO_PKG_VERSION"))
//!         .controller(my_operator::controller())
//!         .main()
//! }
//! ```
//!
//! [`testing::assert_holds`] runs the same verification from `cargo test`. `anvil new <name>`
//! ([`scaffold`]) writes a standalone operator crate that uses all of it;
//! `docs/write-your-own-controller.md` walks through it.
//!
//! The crates an operator is written against are re-exported, so that one dependency on
//! `anvil` (with `default-features = false`, which leaves the example controllers out) is
//! enough: [`reconciler`] (the `Reconciler` trait and the `chain` helper), [`objects`]
//! (`DynamicObject`, `Kind`, owner references), [`model`] (the cluster model: `Scope`,
//! `Faults`, the ESR harness `model::esr`) and [`shim`] (`ShimConfig`, running on a cluster).

pub mod cli;
pub mod controller;
pub mod manifests;
#[cfg(feature = "examples")]
pub mod registry;
pub mod report;
pub mod run;
pub mod scaffold;
pub mod testing;
pub mod verify;

pub use cli::Cli;
pub use controller::{Controller, RunContext, RunFuture, RunOption, Runnable, Runner};

pub use anvil_cluster_model as model;
pub use anvil_objects as objects;
pub use anvil_reconciler as reconciler;
pub use anvil_shim as shim;

/// The allocator the `anvil` binary uses (mimalloc): the model checker allocates and frees
/// many small objects on several threads. An operator's `main.rs` can use it too:
/// `#[global_allocator] static GLOBAL: anvil::MiMalloc = anvil::MiMalloc;`.
pub use mimalloc::MiMalloc;
