//! # anvil-cluster-model
//!
//! An executable model of a Kubernetes cluster, for exhaustive model checking of controllers:
//!
//! * [`api`]: API server + etcd semantics (every rule has a unit test in `tests/api_rules.rs`);
//! * [`kinds`]: per-kind behaviour (status subresource, generation, validation rules);
//! * [`crd`]: custom resources' rules from their CRD (schema and CEL rules, evaluated with the
//!   `cel` crate);
//! * [`model`]: the state machine composing the API server, the network, the controller
//!   runtime running a [`anvil_reconciler::Reconciler`], the garbage collector, built-in
//!   controllers, the environment and faults;
//! * [`tokens`]: the canonical renaming of resourceVersions and uids that keeps the state
//!   space finite (with the soundness argument);
//! * [`esr`]: the ESR harness and reports ([`esr::verify`]);
//! * [`esr_set`]: several controllers checked together in one model ([`esr_set::verify_set`]);
//! * [`external`]: the external-system hook.

pub mod api;
pub mod check;
pub mod crd;
pub mod esr;
pub mod esr_set;
pub mod external;
pub mod kinds;
pub mod model;
pub mod render;
pub mod report_text;
pub mod scope;
pub mod small_map;
pub mod store;
pub mod tokens;

pub use api::Etcd;
pub use crd::{CrdError, CrdValidator};
pub use esr::{CheckOptions, ControllerSpec, PropertyReport, Report, verify};
pub use external::{ExternalModel, NoExternalModel};
pub use kinds::{KindInfo, KindRegistry};
pub use model::{Action, ClusterMachine, ModelReconciler, StateOf};
pub use scope::{Faults, MemberScope, Scope};
pub use tokens::Tokens;
