//! Runtime conformance: the shim on a real control plane and the cluster model, driven with the
//! same environment events, issue the same requests and end with the same objects (DESIGN §6;
//! the runtime rules R1-R5 in `anvil_shim`'s crate docs and in `anvil_cluster_model::model`).
//!
//! # The two sides
//!
//! * **Real**: the shared control plane of this test binary (etcd + kube-apiserver +
//!   kube-controller-manager from `anvil-testenv`), a fresh namespace per sequence. Every
//!   reconcile, in every sequence, is the unmodified [`anvil_shim::reconcile_once`] (quorum
//!   read, validation, the step loop with R1/R2, crash injection with
//!   [`ShimConfig::crash_after_writes`]); every Kubernetes request is executed by
//!   [`anvil_shim::execute`] against the API server. There is no re-implementation of the shim's
//!   loop (`reconcile_inner` in `crates/shim/src/runtime.rs`) in this file.
//! * **Model**: a [`ClusterMachine`] for the same reconciler, with the scope's namespace set to
//!   the real sequence's namespace, driven deterministically with its own actions: `UserCreate`,
//!   `UserEdit`, `Start`, then `Handle(0)` / `Continue` alternately, `Drop(0, reason)` or
//!   `LoseResponse(0, reason)` at the chosen request, `Crash` right after the chosen write was
//!   handled.
//!
//! # Fault injection on the real side
//!
//! The shim has no hook to fail one request, so the reconciler runs wrapped in [`Recorded`], a
//! [`Reconciler`] that delegates every call to the real one and, in between, records each
//! request the controller issues and each response it is fed (per namespace), and injects the
//! sequence's fault at the request boundary, still inside the real runtime:
//!
//! * **transient failure** (model: `Action::Drop(i, reason)`, the request is not executed): the
//!   k-th request is replaced, on its way to the runtime, by a `Get` with an empty name, which
//!   the shim answers `BadRequest` *without calling the API server* (documented in the shim's
//!   request section); the wrapper checks that answer and feeds the controller
//!   `original.error_response(reason)` instead. Nothing reaches the server, as in the model.
//!   (The shim's crash counter sees a `Get` for that request; no sequence combines a
//!   transient failure with crash injection.) An external request is not executed by the
//!   test's external shim, and the controller gets the external model's error answer.
//! * **applied, then failed** (model: `Action::LoseResponse(i, reason)`): the k-th request is
//!   executed unchanged; the wrapper replaces the response fed to the controller with
//!   `original.error_response(reason)` (external: the external model's error answer).
//! * **crash after the N-th write**: the shim's own crash injection
//!   ([`ShimConfig::with_crash_after_writes`]); the model applies `Action::Crash` right after the
//!   N-th mutating request was handled (the response was delivered but never fed to
//!   `reconcile_core`, exactly as the shim stops).
//!
//! The wrapper changes nothing else: the controller's requests, the runtime's loop and the
//! API server are the real ones.
//!
//! # What is compared
//!
//! Per sequence, a transcript of each side: the user's writes of the CR (normalised object),
//! and per reconcile every request the controller issued (verb, key and the relevant body:
//! the object of a Create/Update without its status, the status of an UpdateStatus, owners and
//! preconditions), the injected fault, the outcome (ok or the error reason) of every response
//! the controller was fed, and how the reconcile ended (done, error, crashed). Then the final
//! objects of the sequence (the CR, every object a request addressed, every object the CR
//! owns), and the external system's final state. Objects are normalised with the fidelity
//! crate's normaliser ([`normalise_real`] on real objects, [`server_defaults`] on model objects
//! the server stored, plus the few defaults it does not list: [`image_pull_policy_defaults`],
//! [`more_pod_template_defaults`]), `metadata.resourceVersion` and the allocated cluster IPs
//! are dropped, and every other token (uids, resourceVersions copied into bodies, e.g. the
//! config-version annotation of the pod templates) is renamed after the object it belongs to
//! (`<uid of key>`, `<rv n of key>`: the n-th distinct resourceVersion of that object the
//! controller saw), so equalities between tokens are compared, not their values.
//!
//! The status of a StatefulSet is not compared: on the real side the StatefulSet controller
//! writes it, and the model's built-in StatefulSet actor is not part of these sequences (the
//! controllers read only `readyReplicas`, which stays 0 without a kubelet, as in the model when
//! its actor does not run). Before every reconcile but the first, the real side waits until the
//! StatefulSet controller has stopped writing, so its status writes cannot make an Update of
//! the controller conflict (a race the model does not have while its actor is idle).
//!
//! # Sequences
//!
//! For each controller (the demo; ZooKeeper, with [`ZkModel`] as its ZooKeeper API on both
//! sides): (a) create, reconcile; (b) create, reconcile, edit, reconcile; (c) create, crash
//! after the N-th write of the first reconcile for every N, reconcile; (c') create, reconcile,
//! edit, crash after the N-th write of that reconcile for every N, reconcile; (d) create, a
//! transient failure on the k-th request of the first reconcile for every k, reconcile; (e) the
//! same with applied-then-failed. (d) and (e) use every error reason the model allows for that
//! request (`faults::transient_errors`, `faults::lost_response_errors`) for the demo, and one
//! per request, taking turns, for ZooKeeper (13 requests). Every sequence must end done on both
//! sides. The number of sequences, requests and comparisons is printed (`--nocapture`); with
//! `ANVIL_CONFORMANCE_TRANSCRIPTS=1`, every real transcript too.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anvil_checker::Machine;
use anvil_cluster_model::model::faults::{lost_response_errors, transient_errors};
use anvil_cluster_model::model::{Ongoing, Pending};
use anvil_cluster_model::{
    Action, ClusterMachine, Etcd, ExternalModel, Faults, KindRegistry, ModelReconciler,
    NoExternalModel, Scope, StateOf,
};
use anvil_demo::{DemoApp, DemoController};
use anvil_fidelity::compare::{normalise_real, server_defaults};
use anvil_fidelity::kinds::TestKind;
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{
    ApiError, ErrorReason, KubeRequest, KubeResponse, NoExternal, Reconciler, Request, Response,
};
use anvil_shim::{
    ExternalShim, FnShim, NoExternalShim, Outcome, ShimConfig, execute, reconcile_once,
};
use anvil_testenv::ControlPlane;
use anvil_zookeeper::reconciler::client_service_name;
use anvil_zookeeper::verify::ZkModel;
use anvil_zookeeper::{
    ZkRequest, ZkResponse, ZnodeStore, ZookeeperCluster, ZookeeperClusterSpec, ZookeeperController,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde_json::{Value, json};

/// Real sequences running at once (each in its own namespace).
const PARALLEL: usize = 8;
/// How long the StatefulSet controller may keep writing before a reconcile.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Sequences
// ---------------------------------------------------------------------------------------------

/// The fault injected into one reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Stop right after the N-th mutating request (the shim's crash injection / `Crash`).
    CrashAfterWrites(usize),
    /// The k-th request (1-based) is not executed and answered with `reason` (`Drop`).
    Transient {
        k: usize,
        reason: ErrorReason,
    },
    /// The k-th request is executed, the controller gets `reason` (`LoseResponse`).
    Lost {
        k: usize,
        reason: ErrorReason,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => write!(f, "no fault"),
            Fault::CrashAfterWrites(n) => write!(f, "crash after write {n}"),
            Fault::Transient { k, reason } => write!(f, "transient {reason:?} on request {k}"),
            Fault::Lost { k, reason } => write!(f, "applied-then-failed {reason:?} on request {k}"),
        }
    }
}

/// An environment event.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The user creates the CR with spec 0.
    Create,
    /// The user sets the CR's spec to spec `i`.
    Edit(usize),
    /// One complete reconcile (or until the injected crash).
    Reconcile(Fault),
}

#[derive(Clone, Debug)]
struct Sequence {
    name: String,
    steps: Vec<Step>,
}

