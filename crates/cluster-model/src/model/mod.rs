//! The cluster state machine: API server + etcd, network, controller runtime, garbage
//! collector, built-in controllers, environment and faults, composed with a [`Reconciler`].

use crate::api::Etcd;
use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
use crate::scope::Scope;
use crate::tokens::{Collector, Renaming, Tokens};
use anvil_checker::{Fairness, Machine};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, StableHasher};
use anvil_reconciler::{ApiError, ErrorReason, KubeRequest, Reconciler, Request, Response};
use serde_json::{Value, json};
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A reconciler the cluster model can check: its local state and its external messages can
/// hold resourceVersions and uids, which the model renames ([`Tokens`]). Every such
/// [`Reconciler`] is one.
pub trait ModelReconciler:
    Reconciler<T: Tokens, ExternalRequest: Tokens, ExternalResponse: Tokens>
{
}

impl<R> ModelReconciler for R
where
    R: Reconciler,
    R::T: Tokens,
    R::ExternalRequest: Tokens,
    R::ExternalResponse: Tokens,
{
}

/// A request in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Msg<Q> {
    /// Sent by an earlier incarnation of the controller (its response will be ignored).
    pub stale: bool,
    /// The custom resource whose reconcile sent it.
    pub from: ObjectRef,
    /// The request.
    pub req: Request<Q>,
}

/// Where an ongoing reconcile is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pending<P> {
    /// No request outstanding: the next step gets no response.
    Idle,
    /// A request is in flight.
    Waiting,
    /// The response arrived.
    Ready(Response<P>),
}

/// An ongoing reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ongoing<T, P> {
    /// The snapshot of the custom resource it works on.
    pub cr: DynamicObject,
    /// The reconciler's local state.
    pub local: T,
    /// Its request/response slot.
    pub pending: Pending<P>,
}

/// The environment's remaining budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EnvState {
    /// Index of the current spec in [`Scope::specs`].
    pub spec: usize,
    /// Creations left (1 + deletions).
    pub creates_left: u8,
    /// Spec edits left.
    pub edits_left: u8,
    /// CR deletions left.
    pub deletes_left: u8,
    /// Other-writer deletions left.
    pub other_deletes_left: u8,
    /// Pod losses left.
    pub pod_losses_left: u8,
}

/// Fault classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Controller crash.
    Crash,
    /// Request drop.
    Drop,
    /// Other writers.
    OtherWriter,
    /// Pod loss.
    PodLoss,
}

/// Fault switches (on = the fault may still happen).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultState {
    /// Crash switch.
    pub crash: bool,
    /// Drop switch.
    pub drop: bool,
    /// Other-writer switch.
    pub other: bool,
    /// Pod-loss switch.
    pub pod_loss: bool,
}

impl FaultState {
    fn get(&self, f: Fault) -> bool {
        match f {
            Fault::Crash => self.crash,
            Fault::Drop => self.drop,
            Fault::OtherWriter => self.other,
            Fault::PodLoss => self.pod_loss,
        }
    }
    fn set(&mut self, f: Fault, v: bool) {
        match f {
            Fault::Crash => self.crash = v,
            Fault::Drop => self.drop = v,
            Fault::OtherWriter => self.other = v,
            Fault::PodLoss => self.pod_loss = v,
        }
    }
}

/// A state of the composed system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State<T, Q, P, X> {
    /// API server storage.
    pub etcd: Etcd,
    /// Requests in flight (a multiset, kept sorted).
    pub network: Vec<Msg<Q>>,
    /// Ongoing reconciles by CR key.
    pub ongoing: BTreeMap<ObjectRef, Ongoing<T, P>>,
    /// The external system's state.
    pub external: X,
    /// Environment budget.
    pub env: EnvState,
    /// Fault switches.
    pub faults: FaultState,
}

/// The state type of [`ClusterMachine`] for reconciler `R` and external model `X`.
pub type StateOf<R, X> = State<
    <R as Reconciler>::T,
    <R as Reconciler>::ExternalRequest,
    <R as Reconciler>::ExternalResponse,
    <X as ExternalModel>::State,
