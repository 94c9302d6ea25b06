//! Several controllers in one cluster model: the [`ControllerSet`] trait, which every
//! single [`Reconciler`] implements trivially (one member), and [`Pair`], two reconcilers with
//! different custom resource kinds checked side by side (for example FluentBit and
//! FluentBitConfig).
//!
//! A set's members are numbered `0..members()`. Each member reconciles the custom resources
//! of its own kind ([`ControllerSet::cr_kind`]), keeps its own local state per reconcile
//! ([`ControllerSet::Local`], tagged with the member for a [`Pair`]), has its own pending
//! requests and crashes on its own ([`crate::model::Action::CrashMember`]). The machine that
//! runs a set is [`crate::model::set_machine::SetMachine`].

use crate::model::ModelReconciler;
use crate::model::memo::{memo_core, typed};
use crate::tokens::{Renaming, Tokens};
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::{ExternalType, Reconciler, Request, Response};
use std::fmt::Debug;
use std::hash::Hash;

/// One step's output: the member's new local state and the request it sends, if any.
pub type SetStep<S> = (
    <S as ControllerSet>::Local,
    Option<Request<<S as ControllerSet>::Q>>,
);

/// Controllers checked together in one cluster model. Every member talks to the same external
/// system (request type [`ControllerSet::Q`], response type [`ControllerSet::P`]).
pub trait ControllerSet: 'static {
    /// A member's local state of one reconcile (it must say which member it belongs to when
    /// the members' state types differ, see [`PairLocal`]).
    type Local: Clone + Eq + Hash + Debug + Send + Sync + Tokens + 'static;
    /// External requests of every member.
    type Q: ExternalType + Tokens;
    /// External responses of every member.
    type P: ExternalType + Tokens;

    /// Number of members.
    fn members() -> usize;
    /// The custom resource kind of member `i` (distinct for distinct members).
    fn cr_kind(i: usize) -> Kind;
    /// `reconcile_init_state()` of member `i`.
    fn init(i: usize) -> Self::Local;
    /// `reconcile_done` of the member the state belongs to.
    fn done(l: &Self::Local) -> bool;
    /// `reconcile_error` of the member the state belongs to.
    fn error(l: &Self::Local) -> bool;
    /// Whether the stored custom resource `cr` of member `i` decodes (`None`: it does not)
    /// and passes the member's `validate` (`Some(false)`: the runtime records an error and
    /// does not call `reconcile_core`).
    fn validate(i: usize, cr: &DynamicObject) -> Option<bool>;
    /// One `reconcile_core` step of member `i` (`None` when the CR does not decode or the
    /// local state is not member `i`'s).
    fn core(
        i: usize,
        cr: &DynamicObject,
        resp: Option<Response<Self::P>>,
        local: Self::Local,
    ) -> Option<SetStep<Self>>;
}

fn validate_one<R: Reconciler>(cr: &DynamicObject) -> Option<bool> {
    let c = typed::<R::R>(cr)?;
    Some(R::validate(&c).is_ok())
}

/// A single reconciler is the set of one member.
impl<R: ModelReconciler> ControllerSet for R {
    type Local = R::T;
    type Q = R::ExternalRequest;
    type P = R::ExternalResponse;

    fn members() -> usize {
        1
    }
    fn cr_kind(_: usize) -> Kind {
        Kind::of::<R::R>()
    }
    fn init(_: usize) -> R::T {
        R::reconcile_init_state()
    }
    fn done(l: &R::T) -> bool {
        R::reconcile_done(l)
    }
    fn error(l: &R::T) -> bool {
        R::reconcile_error(l)
    }
    fn validate(_: usize, cr: &DynamicObject) -> Option<bool> {
        validate_one::<R>(cr)
    }
    fn core(
        _: usize,
        cr: &DynamicObject,
        resp: Option<Response<R::ExternalResponse>>,
        local: R::T,
    ) -> Option<SetStep<Self>> {
        memo_core::<R>(cr, resp, local)
    }
}

/// Two reconcilers with different custom resource kinds and the same external types: member
/// 0 is `A`, member 1 is `B`.
pub struct Pair<A, B>(std::marker::PhantomData<fn() -> (A, B)>);

/// The local state of a [`Pair`]'s reconcile: `A`'s or `B`'s.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PairLocal<TA, TB> {
    /// A reconcile of member 0.
    A(TA),
    /// A reconcile of member 1.
    B(TB),
}

impl<TA: Tokens, TB: Tokens> Tokens for PairLocal<TA, TB> {
    fn visit(&self, f: &mut dyn FnMut(&str)) {
        match self {
            PairLocal::A(t) => t.visit(f),
            PairLocal::B(t) => t.visit(f),
        }
    }
    fn rename(&self, r: &Renaming) -> Self {
        match self {
            PairLocal::A(t) => PairLocal::A(t.rename(r)),
            PairLocal::B(t) => PairLocal::B(t.rename(r)),
        }
    }
}

impl<A, B> ControllerSet for Pair<A, B>
where
    A: ModelReconciler,
    B: ModelReconciler<
            ExternalRequest = A::ExternalRequest,
            ExternalResponse = A::ExternalResponse,
        >,
{
    type Local = PairLocal<A::T, B::T>;
    type Q = A::ExternalRequest;
    type P = A::ExternalResponse;

    fn members() -> usize {
        2
    }
    fn cr_kind(i: usize) -> Kind {
        if i == 0 {
            Kind::of::<A::R>()
        } else {
            Kind::of::<B::R>()
        }
    }
    fn init(i: usize) -> Self::Local {
        if i == 0 {
            PairLocal::A(A::reconcile_init_state())
        } else {
            PairLocal::B(B::reconcile_init_state())
        }
    }
    fn done(l: &Self::Local) -> bool {
        match l {
            PairLocal::A(t) => A::reconcile_done(t),
            PairLocal::B(t) => B::reconcile_done(t),
        }
    }
    fn error(l: &Self::Local) -> bool {
        match l {
            PairLocal::A(t) => A::reconcile_error(t),
            PairLocal::B(t) => B::reconcile_error(t),
        }
    }
    fn validate(i: usize, cr: &DynamicObject) -> Option<bool> {
        if i == 0 {
            validate_one::<A>(cr)
        } else {
            validate_one::<B>(cr)
        }
    }
    fn core(
        i: usize,
        cr: &DynamicObject,
        resp: Option<Response<Self::P>>,
        local: Self::Local,
    ) -> Option<SetStep<Self>> {
        match (i, local) {
            (0, PairLocal::A(t)) => memo_core::<A>(cr, resp, t).map(|(t, q)| (PairLocal::A(t), q)),
            (1, PairLocal::B(t)) => memo_core::<B>(cr, resp, t).map(|(t, q)| (PairLocal::B(t), q)),
            _ => None,
        }
    }
}
