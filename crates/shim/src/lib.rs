//! Anvil for Rust: the shim layer. It runs a [`Reconciler`](anvil_reconciler::Reconciler) on a
//! real cluster through kube-rs; it is the only async part of Anvil.
//!
//! # Entry points
//!
//! * [`run`]: a kube-rs [`Controller`](kube::runtime::Controller) on the custom resource type,
//!   watching the owned kinds of [`ShimConfig`], until graceful shutdown or an injected crash.
//! * [`reconcile_once`]: one complete reconcile of one object (useful in tests).
//! * [`execute`]: one [`KubeRequest`](anvil_reconciler::KubeRequest) against the API server
//!   (the model-fidelity tests compare it with the cluster model).
//! * [`ExternalShim`]: how external requests (e.g. ZooKeeper's API) are executed;
//!   [`NoExternalShim`] for controllers without an external system.
//! * [`crd_yaml`], [`connect`], [`check_cluster`]: helpers for the `anvil` command.
//! * [`rbac`]: the RBAC permissions a controller needs (declared in [`ShimConfig::may`],
//!   derived for the runtime), for `anvil manifests`.
//! * [`serve_http`], [`encode_metrics`], [`Health`]: Prometheus metrics and `/metrics`,
//!   `/healthz`, `/readyz` (the metric names are listed below).
//!
//! ```no_run
//! use anvil_reconciler::{NoExternal, Reconciler};
//! use anvil_shim::{NoExternalShim, ShimConfig};
//! use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::ConfigMap};
//!
//! async fn anvil_run<Rc>(crd_name: &str) -> i32
//! where
//!     Rc: Reconciler<ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
//! {
//!     let cluster = match anvil_shim::connect(None).await {
//!         Ok(c) => c,
//!         Err(e) => { eprintln!("{e}"); return e.exit_code(); }
//!     };
//!     // Clear errors first: "cannot reach the API server at ...", "CRD x is not installed; ...".
//!     if let Err(e) = anvil_shim::check_cluster(&cluster.client, &cluster.url, crd_name).await {
//!         eprintln!("{e}");
//!         return e.exit_code();
//!     }
//!     let config = ShimConfig::new("demo").owns::<ConfigMap>().owns::<StatefulSet>();
//!     match anvil_shim::run::<Rc>(cluster.client, config, NoExternalShim).await {
//!         Ok(()) => 0,                               // SIGINT / SIGTERM
//!         Err(e) => { eprintln!("{e}"); e.exit_code() } // CRASH_EXIT_CODE after an injected crash
//!     }
//! }
//! ```
//!
//! # One reconcile
//!
//! 1. A quorum GET of the custom resource (a GET without resourceVersion is served from etcd,
//!    never from the watch cache). NotFound: stop, no requeue.
//! 2. Decode it as `R::R` and call [`Reconciler::validate`](anvil_reconciler::Reconciler::validate).
//!    Invalid: a Warning Event (reason `InvalidSpec`) on the object and a `tracing` warning;
//!    `reconcile_core` is not called, and the object is not requeued until it changes (no busy
//!    loop).
//! 3. From `reconcile_init_state`, call `reconcile_core` with the previous response; execute
//!    the request it returns (Kubernetes requests through [`execute`], external ones through
//!    the [`ExternalShim`]) and feed the response back. A step with no request gets `None` next
//!    time.
//! 4. `reconcile_done`: requeue after [`ShimConfig::requeue_after`] (60 s by default).
//!    `reconcile_error`, a failed quorum read, or more than [`ShimConfig::max_steps`] steps
//!    (1000 by default; [`ShimError::TooManySteps`]): requeue with exponential backoff
//!    ([`ShimConfig::backoff_base`] doubled per consecutive failure of that object, at most
//!    [`ShimConfig::backoff_max`]).
//!
//! ## Runtime semantics shared with the cluster model
//!
//! The model's controller runtime (`anvil_cluster_model::model`) follows the same rules, and
//! `crates/anvil/tests/conformance.rs` drives both with the same events:
//!
//! | rule | semantics |
//! |---|---|
//! | R1 | a step that returns done or error **together with** a request: the request is executed; its response is discarded and the reconcile ends |
//! | R2 | `reconcile_done`/`reconcile_error` are checked before every step, including on `reconcile_init_state()` (an initial state that is already done never calls `reconcile_core`) |
//! | R3 | `List` with an empty namespace lists every namespace, sorted by (namespace, name) |
//! | R4 | `GetThen*` retries on `Conflict` at most [`GET_THEN_ATTEMPTS`] times, then returns that `Conflict`; the model answers `Conflict` to a `GetThen*` as a transient failure (fault `transient`) |
//! | R5 | resourceVersions and uids are opaque: copied and compared for equality only |
//!
//! Every failure the shim can surface for a request (API errors with their reasons, 429
//! `TooManyRequests`, transport failures as `Other`) is among the model's transient failures;
//! a request that the server executed but whose response is lost (`Timeout`, transport
//! failure after the commit) is the model's applied-then-failed fault.
//!
//! kube's controller guarantees **at most one reconcile per object at a time**: triggers that
//! arrive while an object is being reconciled are merged and run once that reconcile ends.
//! Every reconcile runs in a `reconcile` `tracing` span (field `object`), every request in a
//! `request` span (`verb`, `key`).
//!
//! # Requests
//!
//! Each request is executed with a `kube::Api<kube::api::DynamicObject>` built from
//! `ApiResource::from_gvk` (plural guessed by kube, or registered with [`register_plural`];
//! [`run`] registers the custom resource and [`ShimConfig::owns`] kinds), namespaced when the
//! key has a namespace and cluster scoped otherwise. Every failure, including transport
//! failures and undecodable answers, is an `Err(ApiError)` (via `ApiError::from(&kube::Error)`),
//! never success. `managedFields` are dropped from returned objects. A Get, Delete or Update
//! without a name is answered `BadRequest` without calling the server (an empty name would
//! address the whole collection).
//!
//! | request | kube call(s) | notes |
//! |---|---|---|
//! | `Get(key)` | `api.get(name)` | quorum read |
//! | `List { kind, namespace, label_selector }` | `api.list(labels=k1=v1,k2=v2)` | all namespaces when `namespace` is empty; sorted by (namespace, name); items get apiVersion/kind |
//! | `Create(obj)` | `api.create(obj)` | `metadata.generateName` works when `name` is empty |
//! | `Delete { key, preconditions }` | `api.delete(name, DeleteParams { preconditions: uid/resourceVersion })` | 200 (object, maybe only marked for deletion) and 202 are both `Ok(())`; failed precondition: `Conflict` |
//! | `Update(obj)` | `api.replace(name, obj)` | `obj`'s resourceVersion is the precondition (`Conflict` when stale) |
//! | `UpdateStatus(obj)` | `api.replace_status(name, obj)` | the status subresource: only `status` changes |
//! | `GetThenUpdate { obj, owner }` | `api.get(name)`; if its controller owner reference is `owner`: `api.replace(name, obj with the current resourceVersion)`, else `TransactionAbort` | on `Conflict`, re-read and retry, at most [`GET_THEN_ATTEMPTS`] (5) attempts, then the last `Conflict` |
//! | `GetThenUpdateStatus { obj, owner }` | as above with `api.replace_status` | as above |
//! | `GetThenDelete { key, owner }` | `api.get(name)`; if controlled by `owner`: `api.delete(name, preconditions = the uid and resourceVersion just read)`, else `TransactionAbort` | as above |
//!
//! `GetThen*` retries are logged (`tracing` info; warn when giving up) and counted in
//! [`metrics`] (`get_then_conflict_retries`, `get_then_exhausted`, `get_then_aborts`).
//!
//! # Forbidden requests
//!
//! A request the API server refuses with `Forbidden` (403: a missing RBAC rule) is logged as
//! an error and recorded as a Warning Event with reason `Forbidden` on the custom resource
//! (its note names the request and the API server's message); the reconciler gets the error
//! like any other. A request outside the permissions declared in [`ShimConfig::may`] is also
//! logged as an error before it is sent.
//!
//! # Metrics
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `anvil_reconciles_total` | counter | `controller`, `outcome` (`done`, `error`, `failed`, `invalid`, `not_found`, `crashed`) |
//! | `anvil_reconcile_errors_total` | counter | `controller`, `cause` (`error_state`, `shim`) |
//! | `anvil_reconcile_duration_seconds` | histogram | `controller` |
//! | `anvil_api_requests_total` | counter | `group`, `kind`, `verb`, `outcome` (`ok` or the error reason) |
//! | `anvil_get_then_conflict_retries_total`, `anvil_get_then_exhausted_total`, `anvil_get_then_aborts_total` | counter | |
//! | `anvil_leader` | gauge | `controller` |
//!
//! # Outages of the platform
//!
//! Every Kubernetes request of a reconcile (the quorum read included) is bounded by
//! [`ShimConfig::request_timeout`] (30 s by default; `anvil run --request-timeout-seconds`): an
//! API server that hangs (stopped, partitioned, waiting on etcd) fails the request with `Timeout`
//! instead of stalling the reconcile; the request may still have been applied, the model's
//! applied-then-failed fault. A reconcile that fails this way is retried with backoff, like any
//! other failure; watches are re-established by kube with its backoff. Nothing exits (with
//! leader election, an outage longer than the Lease duration can cost the Lease: [`run`] then
//! stops with [`ShimError::LostLeadership`], see below).
//!
//! With [`ShimConfig::with_health`], `/readyz` follows the API server ([`Health`]): requests and
//! watches failing with a transport error, a client-side timeout or a server error (500, 504),
//! and a probe every [`ShimConfig::probe_interval`] (a quorum `LIST` of the custom resource,
//! limit 1, bounded by the request timeout), make it answer 503 with the reason, logged as a
//! warning ("the API server is unreachable or failing"); the next answered request or probe
//! makes it ready again, logged at info ("the API server answers again").
//! `crates/anvil/tests/platform_faults.rs` kills and restarts kube-apiserver and etcd, and stops
//! kube-apiserver for longer than the timeout, under `anvil run demo` with many custom resources.
//!
//! # Leader election
//!
//! With [`ShimConfig::with_leader_election`], [`run`] waits until it holds a
//! `coordination.k8s.io` Lease before it starts the controller, and stops at once with
//! [`ShimError::LostLeadership`] if the Lease is lost (see [`LeaderElection`]). The
//! `anvil_leader` gauge says whether this process leads.
//!
//! # Crash injection
//!
//! With [`ShimConfig::crash_after_writes`] = `Some(n)`, a reconcile that has completed its
//! `n`-th **mutating Kubernetes request** (Create, Delete, Update, UpdateStatus, GetThen*;
//! whatever its outcome; external requests are not counted) stops right there: its response
//! is never fed to `reconcile_core`. The count is **per reconcile** (it restarts at 0 with every
//! reconcile), so `n = 1, 2, ...` sweeps every write point of a reconcile. In-process, [`run`]
//! then returns `Err(ShimError::Crashed)` at once, aborting every running reconcile (local
//! state is lost, as in a real crash); start a fresh controller to recover. The `anvil run`
//! binary should exit with [`CRASH_EXIT_CODE`] (see [`ShimError::exit_code`]).
//!
//! # Shutdown
//!
//! SIGINT/SIGTERM (when [`ShimConfig::handle_signals`]; a second signal forces it) or the
//! [`CancellationToken`] in [`ShimConfig::shutdown`] stop the watches; running reconciles
//! finish, then [`run`] returns `Ok(())`.

mod cli;
mod config;
mod error;
mod execute;
mod external;
mod leader;
pub mod rbac;
mod runtime;
mod telemetry;

pub use cli::{Cluster, check_cluster, connect, crd_yaml};
pub use config::{CancellationToken, ShimConfig};
pub use error::{CRASH_EXIT_CODE, ShimError};
pub use execute::{
    GET_THEN_ATTEMPTS, Metrics, api_resource, dynamic_api, execute, list_view, metrics,
    register_plural, register_resource,
};
pub use external::{BoxFuture, ExternalShim, FnShim, NoExternalShim};
pub use leader::LeaderElection;
pub use rbac::Permission;
pub use runtime::{Outcome, reconcile_once, run};
pub use telemetry::{Health, encode_metrics, serve_http};
