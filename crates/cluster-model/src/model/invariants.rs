//! Built-in safety invariants over model states.

use crate::model::state::State;
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner};
use anvil_reconciler::{KubeRequest, Request};
use std::collections::BTreeMap;

fn target_of(req: &KubeRequest) -> Option<(ObjectRef, Option<&DynamicObject>)> {
    match req {
        KubeRequest::Create(o) => Some((o.object_ref(), Some(o))),
        KubeRequest::Update(o) | KubeRequest::UpdateStatus(o) => Some((o.object_ref(), Some(o))),
        KubeRequest::GetThenUpdate { obj, .. } | KubeRequest::GetThenUpdateStatus { obj, .. } => {
            Some((obj.object_ref(), Some(obj)))
        }
        KubeRequest::Delete { key, .. } => Some((key.clone(), None)),
        KubeRequest::Get(_) | KubeRequest::List { .. } | KubeRequest::GetThenDelete { .. } => None,
    }
}

/// The controller writes an object controlled by someone other than the CR its reconcile
/// works on: the violation of the `no_foreign_writes` invariant. Two ways count:
///
/// * the object **sent** names another controller (Create, Update, GetThenUpdate*);
/// * the object **stored** is controlled by another owner (or an earlier incarnation of the
///   CR, with another uid) and the write is not guarded by the server-side ownership check of
///   a `GetThen*` request: an Update, UpdateStatus or Delete of it would take it over (for
///   example by rewriting its ownerReferences) or destroy it.
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
        let Request::Kube(req) = &m.req else {
            return false;
        };
        let Some((key, sent)) = target_of(req) else {
            return false;
        };
        if key.kind == *cr_kind {
            return false;
        }
        let sent_foreign = sent
            .and_then(|o| o.controller_ref())
            .is_some_and(|r| !owner.matches(r));
        let guarded = matches!(
            req,
            KubeRequest::GetThenUpdate { .. } | KubeRequest::GetThenUpdateStatus { .. }
        );
        let stored_foreign = !guarded
            && !matches!(req, KubeRequest::Create(_))
            && s.etcd
                .objects
                .get(&key)
                .and_then(|o| o.controller_ref())
                .is_some_and(|r| !owner.matches(r));
        sent_foreign || stored_foreign
    })
}

/// A lost update is in flight: an unconditional Update (no resourceVersion precondition)
/// whose content was built from a version of the object older than the stored one, so that
/// executing it overwrites changes its sender never saw. The version it was built from is
/// [`crate::model::Msg::basis`] (read tracking, any kind: ConfigMap, Secret, Service, ...);
/// without read tracking, the object's `metadata.generation` stands in for it (kinds that
/// track generation only). The violation of the `no_lost_updates` invariant.
pub fn lost_update_in<T, Q, P, X>(s: &State<T, Q, P, X>) -> bool {
    s.network.iter().any(|m| match &m.req {
        Request::Kube(KubeRequest::Update(o)) if o.resource_version().is_none() => {
            let stored = s.etcd.objects.get(&o.object_ref());
            if let Some(basis) = &m.basis {
                return stored.is_some_and(|c| c.resource_version() != Some(basis.as_str()));
            }
            match (
                o.metadata().generation,
                stored.and_then(|c| c.metadata().generation),
            ) {
                (Some(sent), Some(stored)) => sent < stored,
                _ => false,
            }
        }
        _ => false,
    })
}

/// The kinds (other than the CR's) of which more than `bound` objects are stored: a
/// controller that keeps creating objects (e.g. with generateName on every reconcile).
pub fn kinds_over_bound<T, Q, P, X>(
    cr_kind: &Kind,
    bound: usize,
    s: &State<T, Q, P, X>,
) -> Vec<Kind> {
    let mut counts: BTreeMap<&Kind, usize> = BTreeMap::new();
    for k in s.etcd.objects.keys() {
        if k.kind != *cr_kind {
            *counts.entry(&k.kind).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > bound)
        .map(|(k, _)| k.clone())
        .collect()
}