impl Sequence {
    fn new(name: impl Into<String>, steps: Vec<Step>) -> Self {
        Sequence {
            name: name.into(),
            steps,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Traces
// ---------------------------------------------------------------------------------------------

/// What one side did, in order.
#[derive(Clone, Debug)]
enum Ev<Q, P> {
    /// The CR as stored after a user's create or edit.
    Cr(DynamicObject),
    /// A reconcile starts.
    Reconcile(Fault),
    /// The controller issued this request.
    Req(Request<Q>),
    /// The fault fired on the last request.
    Injected,
    /// The controller was fed this response.
    Resp(Response<P>),
    /// The reconcile ended.
    End(String),
}

fn end_of_outcome(o: &Outcome) -> String {
    match o {
        Outcome::NotFound => "not found".into(),
        Outcome::Invalid(_) => "invalid".into(),
        Outcome::Done { .. } => "done".into(),
        Outcome::Error { .. } => "error".into(),
        Outcome::Crashed { writes, .. } => format!("crashed after write {writes}"),
    }
}

fn end_of_state<R: Reconciler>(t: &R::T) -> String {
    if R::reconcile_done(t) {
        "done".into()
    } else if R::reconcile_error(t) {
        "error".into()
    } else {
        format!("neither done nor error: {t:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// The real side: the recording, fault-injecting wrapper around the reconciler
// ---------------------------------------------------------------------------------------------

/// A fault armed on a request the controller issued, waiting for its response.
enum Armed<Q> {
    Transient(KubeRequest, ErrorReason),
    Lost(KubeRequest, ErrorReason),
    /// A transient failure (the external shim was told to skip it) or a lost response of an
    /// external request: the controller gets the external model's error answer.
    External(Q),
}

/// The error answer of an external request (the external model's `drop_response`).
type DropExternal<Q, P> = Box<dyn Fn(&Q) -> Option<P> + Send>;

/// The record of one namespace (one sequence) on the real side.
struct RealLog<Q, P> {
    events: Vec<Ev<Q, P>>,
    fault: Fault,
    /// Requests issued in the current reconcile.
    issued: usize,
    armed: Option<Armed<Q>>,
    /// Set for a transient failure of an external request: the external shim must not
    /// execute the next request (it clears the flag).
    skip_external: bool,
    drop_external: Option<DropExternal<Q, P>>,
}

impl<Q, P> Default for RealLog<Q, P> {
    fn default() -> Self {
        RealLog {
            events: Vec::new(),
            fault: Fault::None,
            issued: 0,
            armed: None,
            skip_external: false,
            drop_external: None,
        }
    }
}

/// Real-side records by namespace (`Box<RealLog<Q, P>>`): the wrapper's functions are static.
static LOGS: LazyLock<Mutex<HashMap<String, Box<dyn Any + Send>>>> =
    LazyLock::new(Default::default);

fn with_log<Q: Send + 'static, P: Send + 'static, T>(
    ns: &str,
    f: impl FnOnce(&mut RealLog<Q, P>) -> T,
) -> T {
    let mut logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    let log = logs
        .entry(ns.to_string())
        .or_insert_with(|| Box::new(RealLog::<Q, P>::default()));
    f(log
        .downcast_mut()
        .expect("one reconciler type per namespace"))
}

fn take_log<Q: Send + 'static, P: Send + 'static>(ns: &str) -> RealLog<Q, P> {
    let log = LOGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(ns)
        .expect("a record for the namespace");
    *log.downcast().expect("one reconciler type per namespace")
}

/// `Rc`, recording its requests and responses and injecting the armed fault (module docs).
struct Recorded<Rc>(PhantomData<fn() -> Rc>);

impl<Rc: Reconciler> Recorded<Rc> {
    /// The response the controller is fed: the runtime's, or the injected error.
    fn fed(
        log: &mut RealLog<Rc::ExternalRequest, Rc::ExternalResponse>,
        resp: Option<Response<Rc::ExternalResponse>>,
    ) -> Option<Response<Rc::ExternalResponse>> {
        match log.armed.take() {
            None => resp,
            Some(Armed::Transient(original, reason)) => {
                // The substitute was answered by the shim itself (it never reached the server).
                match resp {
                    Some(Response::Kube(KubeResponse::Get(Err(e))))
                        if e.reason == ErrorReason::BadRequest => {}
                    other => panic!(
                        "the substitute of a transient failure got {other:?}, not the shim's \
                         BadRequest"
                    ),
                }
                let e = ApiError::new(
                    reason,
                    "transient failure (injected by the conformance test)",
                );
                Some(Response::Kube(original.error_response(e)))
            }
            Some(Armed::Lost(original, reason)) => {
                let got = resp.as_ref().and_then(Response::kube).map(verb_of_response);
                assert_eq!(
                    got,
                    Some(original.verb()),
                    "the lost response answers the request"
                );
                let e = ApiError::new(reason, "response lost (injected by the conformance test)");
                Some(Response::Kube(original.error_response(e)))
            }
            Some(Armed::External(q)) => {
                assert!(
                    matches!(resp, Some(Response::External(_))) && !log.skip_external,
                    "the external shim answered (and took the skip flag): {resp:?}"
                );
                let drop = log.drop_external.as_ref().expect("an external model");
                let answer = drop(&q).expect("the external model has an error answer");
                Some(Response::External(answer))
            }
        }
    }

    /// The request the runtime executes for the one the controller issued.
    fn issue(
        log: &mut RealLog<Rc::ExternalRequest, Rc::ExternalResponse>,
        req: Request<Rc::ExternalRequest>,
    ) -> Request<Rc::ExternalRequest> {
        log.events.push(Ev::Req(req.clone()));
        log.issued += 1;
        match (log.fault, &req) {
            (Fault::Transient { k, reason }, Request::Kube(kreq)) if k == log.issued => {
                log.events.push(Ev::Injected);
                log.armed = Some(Armed::Transient(kreq.clone(), reason));
                let kind = match kreq {
                    KubeRequest::List { kind, .. } => kind.clone(),
                    other => other.key().expect("a keyed request").kind,
                };
                // A Get without a name: answered BadRequest by the shim, never sent.
                Request::Kube(KubeRequest::Get(ObjectRef::new(kind, "", "")))
            }
            (Fault::Lost { k, reason }, Request::Kube(kreq)) if k == log.issued => {
                log.events.push(Ev::Injected);
                log.armed = Some(Armed::Lost(kreq.clone(), reason));
                req
            }
            (Fault::Transient { k, .. } | Fault::Lost { k, .. }, Request::External(q))
                if k == log.issued =>
            {
                log.events.push(Ev::Injected);
                log.skip_external = matches!(log.fault, Fault::Transient { .. });
                log.armed = Some(Armed::External(q.clone()));
                req
            }
            _ => req,
        }
    }
}

impl<Rc: Reconciler> Reconciler for Recorded<Rc> {
    type R = Rc::R;
    type T = Rc::T;
    type ExternalRequest = Rc::ExternalRequest;
    type ExternalResponse = Rc::ExternalResponse;

    fn reconcile_init_state() -> Rc::T {
        Rc::reconcile_init_state()
    }

    fn reconcile_core(
        cr: &Rc::R,
        resp: Option<Response<Rc::ExternalResponse>>,
        state: Rc::T,
    ) -> (Rc::T, Option<Request<Rc::ExternalRequest>>) {
        let ns = kube::Resource::meta(cr)
            .namespace
            .clone()
            .unwrap_or_default();
        with_log(&ns, |log| {
            let resp = Self::fed(log, resp);
            if let Some(r) = &resp {
                log.events.push(Ev::Resp(r.clone()));
            }
            let (next, req) = Rc::reconcile_core(cr, resp, state);
            (next, req.map(|r| Self::issue(log, r)))
        })
    }

    fn reconcile_done(state: &Rc::T) -> bool {
        Rc::reconcile_done(state)
    }

    fn reconcile_error(state: &Rc::T) -> bool {
        Rc::reconcile_error(state)
    }

    fn validate(cr: &Rc::R) -> Result<(), String> {
        Rc::validate(cr)
    }
}

// ---------------------------------------------------------------------------------------------
// A controller under test
// ---------------------------------------------------------------------------------------------

/// The real side's external system for one sequence: the shim, and a description of its final
/// state (compared with the model's external state, `{:?}`).
struct RealExternal<Q, P> {
    shim: Box<dyn ExternalShim<Q, P>>,
    state: Box<dyn Fn() -> String + Send + Sync>,
}

/// A controller under test and what both sides need to know about it.
struct Subject<R: Reconciler, X> {
    /// Name prefix of namespaces and of the shim's controller.
    name: &'static str,
    /// The kinds the model's API server knows.
    kinds: KindRegistry,
    /// The external system's model.
    external: fn() -> X,
    /// The real side's external system (given a client of the control plane).
    real_external: fn(&kube::Client) -> RealExternal<R::ExternalRequest, R::ExternalResponse>,
    /// The CR specs: created with the first; `Step::Edit(i)` switches to the i-th.
    specs: Vec<Value>,
    /// Name of the CR.
    cr_name: &'static str,
    /// The kinds whose objects are compared at the end (the CR's kind is added).
    kinds_compared: Vec<Kind>,
    /// Further normalisation of every compared object (both sides), after the generic one.
    normalise: fn(&mut Value),
    /// Every error reason for every request of the first reconcile in (d)/(e); otherwise one
    /// reason per request, taking turns (to keep the test short for long reconciles).
    every_reason: bool,
}

// ---------------------------------------------------------------------------------------------
// The model side
// ---------------------------------------------------------------------------------------------

struct ModelSide<R: ModelReconciler, X: ExternalModel> {
    m: ClusterMachine<R, X>,
    s: StateOf<R, X>,
    events: Vec<Ev<R::ExternalRequest, R::ExternalResponse>>,
}

impl<R, X> ModelSide<R, X>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    fn new(subject: &Subject<R, X>, namespace: &str, edits: u8) -> Self {
        let scope = Scope {
            namespace: namespace.into(),
            name: subject.cr_name.into(),
            crs: 1,
            specs: subject.specs.clone(),
            max_edits: edits,
            max_deletes: 0,
            faults: Faults {
                crash: true,
                drop: true,
                transient: true,
                lost_response: true,
                ..Faults::default()
            },
            max_stale_requests: 0,
            max_objects_per_kind: anvil_cluster_model::scope::DEFAULT_OBJECT_BOUND,
            others: Vec::new(),
            objects: Vec::new(),
        };
        // step by step: the comparison looks at each answer before the reconcile processes
        // it (the reductions' eager steps fold the two; `eager_steps.rs` and
        // `reductions.rs` check that they change nothing)
        let m = ClusterMachine::<R, X>::new(subject.kinds.clone(), scope, (subject.external)())
            .with_reductions(false);
        let s = m.init_states().remove(0);
        ModelSide {
            m,
            s,
            events: Vec::new(),
        }
    }

    fn apply(&mut self, a: Action) {
        self.s = self
            .m
            .next_state(&self.s, &a)
            .unwrap_or_else(|| panic!("the model does not allow {a:?} here"));
    }

    fn cr(&self) -> DynamicObject {
        self.s.etcd.objects[&self.m.cr_key()].clone()
    }

    fn run(&mut self, steps: &[Step]) {
        for step in steps {
            match *step {
                Step::Create => {
                    self.apply(Action::UserCreate(0));
                    self.events.push(Ev::Cr(self.cr()));
                }
                Step::Edit(i) => {
                    self.apply(Action::UserEdit(0, i));
                    self.events.push(Ev::Cr(self.cr()));
                }
                Step::Reconcile(fault) => self.reconcile(fault),
            }
        }
    }

    fn end(&mut self, how: String) {
        self.events.push(Ev::End(how));
    }

    /// One reconcile: `Start`, then `Handle(0)` (or the fault) and `Continue` until the
    /// reconcile ends.
    fn reconcile(&mut self, fault: Fault) {
        self.events.push(Ev::Reconcile(fault));
        let key = self.m.cr_key();
        assert!(
            !self.s.ongoing.contains_key(&key) && self.s.network.is_empty(),
            "a reconcile starts from a quiet model"
        );
        self.apply(Action::Start(key.clone()));
        if !self.s.ongoing.contains_key(&key) && self.s.network.is_empty() {
            let cr: R::R = self.cr().to_typed().expect("the CR decodes");
            let how = if R::validate(&cr).is_err() {
                "invalid".to_string()
            } else {
                end_of_state::<R>(&R::reconcile_init_state())
            };
            return self.end(how);
        }
        let (mut issued, mut writes) = (0, 0);
        loop {
            if let Some(msg) = self.s.network.first().cloned() {
                assert!(
                    self.s.network.len() == 1 && !msg.stale,
                    "one live request in flight"
                );
                issued += 1;
                self.events.push(Ev::Req(msg.req.clone()));
                let action = match fault {
                    Fault::Transient { k, reason } if k == issued => {
                        self.events.push(Ev::Injected);
                        Action::Drop(0, reason)
                    }
                    Fault::Lost { k, reason } if k == issued => {
                        self.events.push(Ev::Injected);
                        Action::LoseResponse(0, reason)
                    }
                    _ => Action::Handle(0),
                };
                let before = self.s.ongoing.get(&key).cloned();
                self.apply(action);
                if matches!(&msg.req, Request::Kube(k) if k.is_mutating()) {
                    writes += 1;
                    if fault == Fault::CrashAfterWrites(writes) {
                        self.apply(Action::Crash);
                        return self.end(format!("crashed after write {writes}"));
                    }
                }
                match self.s.ongoing.get(&key) {
                    Some(Ongoing {
                        pending: Pending::Ready(r),
                        ..
                    }) => {
                        let r = r.clone();
                        self.events.push(Ev::Resp(r));
                    }
                    Some(o) => panic!("after its request was answered, the reconcile is {o:?}"),
                    // R1: the request was sent together with done/error; the reconcile ends.
                    None => {
                        let local = before.expect("the reconcile was ongoing").local;
                        return self.end(end_of_state::<R>(&local));
                    }
                }
                continue;
            }
            let o = self
                .s
                .ongoing
                .get(&key)
                .cloned()
                .expect("an ongoing reconcile");
            self.apply(Action::Continue(key.clone()));
            if !self.s.ongoing.contains_key(&key) {
                // The step ended the reconcile without a request: replay the (pure) step to
                // tell done from error.
                let local = if R::reconcile_done(&o.local) || R::reconcile_error(&o.local) {
                    o.local
                } else {
                    let resp = match o.pending {
                        Pending::Ready(r) => Some(r),
                        Pending::Idle => None,
                        Pending::Waiting => unreachable!("Continue needs no request in flight"),
                    };
                    let cr: R::R = o.cr.to_typed().expect("the CR decodes");
                    R::reconcile_core(&cr, resp, o.local).0
                };
                return self.end(end_of_state::<R>(&local));
            }
        }
    }

    /// The objects of the compared kinds at the end.
    fn objects(&self, compared: &BTreeSet<Kind>) -> Vec<DynamicObject> {
        self.s
            .etcd
            .objects
            .values()
            .filter(|o| compared.contains(o.kind()))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The real side
// ---------------------------------------------------------------------------------------------

async fn create_real(client: &kube::Client, cr: DynamicObject) -> DynamicObject {
    match execute(client, &KubeRequest::Create(cr)).await {
        KubeResponse::Create(Ok(o)) => o,
        other => panic!("creating the CR: {other:?}"),
    }
}

async fn edit_real(client: &kube::Client, key: &ObjectRef, spec: &Value) -> DynamicObject {
    let current = match execute(client, &KubeRequest::Get(key.clone())).await {
        KubeResponse::Get(Ok(o)) => o,
        other => panic!("reading the CR: {other:?}"),
    };
    let new = current.modify(|p| {
        p.body.insert("spec".into(), spec.clone());
    });
    match execute(client, &KubeRequest::Update(new)).await {
        KubeResponse::Update(Ok(o)) => o,
        other => panic!("editing the CR: {other:?}"),
    }
}

async fn list_real(client: &kube::Client, kind: &Kind, ns: &str) -> Vec<DynamicObject> {
    let req = KubeRequest::List {
        kind: kind.clone(),
        namespace: ns.into(),
        label_selector: BTreeMap::new(),
    };
    match execute(client, &req).await {
        KubeResponse::List(Ok(items)) => items,
        other => panic!("listing {kind} in {ns}: {other:?}"),
    }
}

/// Waits until the StatefulSet controller has caught up with every StatefulSet of `ns`
/// (`status.observedGeneration` is the generation) and has stopped writing (no
/// resourceVersion changed for 300 ms).
async fn settle_statefulsets(cp: &ControlPlane, client: &kube::Client, ns: &str) {
    let kind = Kind::of::<StatefulSet>();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last: Option<(Instant, Vec<String>)> = None;
    loop {
        let items = list_real(client, &kind, ns).await;
        let observed = items.iter().all(|s| {
            let generation = s.metadata().generation;
            let seen = s
                .status()
                .and_then(|st| st.get("observedGeneration"))
                .and_then(Value::as_i64);
            generation.is_some() && seen == generation
        });
        let rvs: Vec<String> = items
            .iter()
            .map(|s| s.resource_version().unwrap_or_default().to_string())
            .collect();
        match &last {
            Some((since, prev)) if observed && *prev == rvs => {
                if since.elapsed() >= Duration::from_millis(300) {
                    return;
                }
            }
            _ => last = Some((Instant::now(), rvs)),
        }
        assert!(
            Instant::now() < deadline,
            "the StatefulSets of {ns} did not settle within {SETTLE_TIMEOUT:?}\n{}",
            cp.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct RealSide<Q, P> {
    events: Vec<Ev<Q, P>>,
    objects: Vec<DynamicObject>,
    /// The external system's final state.
    external: String,
}

async fn run_real<R, X>(
    cp: &ControlPlane,
    client: &kube::Client,
    subject: &Subject<R, X>,
    cr_object: &DynamicObject,
    ns: &str,
    steps: &[Step],
    compared: &BTreeSet<Kind>,
) -> RealSide<R::ExternalRequest, R::ExternalResponse>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let key = cr_object.object_ref();
    let push = |e: Ev<R::ExternalRequest, R::ExternalResponse>| {
        with_log(ns, |log: &mut RealLog<_, _>| log.events.push(e))
    };
    let external = (subject.real_external)(client);
    let model_of_external = subject.external;
    with_log(
        ns,
        |log: &mut RealLog<R::ExternalRequest, R::ExternalResponse>| {
            log.drop_external = Some(Box::new(move |q| model_of_external().drop_response(q)));
        },
    );
    let mut reconciles = 0;
    for step in steps {
        match *step {
            Step::Create => push(Ev::Cr(create_real(client, cr_object.clone()).await)),
            Step::Edit(i) => push(Ev::Cr(edit_real(client, &key, &subject.specs[i]).await)),
            Step::Reconcile(fault) => {
                if reconciles > 0 {
                    settle_statefulsets(cp, client, ns).await;
                }
                reconciles += 1;
                with_log(
                    ns,
                    |log: &mut RealLog<R::ExternalRequest, R::ExternalResponse>| {
                        log.events.push(Ev::Reconcile(fault));
                        log.fault = fault;
                        log.issued = 0;
                        log.armed = None;
                    },
                );
                let crash = match fault {
                    Fault::CrashAfterWrites(n) => Some(n),
                    _ => None,
                };
                let config = ShimConfig::new(format!("conformance-{}", subject.name))
                    .with_namespace(ns)
                    .with_signal_handling(false)
                    .with_crash_after_writes(crash);
                let outcome = reconcile_once::<Recorded<R>>(
                    client,
                    &config,
                    external.shim.as_ref(),
                    &key.namespace,
                    &key.name,
                )
                .await
                .unwrap_or_else(|e| panic!("reconcile in {ns}: {e}"));
                push(Ev::End(end_of_outcome(&outcome)));
            }
        }
    }
    let mut objects = Vec::new();
    for kind in compared {
        objects.extend(list_real(client, kind, ns).await);
    }
    RealSide {
        events: take_log(ns).events,
        objects,
        external: (external.state)(),
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation and comparison
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Real,
    Model,
}

/// The fidelity crate's kind for the normaliser: its built-in kinds, and `Widget` (a custom
/// resource: no server defaults) for custom resources.
fn test_kind(kind: &Kind) -> TestKind {
    TestKind::ALL
        .into_iter()
        .find(|t| t.kind() == *kind)
        .filter(|t| *t != TestKind::Widget)
        .unwrap_or(TestKind::Widget)
}

/// Names for the tokens one side saw: every uid and resourceVersion is named after its object.
#[derive(Default)]
struct Names {
    uid: HashMap<String, String>,
    rv: HashMap<String, String>,
    rvs_per_object: HashMap<String, usize>,
}

impl Names {
    fn observe(&mut self, o: &DynamicObject) {
        let key = o.object_ref().to_string();
        if let Some(uid) = o.uid() {
            self.uid
                .entry(uid.to_string())
                .or_insert_with(|| format!("<uid of {key}>"));
        }
        if let Some(rv) = o.resource_version()
            && !self.rv.contains_key(rv)
        {
            let n = self.rvs_per_object.entry(key.clone()).or_default();
            self.rv.insert(rv.to_string(), format!("<rv {n} of {key}>"));
            *n += 1;
        }
    }

    fn observe_request<Q>(&mut self, r: &Request<Q>) {
        if let Request::Kube(
            KubeRequest::Create(o)
            | KubeRequest::Update(o)
            | KubeRequest::UpdateStatus(o)
            | KubeRequest::GetThenUpdate { obj: o, .. }
            | KubeRequest::GetThenUpdateStatus { obj: o, .. },
        ) = r
        {
            self.observe(o);
        }
    }

    fn observe_response<P>(&mut self, r: &Response<P>) {
        match r {
            Response::Kube(KubeResponse::List(Ok(items))) => {
                items.iter().for_each(|o| self.observe(o))
            }
            Response::Kube(k) => {
                if let Some(o) = k.object() {
                    self.observe(o);
                }
            }
            Response::External(_) => {}
        }
    }

    fn of<Q, P>(events: &[Ev<Q, P>], objects: &[DynamicObject]) -> Names {
        let mut n = Names::default();
        for e in events {
            match e {
                Ev::Cr(o) => n.observe(o),
                Ev::Req(r) => n.observe_request(r),
                Ev::Resp(r) => n.observe_response(r),
                Ev::Reconcile(_) | Ev::Injected | Ev::End(_) => {}
            }
        }
        objects.iter().for_each(|o| n.observe(o));
        n
    }

    fn rename(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(n) = self.uid.get(s.as_str()).or_else(|| self.rv.get(s.as_str())) {
                    *s = n.clone();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.rename(x)),
            Value::Object(m) => m.values_mut().for_each(|x| self.rename(x)),
            _ => {}
        }
    }
}

/// An object in comparable form. `stored`: it came from the server (or is derived from an
/// object that did), so the model's copy gets the real server's defaults.
/// How one side's objects are normalised.
#[derive(Clone, Copy)]
struct Norm<'a> {
    side: Side,
    names: &'a Names,
    /// The subject's own normalisation ([`Subject::normalise`]).
    extra: fn(&mut Value),
}

/// Where an object in a transcript comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Written by the controller from scratch (a Create): no server defaults on either side.
    Written,
    /// Written by the controller from an object it read (an Update: the stored object with the
    /// desired one laid over it): the server defaults it kept are added to the model's copy
    /// (`chain::overlay_json` merges named list items, volume claim templates included).
    Derived,
    /// As the server stores it: every server default is added to the model's copy.
    Stored,
}

/// An object in comparable form.
fn norm_object(n: Norm, o: &DynamicObject, origin: Origin, keep_status: bool) -> Value {
    let tk = test_kind(o.kind());
    let mut j = o.to_json();
    // A headless Service's `clusterIP: None` is the controller's, not an allocation.
    let headless = j.pointer("/spec/clusterIP") == Some(&json!("None"));
    match n.side {
        Side::Real => normalise_real(tk, &mut j),
        Side::Model if origin != Origin::Written => {
            image_pull_policy_defaults(&mut j);
            more_pod_template_defaults(&mut j, true);
            server_defaults(tk, &mut j);
        }
        Side::Model => {}
    }
    if tk == TestKind::Service
        && let Some(spec) = j.get_mut("spec").and_then(Value::as_object_mut)
    {
        // The allocated addresses are the server's (normalise_real drops them on the real side).
        spec.remove("clusterIPs");
        spec.remove("clusterIP");
        if headless {
            spec.insert("clusterIP".into(), json!("None"));
        }
    }
    if let Some(meta) = j.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    if !keep_status && let Some(m) = j.as_object_mut() {
        m.remove("status");
    }
    (n.extra)(&mut j);
    n.names.rename(&mut j);
    j
}

/// The real server's default `imagePullPolicy` of a pod template's containers: `Always` for an
/// image without a tag or with the tag `latest`, `IfNotPresent` otherwise (a digest counts as a
/// tag). Applied to the model's stored objects *before* [`server_defaults`], which sets
/// `IfNotPresent` whatever the image (right only for tagged images).
fn image_pull_policy_defaults(j: &mut Value) {
    let Some(Value::Array(containers)) = j.pointer_mut("/spec/template/spec/containers") else {
        return;
    };
    for c in containers.iter_mut().filter_map(Value::as_object_mut) {
        let Some(image) = c.get("image").and_then(Value::as_str) else {
            continue;
        };
        let last = image.rsplit('/').next().unwrap_or(image);
        let latest =
            !last.contains('@') && last.split_once(':').is_none_or(|(_, tag)| tag == "latest");
        let policy = if latest { "Always" } else { "IfNotPresent" };
        c.entry("imagePullPolicy").or_insert_with(|| policy.into());
    }
}

/// More of the real server's defaults in a StatefulSet that [`server_defaults`] does not list
/// (FIDELITY.md, "Server defaults"): container ports' `protocol`, ConfigMap and Secret volumes'
/// `defaultMode`, and (`claims`) the volume claim templates' `spec.volumeMode` and `status`.
/// Only for comparing objects: a controller that *reads* these fields still sees the model's
/// objects without them (see the ZooKeeper finding at `zookeeper_shim_and_model_agree`).
fn more_pod_template_defaults(j: &mut Value, claims: bool) {
    if let Some(Value::Array(containers)) = j.pointer_mut("/spec/template/spec/containers") {
        for c in containers.iter_mut() {
            if let Some(Value::Array(ports)) = c.get_mut("ports") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert_with(|| json!("TCP"));
                }
            }
        }
    }
    if let Some(Value::Array(volumes)) = j.pointer_mut("/spec/template/spec/volumes") {
        for v in volumes.iter_mut() {
            for source in ["configMap", "secret"] {
                if let Some(m) = v.get_mut(source).and_then(Value::as_object_mut) {
                    m.entry("defaultMode").or_insert_with(|| json!(420));
                }
            }
        }
    }
    if !claims {
        return;
    }
    if let Some(Value::Array(templates)) = j.pointer_mut("/spec/volumeClaimTemplates") {
        for c in templates.iter_mut().filter_map(Value::as_object_mut) {
            c.entry("status")
                .or_insert_with(|| json!({"phase": "Pending"}));
            if let Some(spec) = c.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("volumeMode")
                    .or_insert_with(|| json!("Filesystem"));
            }
        }
    }
}

/// Whose status is compared in the final objects: not a StatefulSet's (module docs).
fn status_compared(kind: &Kind) -> bool {
    *kind != Kind::of::<StatefulSet>()
}

fn norm_request<Q: fmt::Debug>(n: Norm, r: &Request<Q>) -> Value {
    let k = match r {
        Request::External(q) => return json!({ "external": format!("{q:?}") }),
        Request::Kube(k) => k,
    };
    let named = |v: Value| {
        let mut v = v;
        n.names.rename(&mut v);
        v
    };
    let owner = |o: &anvil_objects::Owner| serde_json::to_value(o).expect("an owner serialises");
    match k {
        KubeRequest::Get(key) => json!({"verb": "Get", "key": key.to_string()}),
        KubeRequest::List {
            kind,
            namespace,
            label_selector,
        } => json!({"verb": "List", "kind": kind.to_string(), "namespace": namespace,
                    "labels": label_selector}),
        KubeRequest::Create(o) => {
            json!({"verb": "Create", "object": norm_object(n, o, Origin::Written, true)})
        }
        KubeRequest::Update(o) => {
            json!({"verb": "Update", "object": norm_object(n, o, Origin::Derived, false)})
        }
        KubeRequest::UpdateStatus(o) => json!({"verb": "UpdateStatus",
            "key": o.object_ref().to_string(), "status": named(o.status().cloned().into())}),
        KubeRequest::GetThenUpdate { obj, owner: w } => json!({"verb": "GetThenUpdate",
            "object": norm_object(n, obj, Origin::Derived, false), "owner": named(owner(w))}),
        KubeRequest::GetThenUpdateStatus { obj, owner: w } => json!({
            "verb": "GetThenUpdateStatus", "key": obj.object_ref().to_string(),
            "status": named(obj.status().cloned().into()), "owner": named(owner(w))}),
        KubeRequest::Delete { key, preconditions } => json!({"verb": "Delete",
            "key": key.to_string(),
            "uid": named(preconditions.as_ref().and_then(|p| p.uid.clone()).into()),
            "resourceVersion precondition": preconditions.as_ref()
                .is_some_and(|p| p.resource_version.is_some())}),
        KubeRequest::GetThenDelete { key, owner: w } => json!({"verb": "GetThenDelete",
            "key": key.to_string(), "owner": named(owner(w))}),
    }
}

fn verb_of_response(r: &KubeResponse) -> &'static str {
    match r {
        KubeResponse::Get(_) => "Get",
        KubeResponse::List(_) => "List",
        KubeResponse::Create(_) => "Create",
        KubeResponse::Delete(_) => "Delete",
        KubeResponse::Update(_) => "Update",
        KubeResponse::UpdateStatus(_) => "UpdateStatus",
        KubeResponse::GetThenUpdate(_) => "GetThenUpdate",
        KubeResponse::GetThenUpdateStatus(_) => "GetThenUpdateStatus",
        KubeResponse::GetThenDelete(_) => "GetThenDelete",
    }
}

fn norm_response<P: fmt::Debug>(r: &Response<P>) -> String {
    match r {
        Response::External(p) => format!("external {p:?}"),
        Response::Kube(k) => match k.error() {
            None => format!("{} ok", verb_of_response(k)),
            Some(e) => format!("{} failed: {:?}", verb_of_response(k), e.reason),
        },
    }
}

/// One side's transcript: one line per event.
fn transcript<Q: fmt::Debug, P: fmt::Debug>(n: Norm, events: &[Ev<Q, P>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Ev::Cr(o) => format!(
                "user writes the CR: {}",
                norm_object(n, o, Origin::Stored, true)
            ),
            Ev::Reconcile(f) => format!("reconcile ({f})"),
            Ev::Req(r) => format!("  request {}", norm_request(n, r)),
            Ev::Injected => "  (fault injected)".to_string(),
            Ev::Resp(r) => format!("  response {}", norm_response(r)),
            Ev::End(how) => format!("  ends: {how}"),
        })
        .collect()
}

fn final_objects(n: Norm, objects: &[DynamicObject]) -> BTreeMap<String, Value> {
    objects
        .iter()
        .map(|o| {
            (
                o.object_ref().to_string(),
                norm_object(n, o, Origin::Stored, status_compared(o.kind())),
            )
        })
        .collect()
}

/// A value for a difference report: compact JSON, cut at 200 characters.
fn short(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "(absent)".into();
    };
    let mut t = v.to_string();
    if t.len() > 200 {
        let mut cut = 200;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push_str("...");
    }
    t
}

fn json_diff(path: &str, r: &Value, m: &Value, out: &mut Vec<String>) {
    match (r, m) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => json_diff(&p, x, y, out),
                    (x, y) => out.push(format!("{p}: real {}, model {}", short(x), short(y))),
                }
            }
        }
        _ if r != m => out.push(format!(
            "{path}: real {}, model {}",
            short(Some(r)),
            short(Some(m))
        )),
        _ => {}
    }
}

