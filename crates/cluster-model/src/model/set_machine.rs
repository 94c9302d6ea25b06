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
//! * **Reductions.** All of [`crate::ClusterMachine::with_reductions`] stay in force; none
//!   assumes a single controller: the fixed order of fault switches and spent budgets are
//!   about the (shared) switches only; dropping a crashed member's reads in flight drops
//!   requests whose handling changes nothing and whose answer nobody reads (the member that
//!   sent them restarted); a stale request's failures all lead to the same state whoever sent
//!   it. The canonical renaming of tokens is the same function ([`canonicalize_state`]).
//!
//! The runtime rules R1-R5 of [`crate::model`] hold for every member.

use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
use crate::model::canon::canonicalize_state;
use crate::model::set::ControllerSet;
use crate::model::state::{Action, CrEnv, EnvState, GcDelete, Key, Msg, Ongoing, Pending, State};
use crate::model::{Fault, FaultState, builtins, faults, first_fault_on, memo};
use crate::scope::Scope;
use anvil_checker::{Fairness, Machine};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{ApiError, ErrorReason, Preconditions, Request, Response};
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
    _s: std::marker::PhantomData<fn() -> S>,
}

fn is_end<S: ControllerSet>(l: &S::Local) -> bool {
    S::done(l) || S::error(l)
}

