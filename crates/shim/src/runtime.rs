//! The reconcile loop and the controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{
    ApiError, ErrorReason, KubeRequest, KubeResponse, Reconciler, Request, Response,
};
use futures::StreamExt;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::ShimConfig;
use crate::error::ShimError;
use crate::execute::{api_resource, execute, register_resource};
use crate::external::ExternalShim;
use crate::leader;
use crate::rbac::request_permissions;
use crate::telemetry;
use k8s_openapi::api::core::v1::ObjectReference;

/// How one reconcile ended (see [`reconcile_once`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The quorum read found no custom resource: nothing to do, no requeue.
    NotFound,
    /// The custom resource failed [`Reconciler::validate`] (or did not decode as the
    /// reconciler's type); `reconcile_core` was not called. A Warning Event was recorded.
    Invalid(String),
    /// `reconcile_done` holds.
    Done {
        /// `reconcile_core` calls.
        steps: usize,
        /// Mutating Kubernetes requests issued.
        writes: usize,
    },
    /// `reconcile_error` holds.
    Error {
        /// `reconcile_core` calls.
        steps: usize,
        /// Mutating Kubernetes requests issued.
        writes: usize,
        /// The final local state (`Debug`), for logs.
        state: String,
    },
    /// Crash injection fired after this many mutating requests; the reconcile stopped there.
    Crashed {
        /// `reconcile_core` calls.
        steps: usize,
        /// Mutating Kubernetes requests issued.
        writes: usize,
    },
}

fn recorder(client: &Client, config: &ShimConfig) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: config.controller_name.clone(),
            instance: None,
        },
    )
}

/// Runs one complete reconcile of the custom resource `namespace`/`name` (empty namespace for
/// a cluster-scoped resource): quorum read, validation, then `reconcile_core` steps until done
/// or error, executing each request with [`execute`] (external ones with `external`). Honors
/// `config.max_steps` and `config.crash_after_writes` (a crash is reported as
/// [`Outcome::Crashed`]); ignores the watch, requeue and shutdown settings.
pub async fn reconcile_once<Rc: Reconciler>(
    client: &Client,
    config: &ShimConfig,
    external: &dyn ExternalShim<Rc::ExternalRequest, Rc::ExternalResponse>,
    namespace: &str,
    name: &str,
) -> Result<Outcome, ShimError> {
    register_resource::<Rc::R>();
    let key = ObjectRef::new(Kind::of::<Rc::R>(), namespace, name);
    let rec = recorder(client, config);
    reconcile_traced::<Rc>(client, config, external, &rec, &key).await
}

async fn reconcile_traced<Rc: Reconciler>(
    client: &Client,
    config: &ShimConfig,
    external: &dyn ExternalShim<Rc::ExternalRequest, Rc::ExternalResponse>,
    recorder: &Recorder,
    key: &ObjectRef,
) -> Result<Outcome, ShimError> {
    let span = tracing::info_span!("reconcile", object = %key);
    let began = std::time::Instant::now();
    let result = reconcile_inner::<Rc>(client, config, external, recorder, key)
        .instrument(span)
        .await;
    let controller = config.controller_name.as_str();
    let outcome = match &result {
        Ok(Outcome::NotFound) => "not_found",
        Ok(Outcome::Invalid(_)) => "invalid",
        Ok(Outcome::Done { .. }) => "done",
        Ok(Outcome::Error { .. }) => {
            telemetry::record_reconcile_error(controller, "error_state");
            "error"
        }
        Ok(Outcome::Crashed { .. }) => "crashed",
        Err(_) => {
            telemetry::record_reconcile_error(controller, "shim");
            "failed"
        }
    };
    telemetry::record_reconcile(controller, outcome, began.elapsed());
    result
}

