//! The cluster machine running a [`ControllerSet`]: the same API server, network, garbage
//! collector, built-in controllers, environment and faults as [`crate::ClusterMachine`], and
//! one controller runtime per member.
//!
//! What differs from the single-controller machine, and why it stays sound:
//!
//! * **Custom resources.** Member 0 reconciles [`Scope::cr_names`] (its specs are
//!   [`Scope::specs`]); member `j >= 1` reconciles one custom resource named
//!   `Scope::others[j - 1].name` with that member's specs, edits and deletions. The user's
//!   actions index the list of all of them ([`SetMachine::slots`]).
//! * **Crashes are per member** ([`Action::CrashMember`]): the member's ongoing reconciles are
//!   lost and only its requests in flight become stale; the other members go on. The bound on
//!   stale requests counts every member's.
//! * **Fairness is per member**: every reconcile's progress (`Key::Run(cr)`) and every
//!   request's handling (`Key::Handle { from: cr, .. }`) is keyed by its custom resource,
//!   which names the member.
//! * **Other writers** never touch any member's custom resource.
//! * **Reductions.** All of [`crate::ClusterMachine::with_reductions`] stay in force, and
//!   doomed stale requests are dropped ([`crate::model::stale`]; `no_shared_writes` ignores
//!   stale writes that would fail now, so it reads the same on the pruned states); none
//!   assumes a single controller: faults without switches and spent budgets are
//!   about the (shared) switches only; dropping a crashed member's reads in flight drops
//!   requests whose handling changes nothing and whose answer nobody reads (the member that
//!   sent them restarted); a stale request's failures all lead to the same state whoever sent
//!   it. Eager steps (`crate::model`, "Eager steps") are per reconcile: a member's
//!   `reconcile_core` step touches only its own reconcile's entry and appends its own request,
//!   and [`crate::model::Action::CrashUnsent`] discards only the crashed member's writes.
//!   The canonical renaming of tokens is the same function ([`crate::model::canonicalize_state`]).
//!
//! The runtime rules R1-R5 of [`crate::model`] hold for every member.

use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
use crate::model::set::ControllerSet;
use crate::model::state::{Msg, Ongoing, Pending, State};
use crate::model::{CreatePruning, EAGER_IDLE_STEPS, memo, take_delivery};
use crate::scope::Scope;
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{ApiError, ErrorReason, Request, Response};
use serde_json::Value;
use std::collections::BTreeMap;

/// The state of a [`SetMachine`].
pub type SetStateOf<S, X> = State<
    <S as ControllerSet>::Local,
    <S as ControllerSet>::Q,
    <S as ControllerSet>::P,
    <X as ExternalModel>::State,
>;

/// One custom resource of the scope: its member, key and budget.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The member that reconciles it.
    pub member: usize,
    /// Its key.
    pub key: ObjectRef,
    /// Its specs (the first is the creation spec).
    pub specs: Vec<Value>,
    /// Spec edits allowed.
    pub max_edits: u8,
    /// Deletions allowed.
    pub max_deletes: u8,
}

/// The composed machine of a controller set.
pub struct SetMachine<S: ControllerSet, X: ExternalModel> {
    /// Kinds the API server knows (including every member's CR kind).
    pub kinds: KindRegistry,
    /// The verification scope (members 1.. in [`Scope::others`]).
    pub scope: Scope,
    /// The external system model.
    pub external: X,
    cr_kinds: Vec<Kind>,
    slots: Vec<Slot>,
    reduce: bool,
    creates: CreatePruning,
    _s: std::marker::PhantomData<fn() -> S>,
}

fn is_end<S: ControllerSet>(l: &S::Local) -> bool {
    S::done(l) || S::error(l)
}