fn is_read_only<Q>(r: &Request<Q>) -> bool {
    matches!(r, Request::Kube(k) if !k.is_mutating())
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
        Ok(SetMachine {
            kinds,
            scope,
            external,
            cr_kinds,
            slots,
            reduce: true,
            _s: std::marker::PhantomData,
        })
    }

    /// Turns the verdict-preserving reductions on (the default) or off (see the module docs).
    pub fn with_reductions(mut self, on: bool) -> Self {
        self.reduce = on;
        self
    }

    /// Whether the reductions are on.
    pub fn reductions(&self) -> bool {
        self.reduce
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
                name: Some(key.name.clone()),
                namespace: Some(key.namespace.clone()),
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

    fn step(
        &self,
        s: &mut SetStateOf<S, X>,
        key: &ObjectRef,
        cr_obj: DynamicObject,
        local: S::Local,
        resp: Option<Response<S::P>>,
    ) -> Option<()> {
        if is_end::<S>(&local) {
            s.ongoing.remove(key);
            return Some(());
        }
        let member = self.member_of(&key.kind)?;
        let (t, req) = S::core(member, &cr_obj, resp, local)?;
        let pending = match req {
            Some(req) => {
                s.network.push(Msg {
                    stale: false,
                    from: key.clone(),
                    req,
                    basis: None,
                });
                Pending::Waiting
            }
            None if is_end::<S>(&t) => {
                s.ongoing.remove(key);
                return Some(());
            }
            None => Pending::Idle,
        };
        s.ongoing.insert(
            key.clone(),
            Ongoing {
                cr: cr_obj,
                local: t,
                pending,
                seen: Vec::new(),
            },
        );
        Some(())
    }

    fn deliver(s: &mut SetStateOf<S, X>, m: &Msg<S::Q>, resp: Response<S::P>) {
        if m.stale {
            return;
        }
        if let Some(o) = s.ongoing.get_mut(&m.from)
            && o.pending == Pending::Waiting
        {
            if is_end::<S>(&o.local) {
                s.ongoing.remove(&m.from);
            } else {
                o.pending = Pending::Ready(resp);
            }
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

impl<S, X> Machine for SetMachine<S, X>
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P>,
{
    type State = SetStateOf<S, X>;
    type Action = Action;
    type FairnessKey = Key;

    fn init_states(&self) -> Vec<Self::State> {
        let f = &self.scope.faults;
        // (a scope whose objects are rejected is a configuration error of `verify_set`)
        let etcd = crate::model::initial_etcd(&self.kinds, &self.scope).unwrap_or_default();
        vec![State {
            etcd,
            network: Vec::new(),
            gc: Vec::new(),
            ongoing: BTreeMap::new(),
            external: self.external.init(),
            env: EnvState {
                crs: self
                    .slots
                    .iter()
                    .map(|sl| CrEnv {
                        spec: 0,
                        creates_left: 1 + sl.max_deletes,
                        edits_left: sl.max_edits,
                        deletes_left: sl.max_deletes,
                    })
                    .collect(),
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
        if !self.kinds_over_bound(s).is_empty() {
            return;
        }
        for (i, m) in s.network.iter().enumerate() {
            out.push(Action::Handle(i));
            if self.reduce && m.stale {
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
        for sl in &self.slots {
            if s.etcd.objects.contains_key(&sl.key) && !s.ongoing.contains_key(&sl.key) {
                out.push(Action::Start(sl.key.clone()));
            }
        }
        for (k, o) in &s.ongoing {
            if o.pending != Pending::Waiting {
                out.push(Action::Continue(k.clone()));
            }
        }
        if s.faults.crash {
            for (i, kind) in self.cr_kinds.iter().enumerate() {
                if s.ongoing.keys().any(|k| &k.kind == kind) {
                    out.push(Action::CrashMember(i));
                }
            }
        }
        if self.reduce {
            out.extend(first_fault_on(&s.faults).map(Action::Disable));
        } else {
            out.extend(
                Fault::ALL
                    .into_iter()
                    .filter(|f| s.faults.get(*f))
                    .map(Action::Disable),
            );
        }
        for g in &s.gc {
            out.push(Action::GcDelete(g.key.clone()));
        }
        for (k, o) in s.etcd.objects.iter() {
            if crate::api::garbage_collectable(&s.etcd, k) && !s.gc.iter().any(|g| &g.key == k) {
                out.push(Action::Gc(k.clone()));
            }
            if memo::memo_next_status(o).is_some() {
                out.push(Action::Builtin(k.clone()));
            }
            if !self.cr_kinds.contains(&k.kind) && s.faults.other {
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
            let sl = &self.slots[c];
            let cr = s.etcd.objects.get(&sl.key);
            if cr.is_none() && env.creates_left > 0 {
                out.push(Action::UserCreate(c));
            }
            if let Some(cr) = cr
                && cr.metadata().deletion_timestamp.is_none()
            {
                if env.edits_left > 0 {
                    for i in 0..sl.specs.len() {
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
                Self::deliver(&mut n, &m, resp);
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
                Self::deliver(&mut n, &m, resp);
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
                Self::deliver(&mut n, &m, answer);
            }
            Action::Start(k) => {
                if s.ongoing.contains_key(k) {
                    return None;
                }
                let member = self.member_of(&k.kind)?;
                let cr = s.etcd.objects.get(k)?.clone();
                if S::validate(member, &cr)? {
                    self.step(&mut n, k, cr, S::init(member), None)?;
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
            Action::CrashMember(i) => {
                let kind = self.cr_kinds.get(*i)?;
                if !s.faults.crash || !s.ongoing.keys().any(|k| &k.kind == kind) {
                    return None;
                }
                let mine = |m: &Msg<S::Q>| &m.from.kind == kind;
                if self.reduce {
                    n.network
                        .retain(|m| !(mine(m) && !m.stale && is_read_only(&m.req)));
                }
                for m in &mut n.network {
                    if mine(m) {
                        m.stale = true;
                    }
                }
                if n.network.iter().filter(|m| m.stale).count() > self.scope.max_stale_requests {
                    return None;
                }
                n.ongoing.retain(|k, _| &k.kind != kind);
            }
            Action::Crash => return None,
            Action::Disable(f) => {
                if !s.faults.get(*f) || (self.reduce && first_fault_on(&s.faults) != Some(*f)) {
                    return None;
                }
                n.faults.set(*f, false);
            }
            Action::Gc(k) => {
                if !crate::api::garbage_collectable(&s.etcd, k) || s.gc.iter().any(|g| &g.key == k)
                {
                    return None;
                }
                let uid = s.etcd.objects.get(k)?.uid()?.to_string();
                n.gc.push(GcDelete {
                    key: k.clone(),
                    uid,
                });
                n.gc.sort();
            }
            Action::GcDelete(k) => {
                let i = n.gc.iter().position(|g| &g.key == k)?;
                let g = n.gc.remove(i);
                let pre = Preconditions {
                    uid: Some(g.uid),
                    resource_version: None,
                };
                let _ = n.etcd.delete(&self.kinds, &g.key, Some(&pre));
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
                let obj = self.cr_object_at(*c, &self.slots[*c].specs[env.spec]);
                n.env.crs[*c].creates_left -= 1;
                n.etcd.create(&self.kinds, &obj).ok()?;
            }
            Action::UserEdit(c, i) => {
                if s.env.crs.get(*c)?.edits_left == 0 {
                    return None;
                }
                let sl = self.slots.get(*c)?;
                let cur = s.etcd.objects.get(&sl.key)?;
                let spec = sl.specs.get(*i)?.clone();
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
                n.etcd
                    .delete(&self.kinds, &self.slots.get(*c)?.key, None)
                    .ok()?;
            }
            Action::OtherDelete(k) => {
                if !s.faults.other
                    || s.env.other_deletes_left == 0
                    || self.cr_kinds.contains(&k.kind)
                {
                    return None;
                }
                n.env.other_deletes_left -= 1;
                n.etcd.delete(&self.kinds, k, None).ok()?;
            }
            Action::OtherUpdate(k) => {
                if !s.faults.other
                    || s.env.other_updates_left == 0
                    || self.cr_kinds.contains(&k.kind)
                {
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
        match a {
            Action::Handle(i) => {
                let m = &s.network[*i];
                let pos = s.network[..*i]
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
            Action::Gc(k) => Fairness::Weak(Key::Gc(k.clone())),
            Action::GcDelete(k) => Fairness::Weak(Key::GcDelete(k.clone())),
            Action::Builtin(k) => Fairness::Weak(Key::Builtin(k.clone())),
            Action::Disable(f) => Fairness::Weak(Key::Disable(*f)),
            Action::Drop(..)
            | Action::LoseResponse(..)
            | Action::Crash
            | Action::CrashMember(_)
            | Action::UserCreate(_)
            | Action::UserEdit(..)
            | Action::UserDelete(_)
            | Action::OtherDelete(_)
            | Action::OtherUpdate(_)
            | Action::PodLoss(_) => Fairness::Unfair,
        }
    }

    fn representative(&self, mut s: Self::State) -> Self::State {
        if self.reduce {
            if s.env.other_deletes_left == 0 && s.env.other_updates_left == 0 {
                s.faults.other = false;
            }
            if s.env.pod_losses_left == 0 {
                s.faults.pod_loss = false;
            }
        }
        canonicalize_state(&mut s);
        s
    }
}