async fn reconcile_inner<Rc: Reconciler>(
    client: &Client,
    config: &ShimConfig,
    external: &dyn ExternalShim<Rc::ExternalRequest, Rc::ExternalResponse>,
    recorder: &Recorder,
    key: &ObjectRef,
) -> Result<Outcome, ShimError> {
    // Quorum read: a GET without resourceVersion is served from etcd, not from a cache.
    let stored: DynamicObject =
        match execute_bounded(client, config, &KubeRequest::Get(key.clone())).await {
            KubeResponse::Get(Ok(o)) => o,
            KubeResponse::Get(Err(e)) if e.reason == ErrorReason::NotFound => {
                tracing::debug!("custom resource not found; nothing to do");
                return Ok(Outcome::NotFound);
            }
            KubeResponse::Get(Err(error)) => {
                if error.reason == ErrorReason::Forbidden {
                    let req = KubeRequest::Get(key.clone());
                    forbidden(recorder, &reference_to_key(key, None), &req, &error.message).await;
                }
                return Err(ShimError::Api {
                    context: format!("quorum read of {key}"),
                    error,
                });
            }
            other => unreachable!("a Get is answered by a Get response, got {other:?}"),
        };
    let cr: Rc::R = match stored.to_typed() {
        Ok(cr) => cr,
        Err(e) => {
            let msg = format!("cannot decode {key}: {e}");
            invalid(recorder, &stored, &msg).await;
            return Ok(Outcome::Invalid(msg));
        }
    };
    if let Err(msg) = Rc::validate(&cr) {
        invalid(recorder, &stored, &msg).await;
        return Ok(Outcome::Invalid(msg));
    }

    let mut state = Rc::reconcile_init_state();
    let mut resp: Option<Response<Rc::ExternalResponse>> = None;
    let mut steps = 0usize;
    let mut writes = 0usize;
    loop {
        if Rc::reconcile_done(&state) {
            tracing::info!(steps, writes, "reconcile done");
            return Ok(Outcome::Done { steps, writes });
        }
        if Rc::reconcile_error(&state) {
            let state = format!("{state:?}");
            tracing::warn!(steps, writes, %state, "reconcile ended in an error state");
            return Ok(Outcome::Error {
                steps,
                writes,
                state,
            });
        }
        if steps >= config.max_steps {
            tracing::error!(steps, "step bound reached: runaway reconciler?");
            return Err(ShimError::TooManySteps {
                object: key.clone(),
                steps,
            });
        }
        steps += 1;
        let (next, req) = Rc::reconcile_core(&cr, resp.take(), state);
        state = next;
        match req {
            None => tracing::trace!(step = steps, "step without request"),
            Some(Request::Kube(req)) => {
                tracing::debug!(step = steps, verb = req.verb(), "request");
                check_declared(config, &req);
                let r = execute_bounded(client, config, &req).await;
                if let Some(e) = r.error()
                    && e.reason == ErrorReason::Forbidden
                {
                    forbidden(recorder, &reference_to(&stored), &req, &e.message).await;
                }
                if req.is_mutating() {
                    writes += 1;
                    if config.crash_after_writes == Some(writes) {
                        tracing::warn!(
                            steps,
                            writes,
                            verb = req.verb(),
                            "crash injection: stopping the controller"
                        );
                        return Ok(Outcome::Crashed { steps, writes });
                    }
                }
                resp = Some(Response::Kube(r));
            }
            Some(Request::External(q)) => {
                tracing::debug!(step = steps, request = ?q, "external request");
                let p = external
                    .call(q)
                    .instrument(tracing::debug_span!("external"))
                    .await;
                resp = Some(Response::External(p));
            }
        }
    }
}

/// Whether `e` says the API server is unreachable or failing (transport failure, client-side
/// timeout, server error), rather than answering about the request itself.
pub(crate) fn is_outage(e: &ApiError) -> bool {
    matches!(
        e.reason,
        ErrorReason::Other
            | ErrorReason::InternalError
            | ErrorReason::Timeout
            | ErrorReason::ServerTimeout
    )
}

/// Reports the outcome of a request to the readiness state.
fn note_api(config: &ShimConfig, req: &KubeRequest, error: Option<&ApiError>) {
    let Some(health) = &config.health else {
        return;
    };
    match error {
        Some(e) if is_outage(e) => health.api_failed(format!(
            "{} {}: {:?}: {}",
            req.verb(),
            req.key().map(|k| k.to_string()).unwrap_or_default(),
            e.reason,
            e.message
        )),
        _ => health.api_ok(),
    }
}

/// [`execute`] bounded by `config.request_timeout`: no answer by then is a `Timeout` error
/// (the request may still have been applied). The outcome is reported to the readiness state.
async fn execute_bounded(client: &Client, config: &ShimConfig, req: &KubeRequest) -> KubeResponse {
    let resp = match tokio::time::timeout(config.request_timeout, execute(client, req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let kind = match req {
                KubeRequest::List { kind, .. } => kind.clone(),
                other => other
                    .key()
                    .map(|k| k.kind)
                    .unwrap_or_else(|| Kind::new("", "")),
            };
            telemetry::record_request(kind.group(), kind.kind(), req.verb(), "Timeout");
            tracing::warn!(
                verb = req.verb(),
                timeout = ?config.request_timeout,
                "no answer from the API server in time"
            );
            req.error_response(ApiError::new(
                ErrorReason::Timeout,
                format!(
                    "no answer from the API server within {:?} (client-side timeout; the \
                     request may have been applied)",
                    config.request_timeout
                ),
            ))
        }
    };
    note_api(config, req, resp.error());
    resp
}