>;

/// Actions (labelled transitions).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The API server (or the external system) handles the `i`-th request in flight.
    Handle(usize),
    /// Fault: the `i`-th request is dropped; an error is returned instead.
    Drop(usize),
    /// The controller runtime starts a reconcile of the CR: a quorum read of the CR (the
    /// snapshot the reconcile works on), validation, and the first `reconcile_core` step.
    /// Enabled whenever the CR exists and no reconcile of it is ongoing, so a reconcile that
    /// ends (done or error) is scheduled again.
    Start(ObjectRef),
    /// One `reconcile_core` step of the ongoing reconcile.
    Continue(ObjectRef),
    /// Fault: the controller crashes and restarts.
    Crash,
    /// A fault class is switched off.
    Disable(Fault),
    /// The garbage collector deletes an object none of whose owners exists.
    Gc(ObjectRef),
    /// A built-in controller (StatefulSet/DaemonSet) updates the object's status.
    Builtin(ObjectRef),
    /// The user creates the CR.
    UserCreate,
    /// The user sets the CR's spec to `Scope::specs[i]`.
    UserEdit(usize),
    /// The user deletes the CR.
    UserDelete,
    /// Another writer deletes the object.
    OtherDelete(ObjectRef),
    /// A pod of the StatefulSet is lost (its ready count drops).
    PodLoss(ObjectRef),
}

/// Fairness instance keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Handling of a request, keyed by its (canonical) content.
    Handle(u64),
    /// Progress of the CR's reconcile (start and steps).
    Run(ObjectRef),
    /// Garbage collection of the object.
    Gc(ObjectRef),
    /// Built-in controller working on the object.
    Builtin(ObjectRef),
    /// Disabling a fault.
    Disable(Fault),
}

/// Predicate on the cluster for the desired-state check: the custom resource, the API
/// server's objects and the external system's state (`XS`, the [`ExternalModel::State`]).
pub type MatchesFn<CR, XS> = Arc<dyn Fn(&CR, &Etcd, &XS) -> bool + Send + Sync>;

/// A [`MatchesFn`] from a predicate that only reads the API server's objects (it ignores the
/// external system's state).
pub fn matches_etcd<CR, XS>(
    f: impl Fn(&CR, &Etcd) -> bool + Send + Sync + 'static,
) -> MatchesFn<CR, XS> {
    Arc::new(move |cr, etcd, _| f(cr, etcd))
}

/// The composed machine.
pub struct ClusterMachine<R: Reconciler, X: ExternalModel> {
    /// Kinds the API server knows (including the CR kind).
    pub kinds: KindRegistry,
    /// The verification scope.
    pub scope: Scope,
    /// The external system model.
    pub external: X,
    cr_kind: Kind,
    _r: std::marker::PhantomData<fn() -> R>,
}

/// Stable hash (for ordering the network and keying fairness).
pub fn stable_hash<T: Hash>(t: &T) -> u64 {
    let mut h = StableHasher::new();
    t.hash(&mut h);
    h.finish()
}

thread_local! {
    static TYPED: RefCell<HashMap<(TypeId, u64), Box<dyn Any>>> = RefCell::new(HashMap::new());
}

type CoreKey<R> = (
    DynamicObject,
    Option<Response<<R as Reconciler>::ExternalResponse>>,
    <R as Reconciler>::T,
);
type CoreOut<R> = (
    <R as Reconciler>::T,
    Option<Request<<R as Reconciler>::ExternalRequest>>,
);

type HandleEntry = (u64, Etcd, KubeRequest, Etcd, anvil_reconciler::KubeResponse);

thread_local! {
    static CORE: RefCell<HashMap<(TypeId, u64), Box<dyn Any>>> = RefCell::new(HashMap::new());
    static HANDLE: RefCell<HashMap<u64, Vec<HandleEntry>>> =
        RefCell::new(HashMap::new());
}