impl<S, X> SetMachine<S, X>
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P>,
{
    /// The machine for set `S` under `scope` (which must name one [`crate::MemberScope`] per
    /// member after the first: `Err` otherwise), with the API server knowing `kinds`.
    pub fn new(kinds: KindRegistry, scope: Scope, external: X) -> Result<Self, String> {
        if scope.others.len() + 1 != S::members() {
            return Err(format!(
                "the controller set has {} members, but the scope describes {} (1 + {} in `others`)",
                S::members(),
                scope.others.len() + 1,
                scope.others.len()
            ));
        }
        let cr_kinds: Vec<Kind> = (0..S::members()).map(S::cr_kind).collect();
        for (i, k) in cr_kinds.iter().enumerate() {
            if cr_kinds[..i].contains(k) {
                return Err(format!("two members reconcile the same kind {k}"));
            }
        }
        let ns = scope.namespace.clone();
        let mut slots: Vec<Slot> = scope
            .cr_names()
            .into_iter()
            .map(|n| Slot {
                member: 0,
                key: ObjectRef::new(cr_kinds[0].clone(), ns.clone(), n),
                specs: scope.specs.clone(),
                max_edits: scope.max_edits,
                max_deletes: scope.max_deletes,
            })
            .collect();
        for (j, o) in scope.others.iter().enumerate() {
            slots.push(Slot {
                member: j + 1,
                key: ObjectRef::new(cr_kinds[j + 1].clone(), ns.clone(), o.name.clone()),
                specs: o.specs.clone(),
                max_edits: o.max_edits,
                max_deletes: o.max_deletes,
            });
        }
        if let Some(s) = slots.iter().find(|s| s.specs.is_empty()) {
            return Err(format!("the scope has no spec for {}", s.key));
        }
        let creates = CreatePruning::new(true);
        Ok(SetMachine {
            kinds,
            scope,
            external,
            cr_kinds,
            slots,
            reduce: true,
            creates,
            _s: std::marker::PhantomData,
        })
    }

    /// Turns the verdict-preserving reductions on (the default) or off (see the module docs).
    pub fn with_reductions(mut self, on: bool) -> Self {
        self.reduce = on;
        if !on {
            self.creates = CreatePruning::new(false);
        }
        self
    }

    /// Whether the reductions are on.
    pub fn reductions(&self) -> bool {
        self.reduce
    }

    /// As [`crate::ClusterMachine::with_create_pruning`].
    pub fn with_create_pruning(mut self, on: bool) -> Self {
        self.creates = CreatePruning::new(on && self.reduce);
        self
    }

    /// As [`crate::ClusterMachine::create_pruning`].
    pub fn create_pruning(&self) -> &CreatePruning {
        &self.creates
    }

    /// Every custom resource of the scope (member 0's first, then one per further member).
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The custom resource kinds, by member.
    pub fn cr_kinds(&self) -> &[Kind] {
        &self.cr_kinds
    }

    /// The member reconciling custom resources of `kind`.
    pub fn member_of(&self, kind: &Kind) -> Option<usize> {
        self.cr_kinds.iter().position(|k| k == kind)
    }

    /// The custom resource of slot `c` as the user writes it for `spec`.
    pub fn cr_object_at(&self, c: usize, spec: &Value) -> DynamicObject {
        let key = &self.slots[c].key;
        let mut body = serde_json::Map::new();
        body.insert("spec".into(), spec.clone());
        DynamicObject::new(anvil_objects::ObjectParts {
            kind: key.kind.clone(),
            metadata: anvil_objects::ObjectMeta {
                name: Some(key.name.to_string()),
                namespace: Some(key.namespace.to_string()),
                ..Default::default()
            },
            body,
        })
    }

    /// The kinds (other than the custom resources') with more than the scope's bound of
    /// objects.
    pub fn kinds_over_bound(&self, s: &SetStateOf<S, X>) -> Vec<Kind> {
        let mut counts: BTreeMap<&Kind, usize> = BTreeMap::new();
        for k in s.etcd.objects.keys() {
            if !self.cr_kinds.contains(&k.kind) {
                *counts.entry(&k.kind).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n > self.scope.max_objects_per_kind)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Steps of the reconcile of `key` from `local` (the single machine's rules, including
    /// its eager steps with the reductions on: see `crate::model`).
    fn step(
        &self,
        s: &mut SetStateOf<S, X>,
        key: &ObjectRef,
        cr_obj: DynamicObject,
        local: S::Local,
        resp: Option<Response<S::P>>,
    ) -> Option<()> {
        let member = self.member_of(&key.kind)?;
        let eager = if self.reduce { EAGER_IDLE_STEPS } else { 0 };
        let (mut local, mut resp) = (local, resp);
        for round in 0..=eager {
            if is_end::<S>(&local) {
                s.ongoing.remove(key);
                return Some(());
            }
            let (t, req) = S::core(member, &cr_obj, resp, local)?;
            if let Some(req) = req {
                s.network.push(Msg {
                    stale: false,
                    from: key.clone(),
                    req,
                    basis: None,
                });
                s.ongoing.insert(
                    key.clone(),
                    Ongoing {
                        cr: cr_obj,
                        local: t,
                        pending: Pending::Waiting,
                        seen: Vec::new(),
                    },
                );
                return Some(());
            }
            if round == eager && !is_end::<S>(&t) {
                s.ongoing.insert(
                    key.clone(),
                    Ongoing {
                        cr: cr_obj,
                        local: t,
                        pending: Pending::Idle,
                        seen: Vec::new(),
                    },
                );
                return Some(());
            }
            (local, resp) = (t, None);
        }
        s.ongoing.remove(key);
        Some(())
    }

    /// Delivers a response to the reconcile that sent `m` (see the single machine's
    /// `deliver`: with the reductions on, the reconcile processes it in the same step).
    fn deliver(&self, s: &mut SetStateOf<S, X>, m: &Msg<S::Q>, resp: Response<S::P>) -> Option<()> {
        let eager = self.reduce;
        match take_delivery(&mut s.ongoing, &m.from, m.stale, resp, is_end::<S>, eager) {
            Some((o, resp)) => self.step(s, &m.from, o.cr, o.local, Some(resp)),
            None => Some(()),
        }
    }

    /// The API server (or the external system) executes `m`'s request on `s`.
    pub fn handle(&self, s: &mut SetStateOf<S, X>, m: &Msg<S::Q>) -> Response<S::P> {
        match &m.req {
            Request::Kube(k) => Response::Kube(memo::memo_handle(&self.kinds, &mut s.etcd, k)),
            Request::External(q) => {
                Response::External(self.external.handle(&mut s.external, q, &s.etcd))
            }
        }
    }

    fn error_answer(
        &self,
        req: &Request<S::Q>,
        reason: ErrorReason,
        what: &str,
    ) -> Option<Response<S::P>> {
        Some(match req {
            Request::Kube(k) => Response::Kube(k.error_response(ApiError::new(reason, what))),
            Request::External(q) => Response::External(self.external.drop_response(q)?),
        })
    }

    fn transient_all(&self) -> bool {
        self.scope.faults.transient
    }
}

mod machine;
