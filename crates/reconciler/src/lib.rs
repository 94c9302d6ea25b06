//! The reconciler API: a controller's `reconcile()` written as a small state machine.
//!
//! A [`Reconciler`] starts each reconcile from [`Reconciler::reconcile_init_state`] and is
//! driven one step at a time by [`Reconciler::reconcile_core`]: each step gets the response to
//! the previous request (if any) and returns the next local state and at most one
//! [`Request`]. The reconcile ends in a state where [`Reconciler::reconcile_done`] or
//! [`Reconciler::reconcile_error`] holds. `reconcile_core` must be pure and deterministic: the
//! same function is explored exhaustively by the checker and executed by the shim.
//!
//! Most controllers are a list of managed objects: see [`chain`] for the Get ->
//! Create-or-Update helper that turns such a list into a reconciler.
//!
//! Local states and external messages hold resourceVersions and uids as opaque *tokens* that
//! the model checker renames: they implement [`Tokens`], which `#[derive(Tokens)]` writes
//! (see [`tokens`] for the contract and why the renaming is sound).

// The `Tokens` derive names the trait by its absolute path, also inside this crate.
extern crate self as anvil_reconciler;

pub mod chain;
mod error;
mod reconciler;
mod request;
pub mod tokens;
mod view;

pub use error::{ApiError, ErrorReason};
pub use reconciler::{CustomResource, Reconciler};
pub use request::{
    ExternalType, KubeRequest, KubeResponse, NoExternal, Preconditions, Request, Response,
};
pub use tokens::Tokens;
pub use view::ClusterView;
