use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anvil_objects::Kind;
pub use tokio_util::sync::CancellationToken;

use crate::execute::register_resource;
use crate::leader::LeaderElection;
use crate::rbac::Permission;
use crate::telemetry::Health;

/// How [`crate::run`] and [`crate::reconcile_once`] behave. Build it with [`ShimConfig::new`]
/// and the `with_*` / [`ShimConfig::owns`] methods; it is cheap to clone, so a test can start a
/// fresh controller with the same configuration after an injected crash.
#[derive(Clone, Debug)]
pub struct ShimConfig {
    /// Name of the controller: the reporting controller of its Kubernetes Events.
    pub controller_name: String,
    /// Watch and reconcile custom resources of this namespace only (`None`: all namespaces).
    /// Owned kinds are watched in the same namespace.
    pub namespace: Option<String>,
    /// Owned kinds: a change of an object of one of these kinds whose controller owner
    /// reference points at a custom resource triggers a reconcile of that resource.
    pub owned: Vec<Kind>,
    /// Requeue delay after a reconcile reached `reconcile_done` (default 60 s).
    pub requeue_after: Duration,
    /// Backoff after the first failed reconcile (`reconcile_error`, failed quorum read, step
    /// bound); doubled for every further consecutive failure of the same object (default 1 s).
    pub backoff_base: Duration,
    /// Upper bound of the backoff (default 5 min).
    pub backoff_max: Duration,
    /// Bound on `reconcile_core` calls per reconcile; exceeding it fails the reconcile with
    /// [`crate::ShimError::TooManySteps`] (default 1000).
    pub max_steps: usize,
    /// Crash injection: stop the controller abruptly right after the N-th mutating Kubernetes
    /// request of a reconcile completed (counted per reconcile, see the crate docs).
    pub crash_after_writes: Option<usize>,
    /// Shut down gracefully on SIGINT / SIGTERM (default true; `anvil run` wants it, tests
    /// usually turn it off and use [`ShimConfig::shutdown`]).
    pub handle_signals: bool,
    /// Shut down gracefully when this token is cancelled.
    pub shutdown: Option<CancellationToken>,
    /// Maximum number of reconciles running at once, over all objects (0: unbounded). One
    /// object is never reconciled twice at once, whatever this says.
    pub concurrency: u16,
    /// The permissions the reconciler's requests need (declared with [`ShimConfig::may`]);
    /// `anvil manifests` grants exactly these plus the runtime's own
    /// ([`crate::rbac::runtime_permissions`]). Empty: undeclared (no run-time check).
    pub permissions: BTreeSet<Permission>,
    /// Readiness reported on `/readyz` ([`crate::serve_http`]): set while the controller runs.
    pub health: Option<Arc<Health>>,
    /// Reconcile only while holding this Lease (`None`: always; one replica).
    pub leader_election: Option<LeaderElection>,
    /// Client-side bound on one Kubernetes request of a reconcile (and on the readiness
    /// probe): a request without an answer by then fails with `Timeout` (the server may still
    /// have applied it), so that an API server that hangs (stopped, partitioned) cannot stall
    /// reconciles forever (default 30 s).
    pub request_timeout: Duration,
    /// With [`ShimConfig::health`]: how often [`crate::run`] checks that the API server
    /// answers (a quorum `LIST` of the custom resource, limit 1); see [`crate::Health`]
    /// (default 5 s).
    pub probe_interval: Duration,
}

impl ShimConfig {
    /// The defaults, for a controller named `controller_name`.
    pub fn new(controller_name: impl Into<String>) -> Self {
        ShimConfig {
            controller_name: controller_name.into(),
            namespace: None,
            owned: Vec::new(),
            requeue_after: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_steps: 1000,
            crash_after_writes: None,
            handle_signals: true,
            shutdown: None,
            concurrency: 0,
            permissions: BTreeSet::new(),
            health: None,
            leader_election: None,
            request_timeout: Duration::from_secs(30),
            probe_interval: Duration::from_secs(5),
        }
    }