fn reference_to_key(key: &ObjectRef, uid: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some(key.kind.api_version().to_string()),
        kind: Some(key.kind.kind().to_string()),
        name: Some(key.name.to_string()),
        namespace: (!key.namespace.is_empty()).then(|| key.namespace.to_string()),
        uid: uid.map(str::to_string),
        resource_version: None,
        field_path: None,
    }
}

fn reference_to(stored: &DynamicObject) -> ObjectReference {
    ObjectReference {
        resource_version: stored.resource_version().map(str::to_string),
        ..reference_to_key(&stored.object_ref(), stored.uid())
    }
}

/// Logs an error for a request whose permissions the controller's
/// [`ShimConfig::permissions`] do not declare (so `anvil manifests` does not grant them).
fn check_declared(config: &ShimConfig, req: &KubeRequest) {
    if config.permissions.is_empty() {
        return;
    }
    let missing: Vec<String> = request_permissions(req)
        .into_iter()
        .filter(|p| !config.permissions.contains(p))
        .map(|p| p.to_string())
        .collect();
    if !missing.is_empty() {
        tracing::error!(
            verb = req.verb(),
            missing = %missing.join(", "),
            "request needs permissions the controller does not declare (ShimConfig::may); \
             its generated RBAC rules will not allow it"
        );
    }
}

/// Reports a request the API server refused with `Forbidden`: an error in the log and a
/// Warning Event (reason `Forbidden`) on the custom resource, so that a missing RBAC rule is
/// visible with `kubectl describe` instead of a silent stall.
async fn forbidden(recorder: &Recorder, cr: &ObjectReference, req: &KubeRequest, message: &str) {
    let target = req
        .key()
        .map(|k| k.to_string())
        .unwrap_or_else(|| match req {
            KubeRequest::List { kind, .. } => format!("{kind:?}"),
            _ => String::new(),
        });
    tracing::error!(
        verb = req.verb(),
        target = %target,
        message = %message,
        "Forbidden: the controller's ServiceAccount lacks an RBAC permission \
         (see `anvil manifests`)"
    );
    let note = format!("{} {target}: {message}", req.verb());
    publish_warning(recorder, cr, "Forbidden", "Reconcile", &note).await;
}

async fn publish_warning(
    recorder: &Recorder,
    reference: &ObjectReference,
    reason: &str,
    action: &str,
    note: &str,
) {
    let mut note = note.to_string();
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "cannot record the event");
    }
}

/// Records an invalid custom resource: a Warning Event on it and a tracing warning.
async fn invalid(recorder: &Recorder, stored: &DynamicObject, msg: &str) {
    tracing::warn!(message = %msg, "custom resource is invalid; not reconciling it until it changes");
    publish_warning(
        recorder,
        &reference_to(stored),
        "InvalidSpec",
        "Validate",
        msg,
    )
    .await;
}

struct Context<Rc: Reconciler> {
    client: Client,
    config: ShimConfig,
    external: Box<dyn ExternalShim<Rc::ExternalRequest, Rc::ExternalResponse>>,
    recorder: Recorder,
    failures: Mutex<HashMap<ObjectRef, u32>>,
    crash: CancellationToken,
    crashed: Mutex<Option<ShimError>>,
}

impl<Rc: Reconciler> Context<Rc> {
    fn succeeded(&self, key: &ObjectRef) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    fn failed(&self, key: &ObjectRef) -> Action {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.clone()).or_default();
        *n = n.saturating_add(1);
        let delay = self.config.backoff(*n);
        tracing::info!(object = %key, failures = *n, ?delay, "requeue with backoff");
        Action::requeue(delay)
    }
}