/// `reconcile_core` on the typed CR, memoised per thread: it is pure and deterministic, and
/// the same (CR, response, local state) triple recurs in many interleavings.
fn memo_core<R: Reconciler>(
    cr_obj: &DynamicObject,
    resp: Option<Response<R::ExternalResponse>>,
    local: R::T,
) -> Option<CoreOut<R>> {
    let key: CoreKey<R> = (cr_obj.clone(), resp, local);
    let h = (TypeId::of::<R>(), stable_hash(&key));
    let hit = CORE.with(|c| {
        c.borrow().get(&h).and_then(|b| {
            b.downcast_ref::<Vec<(CoreKey<R>, CoreOut<R>)>>()
                .and_then(|v| v.iter().find(|(k, _)| k == &key).map(|(_, o)| o.clone()))
        })
    });
    if hit.is_some() {
        return hit;
    }
    let cr = typed::<R::R>(cr_obj)?;
    let (cr_obj, resp, local) = key.clone();
    let _ = cr_obj;
    let out = R::reconcile_core(&cr, resp, local);
    CORE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 500_000 {
            c.clear();
        }
        let e = c
            .entry(h)
            .or_insert_with(|| Box::new(Vec::<(CoreKey<R>, CoreOut<R>)>::new()));
        if let Some(v) = e.downcast_mut::<Vec<(CoreKey<R>, CoreOut<R>)>>() {
            v.push((key, out.clone()));
        }
    });
    Some(out)
}

/// `etcd.handle(req)`, memoised per thread on (etcd, request).
fn memo_handle(
    kinds: &KindRegistry,
    etcd: &mut Etcd,
    req: &KubeRequest,
) -> anvil_reconciler::KubeResponse {
    let h = stable_hash(&(kinds.id(), &*etcd, req));
    let hit = HANDLE.with(|c| {
        c.borrow().get(&h).and_then(|v| {
            v.iter()
                .find(|(id, e, r, _, _)| *id == kinds.id() && e == etcd && r == req)
                .map(|(_, _, _, e2, resp)| (e2.clone(), resp.clone()))
        })
    });
    if let Some((e2, resp)) = hit {
        *etcd = e2;
        return resp;
    }
    let before = etcd.clone();
    let resp = etcd.handle(kinds, req);
    HANDLE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 500_000 {
            c.clear();
        }
        c.entry(h)
            .or_default()
            .push((kinds.id(), before, req.clone(), etcd.clone(), resp.clone()));
    });
    resp
}

/// `obj.to_typed::<K>()`, cached per thread by content fingerprint.
pub fn typed<K>(obj: &DynamicObject) -> Option<Arc<K>>
where
    K: anvil_reconciler::CustomResource,
{
    let key = (TypeId::of::<K>(), obj.fingerprint());
    if let Some(v) = TYPED.with(|c| {
        c.borrow()
            .get(&key)
            .and_then(|b| b.downcast_ref::<Option<Arc<K>>>().cloned())
    }) {
        return v;
    }
    let v: Option<Arc<K>> = obj.to_typed::<K>().ok().map(Arc::new);
    TYPED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 200_000 {
            c.clear();
        }
        c.insert(key, Box::new(v.clone()));
    });
    v
}