/// The result of one sequence.
struct Compared<Q> {
    name: String,
    namespace: String,
    /// Transcript lines and final objects compared.
    comparisons: usize,
    /// Requests issued by the controller (per side: they are equal when there is no difference).
    requests: usize,
    differences: Vec<String>,
    /// The requests of each reconcile on the model side (to derive further sequences from the
    /// baseline).
    model_requests: Vec<Vec<Request<Q>>>,
}

/// What the model side of a sequence ended with.
struct ModelEnd<'a, Q, P> {
    events: &'a [Ev<Q, P>],
    objects: &'a [DynamicObject],
    /// The external system's final state.
    external: String,
}

fn compare<Q: Clone + fmt::Debug, P: fmt::Debug>(
    seq: &Sequence,
    ns: &str,
    cr_key: &ObjectRef,
    extra: fn(&mut Value),
    real: &RealSide<Q, P>,
    model: ModelEnd<Q, P>,
) -> Compared<Q> {
    let (model_events, model_objects) = (model.events, model.objects);
    let real_names = Names::of(&real.events, &real.objects);
    let model_names = Names::of(model_events, model_objects);
    let real_norm = Norm {
        side: Side::Real,
        names: &real_names,
        extra,
    };
    let model_norm = Norm {
        side: Side::Model,
        names: &model_names,
        extra,
    };
    let rt = transcript(real_norm, &real.events);
    let mt = transcript(model_norm, model_events);
    if std::env::var_os("ANVIL_CONFORMANCE_TRANSCRIPTS").is_some() {
        eprintln!(
            "sequence {} ({ns}), real side:\n{}\n",
            seq.name,
            rt.join("\n")
        );
    }
    let mut differences = Vec::new();
    let mut comparisons = 0;
    for (i, (r, m)) in rt.iter().zip(&mt).enumerate() {
        comparisons += 1;
        if r != m {
            let (rj, mj) = (
                r.split_once('{').map(|(_, j)| format!("{{{j}")),
                m.split_once('{').map(|(_, j)| format!("{{{j}")),
            );
            let mut detail = Vec::new();
            if let (Some(rj), Some(mj)) = (rj, mj)
                && let (Ok(a), Ok(b)) = (
                    serde_json::from_str::<Value>(&rj),
                    serde_json::from_str::<Value>(&mj),
                )
            {
                json_diff("", &a, &b, &mut detail);
            }
            differences.push(format!(
                "transcript line {}: differs{}\n  real:  {r}\n  model: {m}\n  context (model):\n    {}",
                i + 1,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", detail.join("; "))
                },
                mt[..=i].join("\n    ")
            ));
            break;
        }
    }
    if rt.len() != mt.len() && differences.is_empty() {
        differences.push(format!(
            "transcripts differ in length: real {} lines, model {}\n  real:\n    {}\n  model:\n    {}",
            rt.len(),
            mt.len(),
            rt.join("\n    "),
            mt.join("\n    ")
        ));
    }
    // The objects of the sequence: the CR, what the controller addressed, what the CR owns
    // (not, e.g., the `kube-root-ca.crt` ConfigMap the controller manager puts in every
    // namespace).
    let mut addressed: BTreeSet<ObjectRef> = [cr_key.clone()].into();
    for e in real.events.iter().chain(model_events) {
        if let Ev::Req(Request::Kube(k)) = e
            && let Some(key) = k.key()
        {
            addressed.insert(key);
        }
    }
    let ours = |o: &&DynamicObject| {
        addressed.contains(&o.object_ref())
            || o.metadata()
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.kind == cr_key.kind.kind() && r.name == cr_key.name)
    };
    let real_objects: Vec<DynamicObject> = real.objects.iter().filter(ours).cloned().collect();
    let model_objects: Vec<DynamicObject> = model_objects.iter().filter(ours).cloned().collect();
    let rf = final_objects(real_norm, &real_objects);
    let mf = final_objects(model_norm, &model_objects);
    comparisons += 1;
    if real.external != model.external {
        differences.push(format!(
            "the external systems' final states differ\n  real:  {}\n  model: {}",
            real.external, model.external
        ));
    }
    let keys: BTreeSet<&String> = rf.keys().chain(mf.keys()).collect();
    for k in keys {
        comparisons += 1;
        match (rf.get(k), mf.get(k)) {
            (Some(r), Some(m)) if r == m => {}
            (Some(r), Some(m)) => {
                let mut d = Vec::new();
                json_diff("", r, m, &mut d);
                differences.push(format!(
                    "final object {k} differs at {}\n  real:  {r}\n  model: {m}",
                    d.join("; ")
                ));
            }
            (r, m) => differences.push(format!(
                "final object {k}: real {}, model {}",
                r.map_or("missing".to_string(), Value::to_string),
                m.map_or("missing".to_string(), Value::to_string)
            )),
        }
    }
    for (side, t) in [("real", &rt), ("model", &mt)] {
        if t.last().map(String::as_str) != Some("  ends: done") {
            differences.push(format!("the {side} side did not end done: {:?}", t.last()));
        }
    }
    let mut per_reconcile: Vec<Vec<Request<Q>>> = Vec::new();
    for e in model_events {
        match e {
            Ev::Reconcile(_) => per_reconcile.push(Vec::new()),
            Ev::Req(r) => per_reconcile
                .last_mut()
                .expect("requests belong to a reconcile")
                .push(r.clone()),
            _ => {}
        }
    }
    Compared {
        name: seq.name.clone(),
        namespace: ns.to_string(),
        comparisons,
        requests: model_events
            .iter()
            .filter(|e| matches!(e, Ev::Req(_)))
            .count(),
        differences,
        model_requests: per_reconcile,
    }
}

