//! # anvil-cluster-model
//!
//! An executable model of a Kubernetes cluster, for exhaustive model checking of controllers:
//!
//! * [`api`]: API server + etcd semantics (every rule has a unit test in `tests/api_rules.rs`);
//! * [`kinds`]: per-kind behaviour (status subresource, generation, validation rules, custom
//!   resources' CEL rules in Rust);
//! * [`model`]: the state machine composing the API server, the network, the controller
//!   runtime running a [`anvil_reconciler::Reconciler`], the garbage collector, built-in
//!   controllers, the environment and faults;
//! * [`tokens`]: the canonical renaming of resourceVersions and uids that keeps the state
//!   space finite (with the soundness argument);
//! * [`esr`]: the ESR harness and reports ([`esr::verify`]);
//! * [`external`]: the external-system hook.

pub mod api;
pub mod esr;
pub mod external;
pub mod kinds;
pub mod model;
pub mod render;
pub mod scope;
pub mod tokens;

pub use api::Etcd;
pub use esr::{CheckOptions, ControllerSpec, PropertyReport, Report, verify};
pub use external::{ExternalModel, NoExternalModel};
pub use kinds::{CrdRules, KindInfo, KindRegistry};
pub use model::{Action, ClusterMachine, ModelReconciler, StateOf};
pub use scope::{Faults, Scope};
pub use tokens::Tokens;