async fn reconcile_for_controller<Rc: Reconciler>(
    cr: Arc<kube::api::DynamicObject>,
    ctx: Arc<Context<Rc>>,
) -> Result<Action, ShimError> {
    let meta = kube::Resource::meta(cr.as_ref());
    let key = ObjectRef::new(
        Kind::of::<Rc::R>(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    );
    let outcome = reconcile_traced::<Rc>(
        &ctx.client,
        &ctx.config,
        ctx.external.as_ref(),
        &ctx.recorder,
        &key,
    )
    .await;
    match outcome {
        Ok(Outcome::NotFound) | Ok(Outcome::Invalid(_)) => {
            ctx.succeeded(&key);
            Ok(Action::await_change())
        }
        Ok(Outcome::Done { .. }) => {
            ctx.succeeded(&key);
            Ok(Action::requeue(ctx.config.requeue_after))
        }
        Ok(Outcome::Error { .. }) => Ok(ctx.failed(&key)),
        Ok(Outcome::Crashed { writes, .. }) => {
            let err = ShimError::Crashed {
                object: key.clone(),
                writes,
            };
            *ctx.crashed.lock().unwrap_or_else(|e| e.into_inner()) = Some(ShimError::Crashed {
                object: key,
                writes,
            });
            ctx.crash.cancel();
            Err(err)
        }
        Err(e) => {
            tracing::warn!(object = %key, error = %e, "reconcile failed");
            Ok(ctx.failed(&key))
        }
    }
}

/// Resolves when a graceful shutdown is requested: `config.shutdown` cancelled, or SIGINT /
/// SIGTERM when `config.handle_signals`.
async fn shutdown_requested(config: &ShimConfig) {
    let token = config.shutdown.clone();
    let signals = config.handle_signals;
    let by_token = async {
        match token {
            Some(t) => t.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    let by_signal = async {
        if !signals {
            return std::future::pending().await;
        }
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    tokio::select! {
        _ = by_token => {}
        _ = by_signal => {}
    }
}

/// Aborts a background task when dropped (the readiness probe ends with [`run`]).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether a watch error says the API server is unreachable or failing (not, e.g., the
/// routine `410 Gone` that makes the watcher list again).
fn watch_outage(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => is_outage(&ApiError::from(e)),
        watcher::Error::WatchError(status) => status.code >= 500,
        _ => false,
    }
}

/// Every `interval`, a quorum `LIST` (limit 1) of the custom resource, bounded by `timeout`;
/// its outcome goes to `health` (see [`crate::Health`]).
async fn probe(
    api: Api<kube::api::DynamicObject>,
    health: Arc<crate::telemetry::Health>,
    interval: std::time::Duration,
    timeout: std::time::Duration,
) {
    let lp = kube::api::ListParams::default().limit(1);
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, api.list(&lp)).await {
            Ok(Ok(_)) => health.api_ok(),
            Ok(Err(e)) => {
                let err = ApiError::from(&e);
                if is_outage(&err) {
                    health.api_failed(format!("probe (LIST, limit 1): {e}"));
                } else {
                    // The server answered (e.g. Forbidden): it is reachable.
                    health.api_ok();
                }
            }
            Err(_) => health.api_failed(format!(
                "probe (LIST, limit 1): no answer within {timeout:?}"
            )),
        }
    }
}

/// Runs the reconciler `Rc` as a kube-rs [`Controller`] until shutdown (or an injected crash).
///
/// The controller watches the custom resource type `Rc::R` (in `config.namespace`, or in all
/// namespaces) and the kinds in `config.owned` (changes of objects whose controller owner
/// reference points at a custom resource trigger its reconcile). kube's controller runs at most
/// one reconcile per object at a time: triggers arriving during a reconcile are merged and
/// run once it finishes.
///
/// With [`ShimConfig::health`], readiness also follows the API server (see
/// [`crate::Health`]): failing requests and watches, and a periodic probe, make `/readyz`
/// answer 503 during an outage; the controller keeps running and retries (failed reconciles
/// with backoff, watches with kube's backoff), and is ready again once the server answers.
///
/// Returns `Ok(())` after a graceful shutdown (SIGINT/SIGTERM when `config.handle_signals`,
/// or `config.shutdown` cancelled: running reconciles finish first),
/// `Err(ShimError::Crashed)` when crash injection fired (all running reconciles are aborted at
/// once; start a fresh controller to recover), or another error if the controller cannot
/// start.
pub async fn run<Rc: Reconciler>(
    client: Client,
    config: ShimConfig,
    external: impl ExternalShim<Rc::ExternalRequest, Rc::ExternalResponse> + 'static,
) -> Result<(), ShimError> {
    register_resource::<Rc::R>();
    let cr_config = watcher::Config::default();
    // The custom resource is watched as a dynamic object (only its name and namespace are
    // used: every reconcile starts with a quorum read), in one namespace when configured so
    // that a namespaced Role suffices.
    let cr_ar = api_resource(&Kind::of::<Rc::R>());
    let cr_api = match &config.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &cr_ar),
        None => Api::all_with(client.clone(), &cr_ar),
    };
    let probe_api = cr_api.clone();
    let mut controller = Controller::new_with(cr_api, cr_config, cr_ar)
        .with_config(kube::runtime::Config::default().concurrency(config.concurrency));
    for kind in &config.owned {
        let ar = api_resource(kind);
        let api = match &config.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        controller =
            controller.owns_with::<kube::api::DynamicObject>(api, ar, watcher::Config::default());
    }
    if config.handle_signals {
        controller = controller.shutdown_on_signal();
    }
    if let Some(token) = &config.shutdown {
        controller = controller.graceful_shutdown_on(token.clone().cancelled_owned());
    }
    if let Some(h) = &config.health {
        h.set_ready();
    }
    let mut leadership = match &config.leader_election {
        Some(le) => {
            let shutdown = shutdown_requested(&config);
            match leader::acquire(&client, le, &config.controller_name, shutdown).await? {
                Some(l) => Some(l),
                None => {
                    tracing::info!("shut down before becoming the leader");
                    return Ok(());
                }
            }
        }
        None => {
            telemetry::set_leader(&config.controller_name, true);
            None
        }
    };
    let lease = config
        .leader_election
        .as_ref()
        .map(|le| format!("{}/{}", le.namespace, le.lease_name))
        .unwrap_or_default();
    let crash = CancellationToken::new();
    let ctx = Arc::new(Context::<Rc> {
        recorder: recorder(&client, &config),
        client,
        config,
        external: Box::new(external),
        failures: Mutex::new(HashMap::new()),
        crash: crash.clone(),
        crashed: Mutex::new(None),
    });
    let span = tracing::info_span!("controller", name = %ctx.config.controller_name);
    let _enter = span.enter();
    tracing::info!(
        kind = ?Kind::of::<Rc::R>(),
        namespace = ?ctx.config.namespace,
        owned = ?ctx.config.owned,
        crash_after_writes = ?ctx.config.crash_after_writes,
        "controller starting"
    );
    drop(_enter);
    let _probe = ctx.config.health.clone().map(|health| {
        AbortOnDrop(tokio::spawn(
            probe(
                probe_api,
                health,
                ctx.config.probe_interval,
                ctx.config.request_timeout,
            )
            .instrument(span.clone()),
        ))
    });
    let stream = controller.run(
        reconcile_for_controller::<Rc>,
        |_cr, _err, _ctx| Action::await_change(),
        ctx.clone(),
    );
    let health = ctx.config.health.clone();
    let drive = stream.for_each(|item| {
        match item {
            Ok((obj, action)) => tracing::debug!(object = %obj, ?action, "reconciled"),
            Err(kube::runtime::controller::Error::ReconcilerFailed(e, obj)) => {
                tracing::debug!(object = %obj, error = %e, "reconcile stopped")
            }
            Err(kube::runtime::controller::Error::QueueError(e)) => {
                tracing::warn!(error = %e, "watch failed; retrying with backoff");
                if let Some(h) = &health
                    && watch_outage(&e)
                {
                    h.api_failed(format!("watch: {e}"));
                }
            }
            Err(e) => tracing::warn!(error = %e, "controller"),
        }
        futures::future::ready(())
    });
    let lost = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        biased;
        _ = crash.cancelled() => {
            let err = ctx.crashed.lock().unwrap_or_else(|e| e.into_inner()).take();
            Err(err.unwrap_or_else(|| ShimError::Controller("crashed".into())))
        }
        _ = lost => {
            tracing::error!(parent: &span, lease = %lease, "lost the leader Lease; stopping at once");
            telemetry::set_leader(&ctx.config.controller_name, false);
            Err(ShimError::LostLeadership { lease: lease.clone() })
        }
        _ = drive.instrument(span.clone()) => Ok(()),
    };
    if let (Ok(()), Some(l)) = (&result, leadership) {
        l.release().await;
    }
    if let Some(h) = &ctx.config.health {
        h.set_not_ready("the controller stopped");
    }
    match &result {
        Ok(()) => tracing::info!(parent: &span, "controller stopped"),
        Err(e) => tracing::warn!(parent: &span, error = %e, "controller stopped abruptly"),
    }
    result
}