// ---------------------------------------------------------------------------------------------
// Driving a sequence on both sides
// ---------------------------------------------------------------------------------------------

async fn run_sequence<R, X>(
    cp: &ControlPlane,
    client: &kube::Client,
    subject: &Subject<R, X>,
    seq: Sequence,
) -> Compared<R::ExternalRequest>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let ns = cp
        .fresh_namespace(&format!("conf-{}", subject.name))
        .await
        .unwrap_or_else(|e| panic!("a fresh namespace: {e}"));
    let edits = seq
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Edit(_)))
        .count();
    let mut model = ModelSide::new(subject, &ns, u8::try_from(edits).expect("few edits"));
    let mut compared: BTreeSet<Kind> = subject.kinds_compared.iter().cloned().collect();
    compared.insert(model.m.cr_kind().clone());
    model.run(&seq.steps);
    let model_objects = model.objects(&compared);
    let cr_object = model.m.cr_object(&subject.specs[0]);
    let real = run_real(cp, client, subject, &cr_object, &ns, &seq.steps, &compared).await;
    compare(
        &seq,
        &ns,
        &model.m.cr_key(),
        subject.normalise,
        &real,
        ModelEnd {
            events: &model.events,
            objects: &model_objects,
            external: format!("{:?}", model.s.external),
        },
    )
}

