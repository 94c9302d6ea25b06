//! The transitions of [`SetMachine`]: which actions are enabled, their effects, fairness and
//! the canonical form (the single-controller machine's, per member).

use super::{SetMachine, SetStateOf};
use crate::external::ExternalModel;
use crate::model::canon::canonicalize_state;
use crate::model::set::ControllerSet;
use crate::model::state::{Action, CrEnv, EnvState, Key, Msg, Pending, State};
use crate::model::{
    FaultState, builtins, crash_network, disable_actions, drop_doomed_stale, fairness_of, faults,
    gc, memo, switch_off_spent, switched_off, token_order, unsent_masks,
};
use crate::small_map::SmallMap;
use anvil_checker::{Fairness, Machine};

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
            ongoing: SmallMap::new(),
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
                    if self.reduce {
                        let mine = |m: &Msg<S::Q>| &m.from.kind == kind;
                        out.extend(
                            unsent_masks(&s.network, mine).map(|b| Action::CrashUnsent(i, b)),
                        );
                    }
                }
            }
        }
        disable_actions(&s.faults, self.reduce, out);
        gc::collector_deletes(&s.gc, out);
        for (k, o) in s.etcd.objects.iter() {
            gc::collector_actions(&s.etcd, &s.network, &s.gc, k, self.reduce, out);
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
            Action::CrashMember(i) | Action::CrashUnsent(i, _) => {
                let unsent = match a {
                    Action::CrashUnsent(_, b) if self.reduce && *b != 0 => *b,
                    Action::CrashUnsent(..) => return None,
                    _ => 0,
                };
                let kind = self.cr_kinds.get(*i)?;
                if !s.faults.crash || !s.ongoing.keys().any(|k| &k.kind == kind) {
                    return None;
                }
                crash_network(
                    &mut n.network,
                    |m: &Msg<S::Q>| &m.from.kind == kind,
                    self.reduce,
                    unsent,
                )?;
                if n.network.iter().filter(|m| m.stale).count() > self.scope.max_stale_requests {
                    return None;
                }
                n.ongoing.retain(|k, _| &k.kind != kind);
            }
            Action::Crash => return None,
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
                let key = &self.slots.get(*c)?.key;
                n.etcd.delete(&self.kinds, key, None).ok()?;
                self.creates.observe(&s.etcd, &n.etcd, &s.env);
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
                self.creates.observe(&s.etcd, &n.etcd, &s.env);
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
