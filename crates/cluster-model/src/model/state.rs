//! The states, actions and fairness keys of the composed cluster machine.

use crate::api::Etcd;
use crate::external::ExternalModel;
use crate::model::faults::{Fault, FaultState};
use crate::small_map::SmallMap;
use anvil_objects::{DynamicObject, ObjectRef};
use anvil_reconciler::{ErrorReason, Reconciler, Request, Response};

/// A request in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Msg<Q> {
    /// Sent by an earlier incarnation of the controller (its response will be ignored).
    pub stale: bool,
    /// The custom resource whose reconcile sent it.
    pub from: ObjectRef,
    /// The request.
    pub req: Request<Q>,
    /// For an unconditional Update sent with read tracking on (the `no_lost_updates`
    /// invariant): the resourceVersion of the target that the sending reconcile last saw in a
    /// response, i.e. the version its content was built from.
    pub basis: Option<String>,
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
    /// The reconciler's local state. When it is done or error, the reconcile is only waiting
    /// for the response to the request sent together with that outcome (runtime rule R1).
    pub local: T,
    /// Its request/response slot.
    pub pending: Pending<P>,
    /// With read tracking on: the resourceVersion of every object this reconcile saw in a
    /// response (sorted by key), the basis of its unconditional updates.
    pub seen: Vec<(ObjectRef, String)>,
}

/// The user's remaining budget for one custom resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CrEnv {
    /// Index of its current spec in [`crate::Scope::specs`].
    pub spec: usize,
    /// Creations left (1 + deletions).
    pub creates_left: u8,
    /// Spec edits left.
    pub edits_left: u8,
    /// Deletions left.
    pub deletes_left: u8,
}

/// The environment's remaining budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EnvState {
    /// One entry per custom resource ([`crate::Scope::cr_names`] order).
    pub crs: Vec<CrEnv>,
    /// Other-writer deletions left.
    pub other_deletes_left: u8,
    /// Other-writer updates left.
    pub other_updates_left: u8,
    /// Pod losses left.
    pub pod_losses_left: u8,
}

impl EnvState {
    /// Whether the user and other writers can delete nothing more: every custom resource's
    /// deletion budget and the other writers' deletion budget are spent (budgets never grow).
    pub fn deletions_spent(&self) -> bool {
        self.other_deletes_left == 0 && self.crs.iter().all(|c| c.deletes_left == 0)
    }
}

/// A deletion the garbage collector has decided and sent: a Delete of `key` with the uid
/// precondition `uid`, in flight like any request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GcDelete {
    /// The object judged to be garbage.
    pub key: ObjectRef,
    /// Its uid when the collector judged it (the delete's precondition).
    pub uid: String,
}

/// A state of the composed system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State<T, Q, P, X> {
    /// API server storage.
    pub etcd: Etcd,
    /// Requests in flight (a multiset, kept sorted).
    pub network: Vec<Msg<Q>>,
    /// The garbage collector's deletions in flight (sorted, at most one per object).
    pub gc: Vec<GcDelete>,
    /// Ongoing reconciles by CR key.
    pub ongoing: SmallMap<ObjectRef, Ongoing<T, P>>,
    /// The external system's state.
    pub external: X,
    /// Environment budget.
    pub env: EnvState,
    /// Fault switches.
    pub faults: FaultState,
}

/// The state type of [`crate::ClusterMachine`] for reconciler `R` and external model `X`.
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
    /// Fault (transient failure): the `i`-th request is not executed; the sender gets this
    /// error instead (any error the shim can surface for that request, see
    /// [`crate::model::faults::transient_errors`]).
    Drop(usize, ErrorReason),
    /// Fault (applied, then failed): the `i`-th request is executed, but its response is lost
    /// and the sender gets this error instead.
    LoseResponse(usize, ErrorReason),
    /// The controller runtime starts a reconcile of the CR: a quorum read of the CR (the
    /// snapshot the reconcile works on), validation, and the first step (rule R2: done/error
    /// is checked on the initial state before `reconcile_core` is called).
    /// Enabled whenever the CR exists and no reconcile of it is ongoing, so a reconcile that
    /// ends (done or error) is scheduled again.
    Start(ObjectRef),
    /// One `reconcile_core` step of the ongoing reconcile.
    Continue(ObjectRef),
    /// Fault: the controller crashes and restarts.
    Crash,
    /// Fault: member `i` of a controller set crashes and restarts (its ongoing reconciles are
    /// lost, its requests in flight become stale; the other members go on). Only the
    /// controller-set machine ([`crate::model::set_machine::SetMachine`]) takes it.
    CrashMember(usize),
    /// Fault: member `.0` of the controller (0 for a single controller) crashes before it
    /// sent some of the write requests it has in flight, which are discarded; the others
    /// become stale as in [`Action::Crash`]. Bit `j` of `.1` names the `j`-th of the member's
    /// live write requests in network order. Only with the reductions on, where a response is
    /// processed in the same step that delivers it (see `crate::model`'s "Eager steps").
    CrashUnsent(usize, u32),
    /// A fault class is switched off (without the reductions; with them faults have no
    /// switches, see [`crate::model::fault_fairness`]).
    Disable(Fault),
    /// The garbage collector judges the object to be garbage (none of its owners exists) and
    /// sends a delete with a uid precondition ([`GcDelete`]).
    Gc(ObjectRef),
    /// The API server handles the garbage collector's delete of the object.
    GcDelete(ObjectRef),
    /// The garbage collector judges the object to be garbage and the API server executes its
    /// delete at once: [`Action::Gc`] followed by [`Action::GcDelete`], with the reductions
    /// on (see [`crate::model::gc`]).
    GcCollect(ObjectRef),
    /// A built-in controller (StatefulSet/DaemonSet) moves the object's status one step.
    Builtin(ObjectRef),
    /// The user creates custom resource `cr` (an index into [`crate::Scope::cr_names`]).
    UserCreate(usize),
    /// The user sets the spec of custom resource `.0` to `Scope::specs[.1]`.
    UserEdit(usize, usize),
    /// The user deletes custom resource `cr`.
    UserDelete(usize),
    /// Another writer deletes the object.
    OtherDelete(ObjectRef),
    /// Another writer updates the object (see [`crate::model::builtins::scribble`]).
    OtherUpdate(ObjectRef),
    /// A pod of the StatefulSet is lost (its ready count drops).
    PodLoss(ObjectRef),
}

/// Fairness instance keys. They name components structurally (never by a hash of content,
/// which the canonical renaming of tokens changes), so the same obligation keeps its key along
/// a cycle of canonical states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Handling of the `pos`-th request in flight among those with the same sender and stale
    /// flag. A live reconcile has at most one request in flight (`pos` = 0); stale requests
    /// are never created in a fair cycle (crashes are switched off there), so the set of
    /// stale requests is constant along such a cycle and every one of them keeps a position.
    Handle {
        /// The CR whose reconcile sent it.
        from: ObjectRef,
        /// Sent by an earlier incarnation.
        stale: bool,
        /// Position among the requests with the same `from` and `stale`.
        pos: usize,
    },
    /// Progress of the CR's reconcile (start and steps).
    Run(ObjectRef),
    /// The garbage collector's judgement of the object.
    Gc(ObjectRef),
    /// The API server handling the garbage collector's delete of the object.
    GcDelete(ObjectRef),
    /// Built-in controller working on the object.
    Builtin(ObjectRef),
    /// Disabling a fault.
    Disable(Fault),
}