async fn run_all<R, X>(
    cp: &ControlPlane,
    client: &kube::Client,
    subject: &Subject<R, X>,
    seqs: Vec<Sequence>,
) -> Vec<Compared<R::ExternalRequest>>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    futures::stream::iter(seqs)
        .map(|s| run_sequence(cp, client, subject, s))
        .buffered(PARALLEL)
        .collect()
        .await
}

/// The sequences derived from the baseline: `first` are the requests of the first reconcile
/// after the creation, `after_edit` those of the reconcile after the edit (model side).
/// `every_reason`: see [`Subject::every_reason`].
fn derived_sequences<Q>(
    first: &[Request<Q>],
    after_edit: &[Request<Q>],
    every_reason: bool,
) -> Vec<Sequence> {
    use Step::*;
    let mut seqs = Vec::new();
    let writes = |rs: &[Request<Q>]| {
        rs.iter()
            .filter(|r| matches!(r, Request::Kube(k) if k.is_mutating()))
            .count()
    };
    for n in 1..=writes(first) {
        seqs.push(Sequence::new(
            format!("(c) create, crash after write {n}, reconcile"),
            vec![
                Create,
                Reconcile(Fault::CrashAfterWrites(n)),
                Reconcile(Fault::None),
            ],
        ));
    }
    for n in 1..=writes(after_edit) {
        seqs.push(Sequence::new(
            format!("(c') create, reconcile, edit, crash after write {n}, reconcile"),
            vec![
                Create,
                Reconcile(Fault::None),
                Edit(1),
                Reconcile(Fault::CrashAfterWrites(n)),
                Reconcile(Fault::None),
            ],
        ));
    }
    let verb = |r: &Request<Q>| match r {
        Request::Kube(k) => k.verb(),
        Request::External(_) => "external",
    };
    for (i, req) in first.iter().enumerate() {
        let k = i + 1;
        // The reasons the model allows for this request (its `transient` and `lost_response`
        // faults), every one or one per request, taking turns.
        let pick = |reasons: &[ErrorReason]| -> Vec<ErrorReason> {
            if every_reason {
                reasons.to_vec()
            } else {
                vec![reasons[i % reasons.len()]]
            }
        };
        for reason in pick(transient_errors(req, true)) {
            seqs.push(Sequence::new(
                format!(
                    "(d) create, transient {reason:?} on request {k} ({}), reconcile",
                    verb(req)
                ),
                vec![
                    Create,
                    Reconcile(Fault::Transient { k, reason }),
                    Reconcile(Fault::None),
                ],
            ));
        }
        for reason in pick(lost_response_errors(req)) {
            seqs.push(Sequence::new(
                format!(
                    "(e) create, applied-then-failed {reason:?} on request {k} ({}), reconcile",
                    verb(req)
                ),
                vec![
                    Create,
                    Reconcile(Fault::Lost { k, reason }),
                    Reconcile(Fault::None),
                ],
            ));
        }
    }
    seqs
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn report<Q>(what: &str, results: &[Compared<Q>], began: Instant) {
    let comparisons: usize = results.iter().map(|c| c.comparisons).sum();
    let requests: usize = results.iter().map(|c| c.requests).sum();
    eprintln!(
        "conformance of {what}: {} sequences, {requests} requests, {comparisons} comparisons, \
         {:.1?}",
        results.len(),
        began.elapsed()
    );
    let failures: Vec<String> = results
        .iter()
        .filter(|c| !c.differences.is_empty())
        .map(|c| {
            format!(
                "sequence {} (namespace {}):\n{}",
                c.name,
                c.namespace,
                c.differences.join("\n")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} sequences differ between the shim and the model:\n\n{}",
        failures.len(),
        results.len(),
        failures.join("\n\n")
    );
}

/// Runs (a) and (b), derives (c), (c'), (d), (e) from their model transcripts, runs them,
/// and fails with every difference.
async fn check_subject<R, X>(cp: &ControlPlane, subject: Subject<R, X>)
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    use Step::*;
    let began = Instant::now();
    let client = cp.client().await.expect("a client");
    let baseline = vec![
        Sequence::new(
            "(a) create, reconcile",
            vec![Create, Reconcile(Fault::None)],
        ),
        Sequence::new(
            "(b) create, reconcile, edit, reconcile",
            vec![
                Create,
                Reconcile(Fault::None),
                Edit(1),
                Reconcile(Fault::None),
            ],
        ),
    ];
    let mut results = run_all(cp, &client, &subject, baseline).await;
    let first = results[0].model_requests[0].clone();
    let after_edit = results[1].model_requests[1].clone();
    let writes = |rs: &[Request<R::ExternalRequest>]| {
        rs.iter()
            .any(|r| matches!(r, Request::Kube(k) if k.is_mutating()))
    };
    assert!(
        writes(&first) && writes(&after_edit),
        "the baseline reconciles write: {first:?} {after_edit:?}"
    );
    let derived = derived_sequences(&first, &after_edit, subject.every_reason);
    results.extend(run_all(cp, &client, &subject, derived).await);
    report(subject.name, &results, began);
}

fn control_plane() -> &'static ControlPlane {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    assert!(
        cp.has_controller_manager(),
        "kube-controller-manager is required (StatefulSets as on a real cluster)"
    );
    cp
}

