//! Non-interference invariants of a controller set, over the requests in flight (a write is
//! checked when it is sent, before the API server executes it, so the shortest counterexample
//! ends with the offending request).
//!
//! * [`foreign_write_by`]: a member writes only its own custom resource or objects its custom
//!   resource controls (`no_foreign_writes:<controller>`).
//! * [`shared_write_in`]: no object is written by two members (`no_shared_writes`).
//! * [`undeclared_read_by`]: a member reads only the kinds it declares, and its own custom
//!   resources (`declared_reads:<controller>`).

use crate::kinds::KindRegistry;
use crate::model::stale::doomed;
use crate::model::state::{Msg, State};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::{KubeRequest, Request};

/// The object a request writes and the object it sends (if any).
pub fn write_target(req: &KubeRequest) -> Option<(ObjectRef, Option<&DynamicObject>)> {
    match req {
        KubeRequest::Create(o) | KubeRequest::Update(o) | KubeRequest::UpdateStatus(o) => {
            Some((o.object_ref(), Some(o)))
        }
        KubeRequest::GetThenUpdate { obj, .. } | KubeRequest::GetThenUpdateStatus { obj, .. } => {
            Some((obj.object_ref(), Some(obj)))
        }
        KubeRequest::Delete { key, .. } | KubeRequest::GetThenDelete { key, .. } => {
            Some((key.clone(), None))
        }
        KubeRequest::Get(_) | KubeRequest::List { .. } => None,
    }
}

/// The kind a request reads (Get, List, and the read half of a `GetThen*`).
pub fn read_kind(req: &KubeRequest) -> Option<&Kind> {
    match req {
        KubeRequest::Get(k) => Some(&k.kind),
        KubeRequest::List { kind, .. } => Some(kind),
        KubeRequest::GetThenUpdate { obj, .. } | KubeRequest::GetThenUpdateStatus { obj, .. } => {
            Some(obj.kind())
        }
        KubeRequest::GetThenDelete { key, .. } => Some(&key.kind),
        _ => None,
    }
}

fn kube<Q>(m: &Msg<Q>) -> Option<&KubeRequest> {
    match &m.req {
        Request::Kube(k) => Some(k),
        Request::External(_) => None,
    }
}

/// Whether `req`, sent by the reconcile of the custom resource `cr` (as the reconcile sees it),
/// writes something other than `cr` itself or an object `cr` controls. A sent object must
/// carry `cr`'s controller reference; an Update, UpdateStatus or Delete of a stored object
/// that `cr` does not control (or that no one controls) would take it over or destroy it,
/// unless the write is guarded by the server-side ownership check of a `GetThen*`. Writes to
/// another custom resource kind of the set (`cr_kinds`) are always foreign.
pub fn is_foreign_write<T, Q, P, XS>(
    s: &State<T, Q, P, XS>,
    cr: &DynamicObject,
    cr_kinds: &[Kind],
    req: &KubeRequest,
) -> bool {
    let Some((key, sent)) = write_target(req) else {
        return false;
    };
    if key == cr.object_ref() {
        return false;
    }
    if cr_kinds.contains(&key.kind) {
        return true;
    }
    let Some(owner) = Owner::of_object(cr) else {
        return true;
    };
    let guarded = matches!(
        req,
        KubeRequest::GetThenUpdate { .. }
            | KubeRequest::GetThenUpdateStatus { .. }
            | KubeRequest::GetThenDelete { .. }
    );
    let sent_foreign = sent.is_some_and(|o| !is_controlled_by(o, &owner));
    let stored_foreign = !guarded
        && !matches!(req, KubeRequest::Create(_))
        && s.etcd
            .objects
            .get(&key)
            .is_some_and(|o| !is_controlled_by(o, &owner));
    sent_foreign || stored_foreign
}

/// A live reconcile of a custom resource of `kind` (a member's kind) has a foreign write in
/// flight ([`is_foreign_write`]).
pub fn foreign_write_by<T, Q, P, XS>(
    kind: &Kind,
    cr_kinds: &[Kind],
    s: &State<T, Q, P, XS>,
) -> bool {
    s.network.iter().any(|m| {
        if m.stale || m.from.kind != *kind {
            return false;
        }
        let (Some(o), Some(req)) = (s.ongoing.get(&m.from), kube(m)) else {
            return false;
        };
        is_foreign_write(s, &o.cr, cr_kinds, req)
    })
}

/// Two members write the same object: a write in flight (live, or stale unless it would fail
/// if handled now: a precondition on a resourceVersion or uid the object no longer has, or a
/// Create of an object that exists; [`crate::model::stale`]) of one member targets another
/// member's custom resource, an object stored with a controller reference to another member's
/// kind, or an object another member also has a write in flight for.
pub fn shared_write_in<T, Q, P, XS>(
    kinds: &KindRegistry,
    cr_kinds: &[Kind],
    s: &State<T, Q, P, XS>,
) -> bool {
    let writes: Vec<(&Kind, ObjectRef)> = s
        .network
        .iter()
        .filter(|m| !(m.stale && kube(m).is_some_and(|k| doomed(kinds, &s.etcd, k, true))))
        .filter_map(|m| Some((&m.from.kind, write_target(kube(m)?)?.0)))
        .collect();
    writes.iter().enumerate().any(|(i, (by, key))| {
        if cr_kinds.contains(&key.kind) && key.kind != **by {
            return true;
        }
        let controller_kind = s
            .etcd
            .objects
            .get(key)
            .and_then(|o| o.controller_ref())
            .map(|r| r.kind.clone());
        if let Some(ck) = controller_kind
            && cr_kinds.iter().any(|k| k.kind() == ck.as_str() && k != *by)
        {
            return true;
        }
        writes[i + 1..]
            .iter()
            .any(|(other, k2)| other != by && k2 == key)
    })
}

/// A request of a member (custom resources of `kind`, live or stale) reads a kind outside
/// `declared` (its own custom resource kind is always allowed).
pub fn undeclared_read_by<T, Q, P, XS>(
    kind: &Kind,
    declared: &[Kind],
    s: &State<T, Q, P, XS>,
) -> bool {
    s.network.iter().any(|m| {
        m.from.kind == *kind
            && kube(m)
                .and_then(read_kind)
                .is_some_and(|k| k != kind && !declared.contains(k))
    })
}