/// The status a built-in controller settles on, if it manages this kind.
pub fn settled_status(obj: &DynamicObject) -> Option<Value> {
    let generation = obj.metadata().generation.unwrap_or(0);
    match (obj.kind().api_version(), obj.kind().kind()) {
        ("apps/v1", "StatefulSet") => {
            let n = obj
                .spec()
                .and_then(|s| s.get("replicas"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            Some(json!({
                "replicas": n, "readyReplicas": n, "availableReplicas": n,
                "currentReplicas": n, "updatedReplicas": n, "observedGeneration": generation
            }))
        }
        ("apps/v1", "DaemonSet") => Some(json!({
            "currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberAvailable": 1,
            "numberMisscheduled": 0, "numberReady": 1, "updatedNumberScheduled": 1,
            "observedGeneration": generation
        })),
        _ => None,
    }
}

impl<R, X> ClusterMachine<R, X>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    /// The machine for reconciler `R` under `scope`, with the API server knowing `kinds`
    /// (which must include the CR kind) and `external` as the external system.
    pub fn new(kinds: KindRegistry, scope: Scope, external: X) -> Self {
        ClusterMachine {
            kinds,
            scope,
            external,
            cr_kind: Kind::of::<R::R>(),
            _r: std::marker::PhantomData,
        }
    }

    /// The CR's key.
    pub fn cr_key(&self) -> ObjectRef {
        ObjectRef::new(
            self.cr_kind.clone(),
            self.scope.namespace.clone(),
            self.scope.name.clone(),
        )
    }

    /// The CR as stored, if it exists and is not being deleted.
    pub fn live_cr<'a>(&self, s: &'a StateOf<R, X>) -> Option<&'a DynamicObject> {
        s.etcd
            .objects
            .get(&self.cr_key())
            .filter(|o| o.metadata().deletion_timestamp.is_none())
    }

    fn cr_object(&self, spec: &Value) -> DynamicObject {
        let mut body = serde_json::Map::new();
        body.insert("spec".into(), spec.clone());
        DynamicObject::new(anvil_objects::ObjectParts {
            kind: self.cr_kind.clone(),
            metadata: anvil_objects::ObjectMeta {
                name: Some(self.scope.name.clone()),
                namespace: Some(self.scope.namespace.clone()),
                ..Default::default()
            },
            body,
        })
    }

    fn stale_count(s: &StateOf<R, X>) -> usize {
        s.network.len()
    }

    /// Run one `reconcile_core` step and store the outcome.
    fn step(
        &self,
        s: &mut StateOf<R, X>,
        key: &ObjectRef,
        cr_obj: DynamicObject,
        local: R::T,
        resp: Option<Response<R::ExternalResponse>>,
    ) -> Option<()> {
        let (t, req) = memo_core::<R>(&cr_obj, resp, local)?;
        if R::reconcile_done(&t) || R::reconcile_error(&t) {
            s.ongoing.remove(key);
            return Some(());
        }
        let pending = match req {
            Some(req) => {
                s.network.push(Msg {
                    stale: false,
                    from: key.clone(),
                    req,
                });
                Pending::Waiting
            }
            None => Pending::Idle,
        };
        s.ongoing.insert(
            key.clone(),
            Ongoing {
                cr: cr_obj,
                local: t,
                pending,
            },
        );
        Some(())
    }

    fn deliver(
        s: &mut StateOf<R, X>,
        m: &Msg<R::ExternalRequest>,
        resp: Response<R::ExternalResponse>,
    ) {
        if m.stale {
            return;
        }
        if let Some(o) = s.ongoing.get_mut(&m.from)
            && o.pending == Pending::Waiting
        {
            o.pending = Pending::Ready(resp);
        }
    }

    pub(crate) fn handle(
        &self,
        s: &mut StateOf<R, X>,
        m: &Msg<R::ExternalRequest>,
    ) -> Response<R::ExternalResponse> {
        match &m.req {
            Request::Kube(k) => Response::Kube(memo_handle(&self.kinds, &mut s.etcd, k)),
            Request::External(q) => {
                Response::External(self.external.handle(&mut s.external, q, &s.etcd))
            }
        }
    }
}

