//! The cluster state machine: API server + etcd, network, controller runtime, garbage
//! collector, built-in controllers, environment and faults, composed with a [`Reconciler`].
//!
//! One file per host: [`state`] (states, actions, fairness keys), [`faults`] (fault classes
//! and the errors each failure answers), [`builtins`] (StatefulSet/DaemonSet controllers),
//! [`invariants`] (built-in safety invariants), [`gc`] (the garbage collector, and the
//! reduction that takes its judgement together with its delete), [`canon`] (canonical form), [`memo`]
//! (per-thread caches of pure functions), [`stale`] (what a crash does to requests in flight,
//! and the reduction that forgets stale requests which can never succeed). This file holds the controller runtime and the
//! composition.
//!
//! # Runtime semantics (shared with the shim, see `anvil_shim`'s crate docs)
//!
//! * **R1** A `reconcile_core` step that returns done or error *together with* a request:
//!   the request is sent and executed like any other; its response is discarded and the
//!   reconcile ends when it arrives (the shim executes it, then ends the reconcile). The
//!   reconcile stays ongoing, waiting, until then, so no new reconcile of that CR starts
//!   before the request is answered (or the controller crashes).
//! * **R2** `reconcile_done` / `reconcile_error` are checked *before* every step, including
//!   on `reconcile_init_state()`: an initial state that is already done ends the reconcile
//!   without calling `reconcile_core`.
//! * **R3** `List` with an empty namespace lists every namespace (`Api::all`), ordered by
//!   (namespace, name).
//! * **R4** `GetThen*`: the shim retries on `Conflict` a bounded number of times and then
//!   returns that `Conflict`; the model answers `Conflict` to a `GetThen*` as one of the
//!   transient failures of the `transient` fault (not executed).
//! * **R5** Tokens: resourceVersions and uids are opaque strings that a reconciler may copy
//!   and compare for equality only (see [`crate::tokens`]).
//!
//! # Eager steps (a reduction, on with the others)
//!
//! With the reductions on ([`ClusterMachine::with_reductions`]), the step that delivers a
//! response to a live reconcile (`Handle`, `Drop`, `LoseResponse`) also runs the reconcile's
//! next `reconcile_core` step, and steps that send no request follow at once (up to
//! [`EAGER_IDLE_STEPS`]), so no state holds a response that has arrived but is not processed
//! ([`Pending::Ready`]). To keep the crashes that the separate step allowed, a crash may
//! discard any of the crashed controller's live write requests as never sent
//! ([`Action::CrashUnsent`]).
//!
//! Why no verdict changes. *Nothing new is reachable*: an eager step is a `Handle` (or failure)
//! followed at once by the `Continue`s the unreduced model allows, and a `CrashUnsent` state is
//! the unreduced state where the controller crashed before those `Continue`s: a request still
//! in flight has had no effect, its sender's later steps only sent it, and the stale bound is
//! checked on the network after the discard, i.e. on the unreduced crash's network. *Nothing
//! is lost*: a `Continue` reads and writes only its own reconcile's entry and appends its
//! request; no other step reads either (the API server, the garbage collector, built-in
//! controllers, the user and other writers work on etcd and their own requests; the other
//! reconciles on their own entries), so in any unreduced execution the `Continue`s can be moved
//! back to the delivery they follow, unless the controller crashes in between, which
//! `CrashUnsent` covers. The moved execution passes through the same etcd, external and custom
//! resource states, with the intermediate ones removed (stuttering), and its messages in flight
//! are the original ones plus requests sent earlier. So every stutter-invariant property of
//! those states (ESR, the desired-state predicates) keeps its verdict; the built-in
//! invariants look at requests in flight and are monotone in them, so a violating state maps
//! to a violating state; step properties see the same etcd changes. Fairness carries over: an
//! unreduced fair execution takes every enabled `Continue` eventually (weak fairness), so each
//! moves back over finitely many steps. `crates/anvil/tests/reductions.rs` compares every
//! verdict with and without the reductions.

pub mod builtins;
pub mod canon;
pub mod faults;
pub mod gc;
pub mod invariants;
pub mod memo;
pub mod set;
pub mod set_invariants;
pub mod set_machine;
pub mod stale;
pub mod state;

