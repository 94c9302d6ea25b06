use crate::{ExternalType, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;

/// What a custom resource type must offer to be reconciled: a kube resource (e.g. made with
/// kube's `CustomResource` derive) that (de)serialises.
pub trait CustomResource:
    kube_core::Resource<DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> CustomResource for T where
    T: kube_core::Resource<DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A controller's `reconcile()` as a state machine (the seed's interface).
///
/// Each reconcile of a custom resource starts at [`Reconciler::reconcile_init_state`]; every
/// call to [`Reconciler::reconcile_core`] takes the response to the previous request and
/// returns the next state and at most one request; the reconcile ends when
/// [`Reconciler::reconcile_done`] or [`Reconciler::reconcile_error`] holds. Returning no
/// request from a state that is neither done nor error lets the runtime call `reconcile_core`
/// again with no response.
///
/// `reconcile_core` must be **pure and deterministic**: no I/O, clock, randomness or global
/// state. The checker explores it exhaustively and the shim runs the same function.
pub trait Reconciler: 'static {
    /// The custom resource type.
    type R: CustomResource;
    /// The local state of one reconcile.
    type T: Clone + Eq + Hash + Debug + Send + Sync + 'static;
    /// Requests to the external system ([`crate::NoExternal`] when there is none).
    type ExternalRequest: ExternalType;
    /// Responses from the external system ([`crate::NoExternal`] when there is none).
    type ExternalResponse: ExternalType;

    /// The state every reconcile starts from.
    fn reconcile_init_state() -> Self::T;

    /// One step: given the custom resource, the response to the last request and the state,
    /// the next state and the next request.
    fn reconcile_core(
        cr: &Self::R,
        resp: Option<Response<Self::ExternalResponse>>,
        state: Self::T,
    ) -> (Self::T, Option<Request<Self::ExternalRequest>>);

    /// The reconcile finished successfully.
    fn reconcile_done(state: &Self::T) -> bool;

    /// The reconcile finished with an error (it is retried later).
    fn reconcile_error(state: &Self::T) -> bool;

    /// Checks a custom resource before any reconcile step runs; an `Err` means the runtime
    /// records the message and does not call `reconcile_core` for it. The default accepts
    /// every object that deserialised.
    fn validate(cr: &Self::R) -> Result<(), String> {
        let _ = cr;
        Ok(())
    }
}
