//! Shims for the external systems reconcilers talk to (e.g. ZooKeeper's API).

use std::future::Future;
use std::pin::Pin;

use anvil_reconciler::NoExternal;

/// A boxed, sendable future, as returned by [`ExternalShim::call`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Executes a reconciler's external requests (`Request::External(q)`) and returns the
/// response fed back as `Response::External(p)`. Implementations do the real I/O (e.g. talk
/// to a ZooKeeper ensemble); failures must be encoded in `P`, never panics.
pub trait ExternalShim<Q, P>: Send + Sync {
    /// Executes one external request.
    fn call(&self, req: Q) -> BoxFuture<'_, P>;
}

/// The external shim of controllers without an external system: its request type
/// ([`NoExternal`]) has no values, so it is never called.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoExternalShim;

impl<P> ExternalShim<NoExternal, P> for NoExternalShim {
    fn call(&self, req: NoExternal) -> BoxFuture<'_, P> {
        match req {}
    }
}

/// An external shim from an async function or closure.
pub struct FnShim<F>(pub F);

impl<Q, P, F, Fut> ExternalShim<Q, P> for FnShim<F>
where
    F: Fn(Q) -> Fut + Send + Sync,
    Fut: Future<Output = P> + Send + 'static,
{
    fn call(&self, req: Q) -> BoxFuture<'_, P> {
        Box::pin((self.0)(req))
    }
}