pub use builtins::next_status;
pub use canon::{TokenOrder, canonicalize, canonicalize_state, rename_state, visit_state};
pub use faults::{Fault, FaultState};
pub use invariants::{foreign_write_in, kinds_over_bound, lost_update_in};
pub use memo::{stable_hash, typed};
pub use stale::{CreatePruning, drop_doomed_stale};
pub(crate) use stale::{crash_network, unsent_masks};
pub use state::{Action, CrEnv, EnvState, GcDelete, Key, Msg, Ongoing, Pending, State, StateOf};

use crate::api::Etcd;
use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
use crate::scope::Scope;
use crate::small_map::SmallMap;
use crate::tokens::Tokens;
use anvil_checker::{Fairness, Machine};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{
    ApiError, ErrorReason, KubeRequest, KubeResponse, Reconciler, Request, Response,
};
use serde_json::Value;
use std::fmt::Debug;
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
    /// The custom resources' keys ([`Scope::cr_names`] order), computed once: `actions` asks
    /// for them in every state.
    cr_keys: Vec<ObjectRef>,
    track_reads: bool,
    reduce: bool,
    creates: CreatePruning,
    _r: std::marker::PhantomData<fn() -> R>,
}

/// The fairness of action `a` given the messages in flight: the same for every machine over
/// [`State`] (one controller or a set). The API server, the controller runtime, the garbage
/// collector, built-in controllers and fault switches are weakly fair (a message is identified
/// by its sender, staleness and position among that sender's messages); the environment is
/// not fair; faults are not fair either, and with the reductions they are taken finitely
/// often ([`fault_fairness`]).
pub(crate) fn fairness_of<Q>(network: &[Msg<Q>], a: &Action, reduce: bool) -> Fairness<Key> {
    match a {
        Action::Handle(i) => {
            let m = &network[*i];
            let pos = network[..*i]
                .iter()
                .filter(|o| o.stale == m.stale && o.from == m.from)
                .count();
            Fairness::Weak(Key::Handle {
                from: m.from.clone(),
                stale: m.stale,
                pos,
            })
        }
        Action::Start(k) | Action::Continue(k) => Fairness::Weak(Key::Run(k.clone())),
        Action::Gc(k) | Action::GcCollect(k) => Fairness::Weak(Key::Gc(k.clone())),
        Action::GcDelete(k) => Fairness::Weak(Key::GcDelete(k.clone())),
        Action::Builtin(k) => Fairness::Weak(Key::Builtin(k.clone())),
        Action::Disable(f) => Fairness::Weak(Key::Disable(*f)),
        Action::Drop(..)
        | Action::LoseResponse(..)
        | Action::Crash
        | Action::CrashMember(_)
        | Action::CrashUnsent(..)
        | Action::OtherDelete(_)
        | Action::OtherUpdate(_)
        | Action::PodLoss(_) => fault_fairness(reduce),
        Action::UserCreate(_) | Action::UserEdit(..) | Action::UserDelete(_) => Fairness::Unfair,
    }
}

/// Reduction shared by the machines: a fault switch whose budget is spent enables nothing
/// (only its own Disable step), so it is switched off in the representative state.
pub(crate) fn switch_off_spent(env: &EnvState, faults: &mut FaultState) {
    if env.other_deletes_left == 0 && env.other_updates_left == 0 {
        faults.other = false;
    }
    if env.pod_losses_left == 0 {
        faults.pod_loss = false;
    }
}

/// How many `reconcile_core` steps without a request a reconcile takes eagerly, in the step
/// that delivered its last response, before it is left [`Pending::Idle`] for a separate
/// [`Action::Continue`] (a reconciler that loops without requests).
pub(crate) const EAGER_IDLE_STEPS: usize = 16;

/// The part of delivering a response that both machines share: nothing for a stale request or
/// a reconcile that is not waiting; a reconcile that had already ended (R1) ends now; without
/// the reductions the response waits in [`Pending::Ready`]. `Some`: with the reductions on,
/// the reconcile (taken out of `ongoing`) must process the response now (eager steps).
pub(crate) fn take_delivery<T, P>(
    ongoing: &mut SmallMap<ObjectRef, Ongoing<T, P>>,
    from: &ObjectRef,
    stale: bool,
    resp: Response<P>,
    ended: impl Fn(&T) -> bool,
    eager: bool,
) -> Option<(Ongoing<T, P>, Response<P>)> {
    if stale {
        return None;
    }
    let o = ongoing.get_mut(from)?;
    if !matches!(o.pending, Pending::Waiting) {
        return None;
    }
    if ended(&o.local) {
        ongoing.remove(from);
        None
    } else if eager {
        ongoing.remove(from).map(|o| (o, resp))
    } else {
        o.pending = Pending::Ready(resp);
        None
    }
}

