//! The external-system hook: a model of an external API (e.g. ZooKeeper's znode store) with
//! its own state, which a reconciler talks to with `Request::External`.

use crate::api::Etcd;
use crate::tokens::Tokens;
use anvil_reconciler::NoExternal;
use std::fmt::Debug;
use std::hash::Hash;

/// A model of an external system. `handle` runs atomically, like an API server request; it may
/// look at the cluster (e.g. which pods exist) but not change it.
pub trait ExternalModel: Send + Sync + 'static {
    /// Requests it understands.
    type Request;
    /// Its responses.
    type Response;
    /// Its state (kept small: it is part of every model state).
    type State: Clone + Eq + Hash + Debug + Send + Sync + Tokens;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// Handles one request.
    fn handle(
        &self,
        state: &mut Self::State,
        req: &Self::Request,
        cluster: &Etcd,
    ) -> Self::Response;
    /// The error response a dropped request gets (`None`: requests to it are never dropped).
    fn drop_response(&self, req: &Self::Request) -> Option<Self::Response> {
        let _ = req;
        None
    }
}

/// The external model of controllers without an external system.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoExternalModel;

impl ExternalModel for NoExternalModel {
    type Request = NoExternal;
    type Response = NoExternal;
    type State = ();
    fn init(&self) {}
    fn handle(&self, _: &mut (), req: &NoExternal, _: &Etcd) -> NoExternal {
        match *req {}
    }
}