impl<R, X> Machine for ClusterMachine<R, X>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    type State = StateOf<R, X>;
    type Action = Action;
    type FairnessKey = Key;

    fn init_states(&self) -> Vec<Self::State> {
        let f = &self.scope.faults;
        vec![State {
            etcd: Etcd::new(),
            network: Vec::new(),
            ongoing: BTreeMap::new(),
            external: self.external.init(),
            env: EnvState {
                spec: 0,
                creates_left: 1 + self.scope.max_deletes,
                edits_left: self.scope.max_edits,
                deletes_left: self.scope.max_deletes,
                other_deletes_left: f.other_deletes,
                pod_losses_left: f.pod_losses,
            },
            faults: FaultState {
                crash: f.crash,
                drop: f.drop,
                other: f.other_deletes > 0,
                pod_loss: f.pod_losses > 0,
            },
        }]
    }

    fn actions(&self, s: &Self::State, out: &mut Vec<Action>) {
        for i in 0..s.network.len() {
            out.push(Action::Handle(i));
            if s.faults.drop {
                out.push(Action::Drop(i));
            }
        }
        let cr_key = self.cr_key();
        if s.etcd.objects.contains_key(&cr_key) && !s.ongoing.contains_key(&cr_key) {
            out.push(Action::Start(cr_key.clone()));
        }
        for (k, o) in &s.ongoing {
            if o.pending != Pending::Waiting {
                out.push(Action::Continue(k.clone()));
            }
        }
        if s.faults.crash && !s.ongoing.is_empty() {
            out.push(Action::Crash);
        }
        for f in [
            Fault::Crash,
            Fault::Drop,
            Fault::OtherWriter,
            Fault::PodLoss,
        ] {
            if s.faults.get(f) {
                out.push(Action::Disable(f));
            }
        }
        for (k, o) in s.etcd.objects.iter() {
            if crate::api::garbage_collectable(&s.etcd, k) {
                out.push(Action::Gc(k.clone()));
            }
            if let Some(st) = settled_status(o)
                && o.status() != Some(&st)
                && o.metadata().deletion_timestamp.is_none()
            {
                out.push(Action::Builtin(k.clone()));
            }
            if k.kind != self.cr_kind && s.faults.other && s.env.other_deletes_left > 0 {
                out.push(Action::OtherDelete(k.clone()));
            }
            if s.faults.pod_loss
                && s.env.pod_losses_left > 0
                && o.status()
                    .and_then(|st| st.get("readyReplicas"))
                    .and_then(Value::as_i64)
                    .is_some_and(|n| n > 0)
            {
                out.push(Action::PodLoss(k.clone()));
            }
        }
        let cr = s.etcd.objects.get(&cr_key);
        if cr.is_none() && s.env.creates_left > 0 {
            out.push(Action::UserCreate);
        }
        if let Some(cr) = cr
            && cr.metadata().deletion_timestamp.is_none()
        {
            if s.env.edits_left > 0 {
                for i in 0..self.scope.specs.len() {
                    if i != s.env.spec {
                        out.push(Action::UserEdit(i));
                    }
                }
            }
            if s.env.deletes_left > 0 {
                out.push(Action::UserDelete);
            }
        }
    }

    fn next_state(&self, s: &Self::State, a: &Action) -> Option<Self::State> {
        let mut n = s.clone();
        match a {
            Action::Handle(i) => {
                let m = n.network.remove(*i);
                let resp = self.handle(&mut n, &m);
                Self::deliver(&mut n, &m, resp);
            }
            Action::Drop(i) => {
                if !s.faults.drop {
                    return None;
                }
                let m = n.network.remove(*i);
                let resp = match &m.req {
                    Request::Kube(k) => Response::Kube(k.error_response(ApiError::new(
                        ErrorReason::Timeout,
                        "the request was dropped",
                    ))),
                    Request::External(q) => Response::External(self.external.drop_response(q)?),
                };
                Self::deliver(&mut n, &m, resp);
            }
            Action::Start(k) => {
                if s.ongoing.contains_key(k) {
                    return None;
                }
                let cr = s.etcd.objects.get(k)?.clone();
                let typed_cr = typed::<R::R>(&cr)?;
                if R::validate(&typed_cr).is_ok() {
                    self.step(&mut n, k, cr, R::reconcile_init_state(), None)?;
                }
            }
            Action::Continue(k) => {
                let o = n.ongoing.get(k)?.clone();
                let resp = match o.pending {
                    Pending::Waiting => return None,
                    Pending::Idle => None,
                    Pending::Ready(r) => Some(r),
                };
                self.step(&mut n, k, o.cr, o.local, resp)?;
            }
            Action::Crash => {
                if !s.faults.crash {
                    return None;
                }
                if Self::stale_count(s) > self.scope.max_stale_requests {
                    return None;
                }
                n.ongoing.clear();
                for m in &mut n.network {
                    m.stale = true;
                }
            }
            Action::Disable(f) => {
                if !s.faults.get(*f) {
                    return None;
                }
                n.faults.set(*f, false);
            }
            Action::Gc(k) => {
                n.etcd.collect_garbage(&self.kinds, k).ok()?;
            }
            Action::Builtin(k) => {
                let o = s.etcd.objects.get(k)?;
                let st = settled_status(o)?;
                let new = o.modify(|p| {
                    p.body.insert("status".into(), st);
                });
                n.etcd.update_status(&self.kinds, &new).ok()?;
            }
            Action::UserCreate => {
                if s.env.creates_left == 0 {
                    return None;
                }
                n.env.creates_left -= 1;
                let obj = self.cr_object(&self.scope.specs[s.env.spec]);
                n.etcd.create(&self.kinds, &obj).ok()?;
            }
            Action::UserEdit(i) => {
                if s.env.edits_left == 0 {
                    return None;
                }
                let cur = s.etcd.objects.get(&self.cr_key())?;
                let spec = self.scope.specs.get(*i)?.clone();
                let new = cur.modify(|p| {
                    p.body.insert("spec".into(), spec);
                });
                n.etcd.update(&self.kinds, &new).ok()?;
                n.env.edits_left -= 1;
                n.env.spec = *i;
            }
            Action::UserDelete => {
                if s.env.deletes_left == 0 {
                    return None;
                }
                n.env.deletes_left -= 1;
                n.etcd.delete(&self.kinds, &self.cr_key(), None).ok()?;
            }
            Action::OtherDelete(k) => {
                if !s.faults.other || s.env.other_deletes_left == 0 {
                    return None;
                }
                n.env.other_deletes_left -= 1;
                n.etcd.delete(&self.kinds, k, None).ok()?;
            }
            Action::PodLoss(k) => {
                if !s.faults.pod_loss || s.env.pod_losses_left == 0 {
                    return None;
                }
                let o = s.etcd.objects.get(k)?;
                let ready = o.status()?.get("readyReplicas")?.as_i64()?;
                let new = o.modify(|p| {
                    if let Some(Value::Object(st)) = p.body.get_mut("status") {
                        st.insert("readyReplicas".into(), json!(ready - 1));
                        st.insert("availableReplicas".into(), json!(ready - 1));
                    }
                });
                n.env.pod_losses_left -= 1;
                n.etcd.update_status(&self.kinds, &new).ok()?;
            }
        }
        Some(n)
    }

    fn fairness(&self, s: &Self::State, a: &Action) -> Fairness<Key> {
        match a {
            Action::Handle(i) => Fairness::Weak(Key::Handle(stable_hash(&s.network[*i]))),
            Action::Start(k) | Action::Continue(k) => Fairness::Weak(Key::Run(k.clone())),
            Action::Gc(k) => Fairness::Weak(Key::Gc(k.clone())),
            Action::Builtin(k) => Fairness::Weak(Key::Builtin(k.clone())),
            Action::Disable(f) => Fairness::Weak(Key::Disable(*f)),
            Action::Drop(_)
            | Action::Crash
            | Action::UserCreate
            | Action::UserEdit(_)
            | Action::UserDelete
            | Action::OtherDelete(_)
            | Action::PodLoss(_) => Fairness::Unfair,
        }
    }

    fn representative(&self, mut s: Self::State) -> Self::State {
        canonicalize::<R, X>(&mut s);
        s
    }
}