/// The objects a response shows its receiver.
fn objects_in(resp: &KubeResponse) -> Vec<&DynamicObject> {
    match resp {
        KubeResponse::Get(Ok(o))
        | KubeResponse::Create(Ok(o))
        | KubeResponse::Update(Ok(o))
        | KubeResponse::UpdateStatus(Ok(o))
        | KubeResponse::GetThenUpdate(Ok(o))
        | KubeResponse::GetThenUpdateStatus(Ok(o)) => vec![o],
        KubeResponse::List(Ok(v)) => v.iter().collect(),
        _ => Vec::new(),
    }
}

/// The steps that switch fault classes off: one [`Action::Disable`] per class still on,
/// without the reductions; none with them, where faults have no switches and are
/// [`Fairness::Finite`] instead ([`fault_fairness`]).
pub fn disable_actions(f: &FaultState, reduce: bool, out: &mut Vec<Action>) {
    if !reduce {
        out.extend(
            Fault::ALL
                .into_iter()
                .filter(|x| f.get(*x))
                .map(Action::Disable),
        );
    }
}

/// The switches after the disable step `a` (without the reductions), `None` when `a` is not
/// such a step or not enabled.
pub fn switched_off(f: &FaultState, a: &Action, reduce: bool) -> Option<FaultState> {
    match a {
        Action::Disable(x) if !reduce && f.get(*x) => {
            let mut n = f.clone();
            n.set(*x, false);
            Some(n)
        }
        _ => None,
    }
}

/// The fairness of a fault step (a crash, a failed or lost request, another writer's step, a
/// pod loss): [`Fairness::Unfair`] in the unreduced model, where a weakly fair
/// [`Action::Disable`] eventually turns each fault class off for good, and
/// [`Fairness::Finite`] with the reductions, where faults have no switches.
///
/// # Why faults without switches lose nothing
///
/// A switch only *enables* fault steps (no step needs a switch off, and no successor depends
/// on the switches otherwise), so the unreduced model's states are the reduced model's
/// configurations, each with the switches that are still on. *Safety*: a configuration
/// reachable with some switches off is reachable with all on (the same steps; the faults that
/// are off just are not taken), so both models reach the same configurations, and invariants
/// and step properties (which no switch affects) have the same verdicts. *Liveness*: a fair
/// behaviour of the unreduced model turns every switch off at some finite point (each
/// `Disable` is weakly fair and enabled while its switch is on); after the last one it takes
/// no fault step, so its infinite part is a cycle without fault steps through configurations
/// with every switch off, whose fairness obligations are those of the same cycle in the
/// reduced model (fault steps carry none). Conversely a reduced lasso's cycle takes no
/// [`Fairness::Finite`] step (the checker's components are those of the graph without them),
/// so turning every switch off where the cycle starts gives an unreduced fair lasso through
/// the same configurations. Every stutter-invariant temporal property (ESR) therefore has the
/// same verdict, and a state no longer exists twice, once with faults still possible and once
/// with them over. (`crates/anvil/tests/reductions.rs` compares every verdict with and without
/// the reductions on the demo, ZooKeeper, RabbitMQ and the broken variants; the checker's
/// brute-force liveness oracle covers [`Fairness::Finite`].)
pub fn fault_fairness(reduce: bool) -> Fairness<Key> {
    if reduce {
        Fairness::Finite
    } else {
        Fairness::Unfair
    }
}

/// The canonical renaming of tokens of a machine: with the reductions on it forgets the
/// order of tokens ([`TokenOrder::Forgotten`]), without them it keeps it.
pub(crate) fn token_order(reduce: bool) -> TokenOrder {
    if reduce {
        TokenOrder::Forgotten
    } else {
        TokenOrder::Kept
    }
}

/// The API server's storage before anything happens: [`Scope::objects`] created in order.
/// `Err` names an object the API server rejects (a configuration error of the scope).
pub fn initial_etcd(kinds: &KindRegistry, scope: &Scope) -> Result<Etcd, String> {
    let mut etcd = Etcd::new();
    for o in &scope.objects {
        let obj = DynamicObject::from_json(o.clone())
            .map_err(|e| format!("scope object {o} is not an object: {e}"))?;
        etcd.create(kinds, &obj)
            .map_err(|e| format!("scope object {o} is rejected: {e}"))?;
    }
    Ok(etcd)
}