fn demo_subject() -> Subject<DemoController, NoExternalModel> {
    demo_subject_of()
}

/// The demo's subject, for any reconciler of `DemoApp`.
fn demo_subject_of<R>() -> Subject<R, NoExternalModel>
where
    R: Reconciler<R = DemoApp, ExternalRequest = NoExternal, ExternalResponse = NoExternal>,
{
    Subject {
        name: "demo",
        kinds: anvil_demo::verify::kinds(),
        external: || NoExternalModel,
        real_external: |_| RealExternal {
            shim: Box::new(NoExternalShim),
            state: Box::new(|| format!("{:?}", ())),
        },
        specs: vec![
            json!({"replicas": 1, "image": "nginx", "message": "hello"}),
            json!({"replicas": 2, "image": "nginx", "message": "bye"}),
        ],
        cr_name: "demo",
        kinds_compared: vec![Kind::of::<ConfigMap>(), Kind::of::<StatefulSet>()],
        normalise: |_| {},
        every_reason: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shim_and_model_agree() {
    init_tracing();
    let cp = control_plane();
    cp.apply_crd(anvil_demo::crd())
        .await
        .expect("the DemoApp CRD");
    anvil_shim::register_resource::<DemoApp>();
    check_subject(cp, demo_subject()).await;
}

/// The real side's ZooKeeper API for one sequence: the external model itself ([`ZkModel`], one
/// znode store), looking at the real cluster (is the ensemble's client Service there?). No
/// ZooKeeper server runs in this test; what is compared is the runtime, which hands the
/// requests to the external shim and feeds back its answers (the real ZooKeeper client is
/// tested against a real server in `controllers/zookeeper/tests`).
fn zk_external(client: &kube::Client) -> RealExternal<ZkRequest, ZkResponse> {
    let store = Arc::new(Mutex::new(ZnodeStore::default()));
    let (client, shared) = (client.clone(), store.clone());
    let shim = FnShim(move |req: ZkRequest| {
        let (client, store) = (client.clone(), shared.clone());
        async move {
            let (namespace, name) = req.ensemble();
            let skip = with_log(namespace, |log: &mut RealLog<ZkRequest, ZkResponse>| {
                std::mem::take(&mut log.skip_external)
            });
            if skip {
                // A transient failure: not executed.
                return ZkModel.drop_response(&req).expect("an error answer");
            }
            let mut probe = ZookeeperCluster::new(name, ZookeeperClusterSpec::default());
            probe.metadata.namespace = Some(namespace.to_string());
            let svc = ObjectRef::new(
                Kind::of::<Service>(),
                namespace,
                client_service_name(&probe),
            );
            let mut view = Etcd::new();
            if let KubeResponse::Get(Ok(o)) = execute(&client, &KubeRequest::Get(svc.clone())).await
            {
                view.objects.insert(svc, o);
            }
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            ZkModel.handle(&mut store, &req, &view)
        }
    });
    RealExternal {
        shim: Box::new(shim),
        state: Box::new(move || format!("{:?}", *store.lock().unwrap_or_else(|e| e.into_inner()))),
    }
}

/// The CR as the controller reads it: the real API server applies the CRD's schema defaults,
/// the model's does not (the typed reading fills in the same values through the serde
/// defaults, see `anvil_zookeeper::verify::default_specs`), so the spec is compared as typed.
fn zk_normalise(j: &mut Value) {
    if j.get("kind") == Some(&json!("ZookeeperCluster"))
        && let Some(spec) = j.get("spec")
    {
        let typed: ZookeeperClusterSpec =
            serde_json::from_value(spec.clone()).expect("a ZookeeperCluster spec");
        j["spec"] = serde_json::to_value(typed).expect("the spec serialises");
    }
}

fn zk_subject() -> Subject<ZookeeperController, ZkModel> {
    Subject {
        name: "zk",
        kinds: anvil_zookeeper::verify::kinds(),
        external: || ZkModel,
        real_external: zk_external,
        specs: anvil_zookeeper::verify::default_specs(),
        cr_name: "zk",
        kinds_compared: vec![
            Kind::of::<Service>(),
            Kind::of::<ConfigMap>(),
            Kind::of::<StatefulSet>(),
        ],
        normalise: zk_normalise,
        every_reason: false,
    }
}

/// The ZooKeeper controller on both sides.
///
/// # Finding (fixed): the real controller rewrote its StatefulSet on every reconcile
///
/// This test first failed on every sequence in which a reconcile finds the StatefulSet
/// already created: after `Get StatefulSet`, the real side issued an `Update` of it, the model
/// went on to `Get ZookeeperCluster`. The real API server defaults `spec.volumeMode` and
/// `status` in each of `spec.volumeClaimTemplates`; the model's API server stores no server
/// defaults, and the chain's merge replaced lists whose elements have no `name` wholesale (a
/// claim template's name is `metadata.name`), so only the real side saw a difference and wrote.
/// `chain::overlay_json` now matches list elements by `metadata.name` too, which keeps the
/// server-filled fields (`crates/reconciler/tests/overlay.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_shim_and_model_agree() {
    init_tracing();
    let cp = control_plane();
    cp.apply_crd(anvil_zookeeper::crd())
        .await
        .expect("the ZookeeperCluster CRD");
    anvil_shim::register_resource::<ZookeeperCluster>();
    check_subject(cp, zk_subject()).await;
}

// ---------------------------------------------------------------------------------------------
// A probe of the runtime rules the example controllers do not reach
// ---------------------------------------------------------------------------------------------

/// The label (value: the namespace) of the probe's ConfigMaps.
const PROBE_LABEL: &str = "conformance.anvil.dev/probe";
const PROBE_DONE: u8 = 100;
const PROBE_ERROR: u8 = 101;

/// A reconciler of `DemoApp` written for this test, to reach the runtime rules the demo and
/// ZooKeeper controllers do not: **R3**, a `List` with an empty namespace (every namespace;
/// the label selects this sequence's ConfigMaps) whose order is written into a ConfigMap;
/// **R4**, `GetThenUpdate` and `GetThenDelete` (and, in (d), their `Conflict` as a transient
/// failure: the shim's answer when its retries give up); **R1**, the last step returns done
/// *together with* a Create, which is executed and whose response is discarded; and steps that
/// return no request (the next step gets no response). Every step is idempotent, so a
/// reconcile after a crash or a failure converges.
///
/// Steps: List; Create `a` unless listed; Create `b` unless listed; GetThenUpdate `a` (data: the
/// listed keys, in order); GetThenDelete `b`; List; done with Create `c` (data: the listed keys).
struct Probe;

fn probe_config_map(cr: &DemoApp, name: &str, seen: &[String]) -> DynamicObject {
    let ns = cr.metadata.namespace.clone().unwrap_or_default();
    let owner = anvil_reconciler::chain::owner_of(cr).expect("a stored CR has a uid");
    let cm = ConfigMap {
        metadata: anvil_objects::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.clone()),
            labels: Some([(PROBE_LABEL.to_string(), ns)].into()),
            owner_references: Some(vec![owner.controller_reference()]),
            ..Default::default()
        },
        data: Some([("seen".to_string(), seen.join(","))].into()),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).expect("a ConfigMap")
}