/// The controller writes (creates/updates) an object controlled by someone other than the CR
/// its reconcile works on: the violation of the "no adoption of foreign objects" invariant.
pub fn foreign_write_in<T, Q, P, X>(cr_kind: &Kind, s: &State<T, Q, P, X>) -> bool {
    s.network.iter().any(|m| {
        if m.stale {
            return false;
        }
        let Some(cr) = s.ongoing.get(&m.from) else {
            return false;
        };
        let Some(owner) = Owner::of_object(&cr.cr) else {
            return false;
        };
        let obj = match &m.req {
            Request::Kube(
                KubeRequest::Create(o)
                | KubeRequest::Update(o)
                | KubeRequest::GetThenUpdate { obj: o, .. },
            ) => o,
            _ => return false,
        };
        obj.kind() != cr_kind && obj.controller_ref().is_some_and(|r| !owner.matches(r))
    })
}

/// An unconditional update (no resourceVersion) is in flight whose object was built from a
/// version older than the stored one (its `metadata.generation` is lower): executing it
/// overwrites changes its sender never saw (a lost update). The violation of the
/// `no_lost_updates` invariant.
pub fn lost_update_in<T, Q, P, X>(s: &State<T, Q, P, X>) -> bool {
    s.network.iter().any(|m| match &m.req {
        Request::Kube(KubeRequest::Update(o)) if o.resource_version().is_none() => {
            match (
                o.metadata().generation,
                s.etcd
                    .objects
                    .get(&o.object_ref())
                    .and_then(|c| c.metadata().generation),
            ) {
                (Some(sent), Some(stored)) => sent < stored,
                _ => false,
            }
        }
        _ => false,
    })
}