fn is_end<R: Reconciler>(t: &R::T) -> bool {
    R::reconcile_done(t) || R::reconcile_error(t)
}

impl<R, X> ClusterMachine<R, X>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    /// The machine for reconciler `R` under `scope`, with the API server knowing `kinds`
    /// (which must include the CR kind) and `external` as the external system.
    pub fn new(kinds: KindRegistry, scope: Scope, external: X) -> Self {
        let cr_kind = Kind::of::<R::R>();
        let creates = CreatePruning::new(true);
        let cr_keys = scope
            .cr_names()
            .into_iter()
            .map(|n| ObjectRef::new(cr_kind.clone(), scope.namespace.clone(), n))
            .collect();
        ClusterMachine {
            kinds,
            scope,
            external,
            cr_kind,
            cr_keys,
            track_reads: false,
            reduce: true,
            creates,
            _r: std::marker::PhantomData,
        }
    }

    /// Turns read tracking on: every reconcile remembers the resourceVersion of each object
    /// it saw in a response, and each unconditional Update it sends carries the version it was
    /// built from ([`Msg::basis`]), so the `no_lost_updates` invariant can tell a write built
    /// from a stale read on every kind. It adds that information to the state.
    pub fn with_read_tracking(mut self, on: bool) -> Self {
        self.track_reads = on;
        self
    }

    /// Turns the verdict-preserving reductions on (the default) or off: faults have no
    /// switches and are taken finitely often ([`fault_fairness`]), a switch whose budget is spent is
    /// off, the reads in flight of a crashed controller are dropped with it, and a stale
    /// request gets one failure action instead of one per error (they all lead to the same
    /// state, since nobody reads the answer), states that differ only by a permutation of
    /// tokens are one state ([`TokenOrder::Forgotten`]), and doomed stale requests are dropped
    /// ([`crate::model::stale`]). Off, the model explores every interleaving of those steps
    /// and keeps the order of tokens (for cross-checking the reductions).
    pub fn with_reductions(mut self, on: bool) -> Self {
        self.reduce = on;
        if !on {
            self.creates = CreatePruning::new(false);
        }
        self
    }

    /// Whether the reductions of [`ClusterMachine::with_reductions`] are on.
    pub fn reductions(&self) -> bool {
        self.reduce
    }

    /// Turns the pruning of stale Creates of objects that stay off (or on, with the
    /// reductions): a reduction, on by default, that applies once the environment's deletion
    /// budgets are spent and assumes the objects whose Creates it drops are then never deleted,
    /// which a monitor checks ([`crate::model::stale`]).
    pub fn with_create_pruning(mut self, on: bool) -> Self {
        self.creates = CreatePruning::new(on && self.reduce);
        self
    }

    /// The pruning of stale Creates in this search, and whether it must be repeated without.
    pub fn create_pruning(&self) -> &CreatePruning {
        &self.creates
    }

    /// The CR's kind.
    pub fn cr_kind(&self) -> &Kind {
        &self.cr_kind
    }

    /// The key of the (first) custom resource.
    pub fn cr_key(&self) -> ObjectRef {
        self.cr_key_at(0)
    }

    /// The key of custom resource `i` ([`Scope::cr_names`] order).
    pub fn cr_key_at(&self, i: usize) -> ObjectRef {
        self.cr_keys[i].clone()
    }

    /// The keys of every custom resource of the scope.
    pub fn cr_keys(&self) -> &[ObjectRef] {
        &self.cr_keys
    }

    /// Number of custom resources of the scope.
    pub fn cr_count(&self) -> usize {
        self.cr_keys.len()
    }

    /// The (first) CR as stored, if it exists and is not being deleted.
    pub fn live_cr<'a>(&self, s: &'a StateOf<R, X>) -> Option<&'a DynamicObject> {
        self.live_cr_at(0, s)
    }

    /// Custom resource `i` as stored, if it exists and is not being deleted.
    pub fn live_cr_at<'a>(&self, i: usize, s: &'a StateOf<R, X>) -> Option<&'a DynamicObject> {
        s.etcd
            .objects
            .get(&self.cr_keys[i])
            .filter(|o| o.metadata().deletion_timestamp.is_none())
    }

    /// The (first) CR object the user writes for `spec`.
    pub fn cr_object(&self, spec: &Value) -> DynamicObject {
        self.cr_object_at(0, spec)
    }

    /// Custom resource `i` as the user writes it for `spec`.
    pub fn cr_object_at(&self, i: usize, spec: &Value) -> DynamicObject {
        let mut body = serde_json::Map::new();
        body.insert("spec".into(), spec.clone());
        DynamicObject::new(anvil_objects::ObjectParts {
            kind: self.cr_kind.clone(),
            metadata: anvil_objects::ObjectMeta {
                name: Some(self.cr_keys[i].name.to_string()),
                namespace: Some(self.scope.namespace.clone()),
                ..Default::default()
            },
            body,
        })
    }

    /// True when the state exceeds the scope's object bound (it is not expanded further).
    pub fn over_object_bound(&self, s: &StateOf<R, X>) -> bool {
        !kinds_over_bound(&self.cr_kind, self.scope.max_objects_per_kind, s).is_empty()
    }

    /// One step of the reconcile of `key` from local state `local` (rules R1, R2): an ended
    /// state ends the reconcile; otherwise `reconcile_core` runs and its request (if any) is
    /// sent. A step that ends the reconcile together with a request keeps the reconcile
    /// waiting for that request's response, which is then discarded.
    ///
    /// With the reductions on, steps that send no request follow at once (up to
    /// [`EAGER_IDLE_STEPS`]), as the shim runs them.
    fn step(
        &self,
        s: &mut StateOf<R, X>,
        key: &ObjectRef,
        cr_obj: DynamicObject,
        local: R::T,
        resp: Option<Response<R::ExternalResponse>>,
        seen: Vec<(ObjectRef, String)>,
    ) -> Option<()> {
        let eager = if self.reduce { EAGER_IDLE_STEPS } else { 0 };
        let (mut local, mut resp, mut seen) = (local, resp, seen);
        for _ in 0..eager {
            if is_end::<R>(&local) {
                break;
            }
            match self.one_step(s, key, &cr_obj, local, resp, seen)? {
                Ok(()) => return Some(()),
                Err((t, sn)) => (local, resp, seen) = (t, None, sn),
            }
        }
        if is_end::<R>(&local) {
            s.ongoing.remove(key);
            return Some(());
        }
        if let Err((t, seen)) = self.one_step(s, key, &cr_obj, local, resp, seen)? {
            s.ongoing.insert(
                key.clone(),
                Ongoing {
                    cr: cr_obj,
                    local: t,
                    pending: Pending::Idle,
                    seen,
                },
            );
        }
        Some(())
    }

    /// One `reconcile_core` step from a local state that has not ended. `Ok`: the reconcile
    /// sent a request (and waits) or ended; `Err`: it sent nothing and goes on from the
    /// returned local state (not yet stored in `s`).
    #[allow(clippy::type_complexity)]
    fn one_step(
        &self,
        s: &mut StateOf<R, X>,
        key: &ObjectRef,
        cr_obj: &DynamicObject,
        local: R::T,
        resp: Option<Response<R::ExternalResponse>>,
        mut seen: Vec<(ObjectRef, String)>,
    ) -> Option<Result<(), (R::T, Vec<(ObjectRef, String)>)>> {
        if self.track_reads
            && let Some(Response::Kube(k)) = &resp
        {
            for o in objects_in(k) {
                if let Some(rv) = o.resource_version() {
                    let r = o.object_ref();
                    match seen.binary_search_by(|(k, _)| k.cmp(&r)) {
                        Ok(i) => seen[i].1 = rv.to_string(),
                        Err(i) => seen.insert(i, (r, rv.to_string())),
                    }
                }
            }
        }
        let (t, req) = memo::memo_core::<R>(cr_obj, resp, local)?;
        match req {
            Some(req) => {
                let basis = match &req {
                    Request::Kube(KubeRequest::Update(o))
                        if self.track_reads && o.resource_version().is_none() =>
                    {
                        let r = o.object_ref();
                        seen.iter().find(|(k, _)| *k == r).map(|(_, rv)| rv.clone())
                    }
                    _ => None,
                };
                s.network.push(Msg {
                    stale: false,
                    from: key.clone(),
                    req,
                    basis,
                });
                s.ongoing.insert(
                    key.clone(),
                    Ongoing {
                        cr: cr_obj.clone(),
                        local: t,
                        pending: Pending::Waiting,
                        seen,
                    },
                );
                Some(Ok(()))
            }
            None if is_end::<R>(&t) => {
                s.ongoing.remove(key);
                Some(Ok(()))
            }
            None => Some(Err((t, seen))),
        }
    }

    /// Delivers a response to the reconcile that sent `m` (nothing for a stale request). A
    /// reconcile that had already ended (R1) ends now, discarding the response. With the
    /// reductions on, the reconcile processes the response in the same step (module docs,
    /// "Eager steps"); otherwise it waits in [`Pending::Ready`] for an [`Action::Continue`].
    /// `None`: the reconcile's snapshot of its CR no longer decodes (it decoded when the
    /// reconcile started, so this does not happen).
    fn deliver(
        &self,
        s: &mut StateOf<R, X>,
        m: &Msg<R::ExternalRequest>,
        resp: Response<R::ExternalResponse>,
    ) -> Option<()> {
        let eager = self.reduce;
        match take_delivery(&mut s.ongoing, &m.from, m.stale, resp, is_end::<R>, eager) {
            Some((o, resp)) => self.step(s, &m.from, o.cr, o.local, Some(resp), o.seen),
            None => Some(()),
        }
    }

    pub(crate) fn handle(
        &self,
        s: &mut StateOf<R, X>,
        m: &Msg<R::ExternalRequest>,
    ) -> Response<R::ExternalResponse> {
        match &m.req {
            Request::Kube(k) => Response::Kube(memo::memo_handle(&self.kinds, &mut s.etcd, k)),
            Request::External(q) => {
                Response::External(self.external.handle(&mut s.external, q, &s.etcd))
            }
        }
    }

    /// The error answer to `req` for a failure with `reason`.
    fn error_answer(
        &self,
        req: &Request<R::ExternalRequest>,
        reason: ErrorReason,
        what: &str,
    ) -> Option<Response<R::ExternalResponse>> {
        Some(match req {
            Request::Kube(k) => Response::Kube(k.error_response(ApiError::new(reason, what))),
            Request::External(q) => Response::External(self.external.drop_response(q)?),
        })
    }

    fn transient_all(&self) -> bool {
        self.scope.faults.transient
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
        // (a scope whose objects are rejected is a configuration error, see `check_scope`)
        let etcd = initial_etcd(&self.kinds, &self.scope).unwrap_or_default();
        vec![State {
            etcd,
            network: Vec::new(),
            gc: Vec::new(),
            ongoing: SmallMap::new(),
            external: self.external.init(),
            env: EnvState {
                crs: vec![
                    CrEnv {
                        spec: 0,
                        creates_left: 1 + self.scope.max_deletes,
                        edits_left: self.scope.max_edits,
                        deletes_left: self.scope.max_deletes,
                    };
                    self.cr_count()
                ],
                other_deletes_left: f.other_deletes,
                other_updates_left: f.other_updates,
                pod_losses_left: f.pod_losses,
            },
            faults: FaultState {
                crash: f.crash,
                drop: f.drop || f.transient,
                lost_response: f.lost_response,
                other: f.other_deletes > 0 || f.other_updates > 0,
                pod_loss: f.pod_losses > 0,
            },
        }]
    }

    fn actions(&self, s: &Self::State, out: &mut Vec<Action>) {
        if self.over_object_bound(s) {
            return;
        }
        for (i, m) in s.network.iter().enumerate() {
            out.push(Action::Handle(i));
            if self.reduce && m.stale {
                // Nobody reads the answer to a stale request: every failure of it leads to
                // the same state (not executed), and a lost response is a `Handle`.
                if s.faults.drop
                    && let Some(r) = faults::transient_errors(&m.req, self.transient_all()).first()
                {
                    out.push(Action::Drop(i, *r));
                }
                continue;
            }
            if s.faults.drop {
                for r in faults::transient_errors(&m.req, self.transient_all()) {
                    out.push(Action::Drop(i, *r));
                }
            }
            if s.faults.lost_response {
                for r in faults::lost_response_errors(&m.req) {
                    out.push(Action::LoseResponse(i, *r));
                }
            }
        }
        for cr_key in &self.cr_keys {
            if s.etcd.objects.contains_key(cr_key) && !s.ongoing.contains_key(cr_key) {
                out.push(Action::Start(cr_key.clone()));
            }
        }
        for (k, o) in &s.ongoing {
            if o.pending != Pending::Waiting {
                out.push(Action::Continue(k.clone()));
            }
        }
        if s.faults.crash && !s.ongoing.is_empty() {
            out.push(Action::Crash);
            if self.reduce {
                out.extend(unsent_masks(&s.network, |_| true).map(|b| Action::CrashUnsent(0, b)));
            }
        }
        disable_actions(&s.faults, self.reduce, out);
        gc::collector_deletes(&s.gc, out);
        for (k, o) in s.etcd.objects.iter() {
            gc::collector_actions(&s.etcd, &s.network, &s.gc, k, self.reduce, out);
            if memo::memo_next_status(o).is_some() {
                out.push(Action::Builtin(k.clone()));
            }
            if k.kind != self.cr_kind && s.faults.other {
                if s.env.other_deletes_left > 0 {
                    out.push(Action::OtherDelete(k.clone()));
                }
                if s.env.other_updates_left > 0 {
                    out.push(Action::OtherUpdate(k.clone()));
                }
            }
            if s.faults.pod_loss
                && s.env.pod_losses_left > 0
                && builtins::after_pod_loss(o).is_some()
            {
                out.push(Action::PodLoss(k.clone()));
            }
        }
        for (c, env) in s.env.crs.iter().enumerate() {
            let cr = s.etcd.objects.get(&self.cr_keys[c]);
            if cr.is_none() && env.creates_left > 0 {
                out.push(Action::UserCreate(c));
            }
            if let Some(cr) = cr
                && cr.metadata().deletion_timestamp.is_none()
            {
                if env.edits_left > 0 {
                    for i in 0..self.scope.specs.len() {
                        if i != env.spec {
                            out.push(Action::UserEdit(c, i));
                        }
                    }
                }
                if env.deletes_left > 0 {
                    out.push(Action::UserDelete(c));
                }
            }
        }
    }

    fn next_state(&self, s: &Self::State, a: &Action) -> Option<Self::State> {
        let mut n = s.clone();
        match a {
            Action::Handle(i) => {
                let m = n.network.remove(*i);
                let resp = self.handle(&mut n, &m);
                self.creates
                    .observe_request(&s.etcd, &n.etcd, &m.req, &s.env);
                self.deliver(&mut n, &m, resp)?;
            }
            Action::Drop(i, reason) => {
                let m = s.network.get(*i)?;
                if !s.faults.drop
                    || !faults::transient_errors(&m.req, self.transient_all()).contains(reason)
                {
                    return None;
                }
                let m = n.network.remove(*i);
                let resp = self.error_answer(&m.req, *reason, "transient failure (model)")?;
                self.deliver(&mut n, &m, resp)?;
            }
            Action::LoseResponse(i, reason) => {
                let m = s.network.get(*i)?;
                if !s.faults.lost_response || !faults::lost_response_errors(&m.req).contains(reason)
                {
                    return None;
                }
                let m = n.network.remove(*i);
                let answer = self.error_answer(&m.req, *reason, "response lost (model)")?;
                let _ = self.handle(&mut n, &m);
                self.creates
                    .observe_request(&s.etcd, &n.etcd, &m.req, &s.env);
                self.deliver(&mut n, &m, answer)?;
            }
            Action::Start(k) => {
                if s.ongoing.contains_key(k) {
                    return None;
                }
                let cr = s.etcd.objects.get(k)?.clone();
                let typed_cr = typed::<R::R>(&cr)?;
                if R::validate(&typed_cr).is_ok() {
                    self.step(&mut n, k, cr, R::reconcile_init_state(), None, Vec::new())?;
                }
            }
            Action::Continue(k) => {
                let o = n.ongoing.get(k)?.clone();
                let resp = match o.pending {
                    Pending::Waiting => return None,
                    Pending::Idle => None,
                    Pending::Ready(r) => Some(r),
                };
                self.step(&mut n, k, o.cr, o.local, resp, o.seen)?;
            }
            Action::Crash | Action::CrashUnsent(..) => {
                let unsent = match a {
                    Action::CrashUnsent(0, b) if self.reduce && *b != 0 => *b,
                    Action::CrashUnsent(..) => return None,
                    _ => 0,
                };
                if !s.faults.crash {
                    return None;
                }
                // A read in flight whose sender is gone changes nothing: the API server's
                // handling of it is a no-op and its answer is discarded, whether it is
                // handled, failed or lost. It is dropped with its sender, so it neither
                // multiplies states nor counts as a stale request.
                crash_network(&mut n.network, |_| true, self.reduce, unsent)?;
                if n.network.len() > self.scope.max_stale_requests {
                    return None;
                }
                n.ongoing.clear();
            }
            // (a controller set's per-member crash; this machine runs one controller)
            Action::CrashMember(_) => return None,
            Action::Disable(_) => {
                n.faults = switched_off(&s.faults, a, self.reduce)?;
            }
            Action::Gc(_) | Action::GcCollect(_) | Action::GcDelete(_) => {
                gc::collector_step(&self.kinds, &self.creates, self.reduce, s, &mut n, a)?;
            }
            Action::Builtin(k) => {
                let kinds = &self.kinds;
                memo::memo_etcd(kinds, &mut n.etcd, a, |etcd| {
                    let o = etcd.objects.get(k)?;
                    let st = memo::memo_next_status(o)?;
                    let new = o.modify(|p| {
                        p.body.insert("status".into(), st);
                    });
                    etcd.update_status(kinds, &new).ok().map(|_| ())
                })?;
            }
            Action::UserCreate(c) => {
                let env = s.env.crs.get(*c)?;
                if env.creates_left == 0 {
                    return None;
                }
                let obj = self.cr_object_at(*c, &self.scope.specs[env.spec]);
                n.env.crs[*c].creates_left -= 1;
                n.etcd.create(&self.kinds, &obj).ok()?;
            }
            Action::UserEdit(c, i) => {
                if s.env.crs.get(*c)?.edits_left == 0 {
                    return None;
                }
                let cur = s.etcd.objects.get(self.cr_keys.get(*c)?)?;
                let spec = self.scope.specs.get(*i)?.clone();
                let new = cur.modify(|p| {
                    p.body.insert("spec".into(), spec);
                });
                n.etcd.update(&self.kinds, &new).ok()?;
                n.env.crs[*c].edits_left -= 1;
                n.env.crs[*c].spec = *i;
            }
            Action::UserDelete(c) => {
                if s.env.crs.get(*c)?.deletes_left == 0 {
                    return None;
                }
                n.env.crs[*c].deletes_left -= 1;
                n.etcd.delete(&self.kinds, &self.cr_keys[*c], None).ok()?;
                self.creates.observe(&s.etcd, &n.etcd, &s.env);
            }
            Action::OtherDelete(k) => {
                if !s.faults.other || s.env.other_deletes_left == 0 {
                    return None;
                }
                n.env.other_deletes_left -= 1;
                n.etcd.delete(&self.kinds, k, None).ok()?;
                self.creates.observe(&s.etcd, &n.etcd, &s.env);
            }
            Action::OtherUpdate(k) => {
                if !s.faults.other || s.env.other_updates_left == 0 || k.kind == self.cr_kind {
                    return None;
                }
                let cur = s.etcd.objects.get(k)?;
                n.etcd.update(&self.kinds, &builtins::scribble(cur)).ok()?;
                n.env.other_updates_left -= 1;
            }
            Action::PodLoss(k) => {
                if !s.faults.pod_loss || s.env.pod_losses_left == 0 {
                    return None;
                }
                let o = s.etcd.objects.get(k)?;
                let st = builtins::after_pod_loss(o)?;
                let new = o.modify(|p| {
                    p.body.insert("status".into(), st);
                });
                n.env.pod_losses_left -= 1;
                n.etcd.update_status(&self.kinds, &new).ok()?;
            }
        }
        Some(n)
    }

    fn fairness(&self, s: &Self::State, a: &Action) -> Fairness<Key> {
        fairness_of(&s.network, a, self.reduce)
    }

    fn representative(&self, mut s: Self::State) -> Self::State {
        if self.reduce {
            switch_off_spent(&s.env, &mut s.faults);
            let creates = self.creates.prunes(&s.env);
            drop_doomed_stale(&self.kinds, &s.etcd, &mut s.network, creates);
        }
        canonicalize_state(&mut s, token_order(self.reduce));
        s
    }

    fn compact(&self, mut s: Self::State) -> Self::State {
        s.etcd.objects.share();
        s
    }
}

/// Debug helper: the type of a [`Debug`] value.
pub fn describe<T: Debug>(t: &T) -> String {
    format!("{t:?}")
}