impl Reconciler for Probe {
    type R = DemoApp;
    /// (phase, the keys of the last List).
    type T = (u8, Vec<String>);
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;

    fn reconcile_init_state() -> Self::T {
        (0, Vec::new())
    }

    fn reconcile_core(
        cr: &DemoApp,
        resp: Option<Response<NoExternal>>,
        (phase, seen): Self::T,
    ) -> (Self::T, Option<Request<NoExternal>>) {
        let ns = cr.metadata.namespace.clone().unwrap_or_default();
        let owner = anvil_reconciler::chain::owner_of(cr).expect("a stored CR has a uid");
        let list = Request::Kube(KubeRequest::List {
            kind: Kind::of::<ConfigMap>(),
            namespace: String::new(),
            label_selector: [(PROBE_LABEL.to_string(), ns.clone())].into(),
        });
        let create = |name: &str, seen: &[String]| {
            Request::Kube(KubeRequest::Create(probe_config_map(cr, name, seen)))
        };
        let listed = |seen: &[String], name: &str| seen.contains(&format!("{ns}/{name}"));
        let keys = |items: &[DynamicObject]| {
            items
                .iter()
                .map(|o| format!("{}/{}", o.namespace(), o.name()))
                .collect::<Vec<_>>()
        };
        // A Create's answer the probe goes on after: none (nothing was sent), ok, or the object
        // exists already (an earlier reconcile created it).
        let created = |r: Option<&KubeResponse>| match r {
            None | Some(KubeResponse::Create(Ok(_))) => true,
            Some(KubeResponse::Create(Err(e))) => e.reason == ErrorReason::AlreadyExists,
            _ => false,
        };
        let kube = resp.as_ref().and_then(Response::kube);
        match (phase, kube) {
            (0, None) => ((1, seen), Some(list)),
            (1, Some(KubeResponse::List(Ok(items)))) => {
                let seen = keys(items);
                let req = (!listed(&seen, "a")).then(|| create("a", &seen));
                ((2, seen), req)
            }
            (2, r) if created(r) => {
                let req = (!listed(&seen, "b")).then(|| create("b", &seen));
                ((3, seen), req)
            }
            (3, r) if created(r) => {
                let obj = probe_config_map(cr, "a", &seen);
                let req = KubeRequest::GetThenUpdate { obj, owner };
                ((4, seen), Some(Request::Kube(req)))
            }
            (4, Some(KubeResponse::GetThenUpdate(Ok(_)))) => {
                let key = ObjectRef::new(Kind::of::<ConfigMap>(), &ns, "b");
                let req = KubeRequest::GetThenDelete { key, owner };
                ((5, seen), Some(Request::Kube(req)))
            }
            (5, Some(KubeResponse::GetThenDelete(Ok(())))) => ((6, seen), Some(list)),
            // R1: done together with a request.
            (6, Some(KubeResponse::List(Ok(items)))) => {
                let seen = keys(items);
                let req = create("c", &seen);
                ((PROBE_DONE, seen), Some(req))
            }
            (phase, r) => (
                (PROBE_ERROR, vec![format!("phase {phase} got {r:?}")]),
                None,
            ),
        }
    }

    fn reconcile_done(t: &Self::T) -> bool {
        t.0 == PROBE_DONE
    }

    fn reconcile_error(t: &Self::T) -> bool {
        t.0 == PROBE_ERROR
    }
}

fn probe_subject() -> Subject<Probe, NoExternalModel> {
    Subject {
        name: "probe",
        cr_name: "probe",
        kinds_compared: vec![Kind::of::<ConfigMap>()],
        ..demo_subject_of()
    }
}

/// The rules R1-R4 on a reconciler made to reach them ([`Probe`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_rules_probe_shim_and_model_agree() {
    init_tracing();
    let cp = control_plane();
    cp.apply_crd(anvil_demo::crd())
        .await
        .expect("the DemoApp CRD");
    anvil_shim::register_resource::<DemoApp>();
    check_subject(cp, probe_subject()).await;
}