/// Canonicalises a state in place: sorts the network and renames tokens (see
/// [`crate::tokens`]) onto `1..k`, setting the counters to `k`.
pub fn canonicalize<R, X>(s: &mut StateOf<R, X>)
where
    R: ModelReconciler,
    X: ExternalModel,
{
    let mut c = Collector::default();
    visit_state::<R, X>(s, &mut |t: &str| c.add(t));
    let r = c.renaming();
    s.etcd.rv = r.rv_count();
    s.etcd.uid = r.uid_count();
    rename_state::<R, X>(s, &r);
}

/// Calls `f` on every string of the state that may be a token.
pub fn visit_state<R, X>(s: &StateOf<R, X>, f: &mut dyn FnMut(&str))
where
    R: ModelReconciler,
    X: ExternalModel,
{
    for o in s.etcd.objects.values() {
        o.visit(f);
    }
    for m in &s.network {
        m.req.visit(f);
    }
    for o in s.ongoing.values() {
        o.cr.visit(f);
        o.local.visit(f);
        if let Pending::Ready(r) = &o.pending {
            r.visit(f);
        }
    }
    s.external.visit(f);
}

/// Applies `r` to every token of the state (not to the counters) and re-sorts the network.
pub fn rename_state<R, X>(s: &mut StateOf<R, X>, r: &Renaming)
where
    R: ModelReconciler,
    X: ExternalModel,
{
    if !r.is_identity() {
        let renamed: Vec<(ObjectRef, DynamicObject)> = s
            .etcd
            .objects
            .iter()
            .filter_map(|(k, o)| {
                let n = o.rename(r);
                (&n != o).then(|| (k.clone(), n))
            })
            .collect();
        if !renamed.is_empty() {
            let objects = Arc::make_mut(&mut s.etcd.objects);
            for (k, o) in renamed {
                objects.insert(k, o);
            }
        }
        for m in &mut s.network {
            m.req = m.req.rename(r);
        }
        for o in s.ongoing.values_mut() {
            o.cr = o.cr.rename(r);
            o.local = o.local.rename(r);
            if let Pending::Ready(resp) = &o.pending {
                o.pending = Pending::Ready(resp.rename(r));
            }
        }
        s.external = s.external.rename(r);
    }
    s.network
        .sort_by_cached_key(|m| (m.stale, m.from.clone(), stable_hash(&m.req)));
}

/// Debug helper: the type of a [`Debug`] value.
pub fn describe<T: Debug>(t: &T) -> String {
    format!("{t:?}")
}