    /// Runs only while holding a Lease (several replicas, one leader).
    #[must_use]
    pub fn with_leader_election(mut self, le: LeaderElection) -> Self {
        self.leader_election = Some(le);
        self
    }

    /// Declares that the reconciler's requests need `verbs` on the typed kind `K` (and
    /// registers its plural), e.g. `.may::<StatefulSet>(&["get", "create", "update"])`.
    #[must_use]
    pub fn may<K: kube::Resource<DynamicType = ()>>(mut self, verbs: &[&str]) -> Self {
        register_resource::<K>();
        let kind = Kind::of::<K>();
        self.permissions
            .extend(verbs.iter().map(|v| Permission::on(&kind, v)));
        self
    }

    /// Declares that the reconciler's requests need `verbs` on the `status` subresource of `K`.
    #[must_use]
    pub fn may_status<K: kube::Resource<DynamicType = ()>>(mut self, verbs: &[&str]) -> Self {
        register_resource::<K>();
        let kind = Kind::of::<K>();
        self.permissions
            .extend(verbs.iter().map(|v| Permission::on_status(&kind, v)));
        self
    }

    /// Declares one permission the reconciler's requests need (any group and resource).
    #[must_use]
    pub fn may_permission(mut self, permission: Permission) -> Self {
        self.permissions.insert(permission);
        self
    }

    /// Reports readiness to `health` (see [`crate::serve_http`]).
    #[must_use]
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// Watches the typed kind `K` as an owned kind (and registers its plural).
    #[must_use]
    pub fn owns<K: kube::Resource<DynamicType = ()>>(mut self) -> Self {
        register_resource::<K>();
        self.owned.push(Kind::of::<K>());
        self
    }

    /// Watches `kind` as an owned kind (its plural is guessed unless registered with
    /// [`crate::register_plural`]).
    #[must_use]
    pub fn owns_kind(mut self, kind: Kind) -> Self {
        self.owned.push(kind);
        self
    }

    /// Restricts the controller to one namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the requeue delay after success.
    #[must_use]
    pub fn with_requeue_after(mut self, d: Duration) -> Self {
        self.requeue_after = d;
        self
    }

    /// Sets the error backoff (first delay, maximum).
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Sets the step bound per reconcile.
    #[must_use]
    pub fn with_max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// Turns on crash injection after `n` mutating requests of a reconcile (`None`: off).
    #[must_use]
    pub fn with_crash_after_writes(mut self, n: Option<usize>) -> Self {
        self.crash_after_writes = n;
        self
    }

    /// Shuts down gracefully when `token` is cancelled, and not on signals.
    #[must_use]
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self.handle_signals = false;
        self
    }

    /// Sets the client-side bound on one Kubernetes request ([`ShimConfig::request_timeout`]).
    #[must_use]
    pub fn with_request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Sets how often the API server is probed for readiness ([`ShimConfig::probe_interval`]).
    #[must_use]
    pub fn with_probe_interval(mut self, d: Duration) -> Self {
        self.probe_interval = d;
        self
    }

    /// Whether to shut down on SIGINT / SIGTERM.
    #[must_use]
    pub fn with_signal_handling(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// The backoff after `failures` consecutive failures (1 for the first).
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_saturates() {
        let c =
            ShimConfig::new("t").with_backoff(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(c.backoff(1), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(200));
        assert_eq!(c.backoff(4), Duration::from_millis(800));
        assert_eq!(c.backoff(5), Duration::from_secs(1));
        assert_eq!(c.backoff(1000), Duration::from_secs(1));
    }

    #[test]
    fn defaults() {
        let c = ShimConfig::new("t");
        assert_eq!(c.requeue_after, Duration::from_secs(60));
        assert_eq!(c.max_steps, 1000);
        assert!(c.crash_after_writes.is_none());
        assert!(c.handle_signals);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.probe_interval, Duration::from_secs(5));
    }
}
