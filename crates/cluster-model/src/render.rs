//! Counterexamples rendered step by step: which actor, which request and response, which
//! objects changed (a compact diff), and where a lasso's cycle starts.

use crate::external::ExternalModel;
use crate::model::{
    Action, ClusterMachine, MatchesFn, ModelReconciler, Msg, Pending, State, StateOf, typed,
};
use anvil_checker::{Counterexample, Machine, Step};
use anvil_objects::{DynamicObject, ObjectRef};
use anvil_reconciler::{KubeRequest, KubeResponse, Request, Response};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One rendered step.
#[derive(Clone, Debug, Serialize)]
pub struct TraceStep {
    /// Position in the trace (0 is the initial state).
    pub step: usize,
    /// Who acted: `user`, `controller`, `controller-runtime`, `api-server`, `external-system`,
    /// `garbage-collector`, `statefulset-controller`, `daemonset-controller`, `fault`,
    /// `other-writer`, or `-` (initial state / stuttering).
    pub actor: String,
    /// What happened.
    pub action: String,
    /// The request sent or handled, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The response produced or consumed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Objects that changed, one line each.
    pub changes: Vec<String>,
    /// `desired_state_is`: the CR exists and is not being deleted.
    pub cr_exists: bool,
    /// The lane of `actor` in a sequence diagram (one of [`LANES`]); none for `-`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    /// The arrows of this step in a sequence diagram: the request sent, the response
    /// delivered, the fault's effect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<TraceMessage>,
    /// The structured form of `changes`: per object, field by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<ObjectDiff>,
    /// `current_state_matches(cr)` after this step (the cluster is in the desired state),
    /// when the trace was rendered with the controller's predicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<bool>,
}

/// The lanes of a sequence diagram, in display order: `user`, `controller`, `api-server`,
/// `external-system`, `garbage-collector`, `built-in-controllers`, `fault`, `other-writer`.
pub const LANES: &[&str] = &[
    "user",
    "controller",
    "api-server",
    "external-system",
    "garbage-collector",
    "built-in-controllers",
    "fault",
    "other-writer",
];

/// The lane of an actor (`None` for `-`, the initial state and stuttering).
pub fn lane_of(actor: &str) -> Option<&'static str> {
    Some(match actor {
        "user" => "user",
        "controller" | "controller-runtime" => "controller",
        "api-server" => "api-server",
        "external-system" => "external-system",
        "garbage-collector" => "garbage-collector",
        "statefulset-controller" | "daemonset-controller" => "built-in-controllers",
        "fault" => "fault",
        "other-writer" => "other-writer",
        _ => return None,
    })
}

/// One arrow of a sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceMessage {
    /// The sender's lane (one of [`LANES`]).
    pub from: String,
    /// The receiver's lane (one of [`LANES`]).
    pub to: String,
    /// `request` (a request sent, or a write done at once), `response` (a response
    /// delivered) or `signal` (a crash, a lost pod).
    pub kind: String,
    /// What it carries.
    pub label: String,
    /// The receiver ignores it (the response to a request of a crashed incarnation).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
}

impl TraceMessage {
    fn new(from: &str, to: &str, kind: &str, label: String) -> Self {
        TraceMessage {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
            label,
            ignored: false,
        }
    }
}

/// The change of one object in one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectDiff {
    /// `created`, `changed` or `deleted`.
    pub op: String,
    /// The object, `Kind/namespace/name`.
    pub object: String,
    /// Its resourceVersion after the step (before it, for a deleted object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The fields (flattened paths such as `spec.replicas` or `metadata.ownerReferences[0].uid`)
    /// that changed; every field for a created or deleted object.
    pub fields: Vec<FieldChange>,
}

/// One changed field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Flattened path.
    pub path: String,
    /// JSON value before the step (none: the field was added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// JSON value after the step (none: the field was removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// A rendered counterexample.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// `path` (safety) or `lasso` (liveness).
    pub kind: String,
    /// The path, or the lasso's prefix (ending in the state where the cycle starts).
    pub prefix: Vec<TraceStep>,
    /// The lasso's cycle (empty for a path), repeated forever.
    pub cycle: Vec<TraceStep>,
}

/// Short description of a request.
pub fn describe_request<Q: std::fmt::Debug>(r: &Request<Q>) -> String {
    match r {
        Request::External(q) => format!("external {q:?}"),
        Request::Kube(k) => {
            let key = k.key().map(|k| k.to_string()).unwrap_or_else(|| match k {
                KubeRequest::List {
                    kind, namespace, ..
                } => format!("{kind}/{namespace}/*"),
                _ => String::new(),
            });
            let extra = match k {
                KubeRequest::Update(o) | KubeRequest::UpdateStatus(o) => {
                    match o.resource_version() {
                        Some(rv) => format!(" if resourceVersion={rv}"),
                        None => " unconditionally (no resourceVersion)".into(),
                    }
                }
                KubeRequest::Delete {
                    preconditions: Some(p),
                    ..
                } => format!(
                    " if uid={:?} resourceVersion={:?}",
                    p.uid, p.resource_version
                ),
                KubeRequest::GetThenUpdate { owner, .. }
                | KubeRequest::GetThenUpdateStatus { owner, .. }
                | KubeRequest::GetThenDelete { owner, .. } => {
                    format!(" if controlled by {} ({})", owner.name, owner.uid)
                }
                _ => String::new(),
            };
            let owner = match k {
                KubeRequest::Create(o) | KubeRequest::Update(o) => o
                    .controller_ref()
                    .map(|r| format!(", controller owner {} ({})", r.name, r.uid))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            format!("{} {key}{extra}{owner}", k.verb())
        }
    }
}

fn obj_short(o: &DynamicObject) -> String {
    format!(
        "{} ({})",
        o.object_ref(),
        o.resource_version().unwrap_or("no resourceVersion")
    )
}

/// Short description of a response.
pub fn describe_response<P: std::fmt::Debug>(r: &Response<P>) -> String {
    match r {
        Response::External(p) => format!("external {p:?}"),
        Response::Kube(k) => {
            if let Some(e) = k.error() {
                return format!("{}: {:?}: {}", verb(k), e.reason, e.message);
            }
            match k {
                KubeResponse::List(Ok(l)) => format!("List: {} objects", l.len()),
                KubeResponse::Delete(_) | KubeResponse::GetThenDelete(_) => {
                    format!("{}: ok", verb(k))
                }
                _ => format!(
                    "{}: ok, {}",
                    verb(k),
                    k.object().map(obj_short).unwrap_or_default()
                ),
            }
        }
    }
}

fn verb(k: &KubeResponse) -> &'static str {
    match k {
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

fn flatten(v: &Value, path: String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(x, p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, format!("{path}[{i}]"), out);
            }
        }
        other => {
            out.insert(path, other.to_string());
        }
    }
}

/// One-line diffs between two object maps.
pub fn diff_objects(a: &crate::store::ObjectStore, b: &crate::store::ObjectStore) -> Vec<String> {
    let mut out = Vec::new();
    for (k, o) in b.iter() {
        match a.get(k) {
            None => out.push(format!("+ {} created", obj_short(o))),
            Some(p) if p != o => {
                let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
                flatten(&p.to_json(), String::new(), &mut fa);
                flatten(&o.to_json(), String::new(), &mut fb);
                let mut fields = Vec::new();
                for (path, v) in &fb {
                    match fa.get(path) {
                        None => fields.push(format!("{path}: {v}")),
                        Some(w) if w != v => fields.push(format!("{path}: {w} -> {v}")),
                        _ => {}
                    }
                }
                for path in fa.keys() {
                    if !fb.contains_key(path) {
                        fields.push(format!("{path}: removed"));
                    }
                }
                out.push(format!("~ {k}: {}", fields.join(", ")));
            }
            _ => {}
        }
    }
    for (k, o) in a.iter() {
        if !b.contains_key(k) {
            out.push(format!("- {} deleted", obj_short(o)));
        }
    }
    out
}

/// Field-by-field diffs between two object maps (the structured form of [`diff_objects`], in
/// the same order).
pub fn diff_objects_structured(
    a: &crate::store::ObjectStore,
    b: &crate::store::ObjectStore,
) -> Vec<ObjectDiff> {
    let fields_of = |o: &DynamicObject| {
        let mut f = BTreeMap::new();
        flatten(&o.to_json(), String::new(), &mut f);
        f
    };
    let rv = |o: &DynamicObject| o.resource_version().map(str::to_string);
    let mut out = Vec::new();
    for (k, o) in b.iter() {
        match a.get(k) {
            None => out.push(ObjectDiff {
                op: "created".into(),
                object: k.to_string(),
                resource_version: rv(o),
                fields: fields_of(o)
                    .into_iter()
                    .map(|(path, v)| FieldChange {
                        path,
                        before: None,
                        after: Some(v),
                    })
                    .collect(),
            }),
            Some(p) if p != o => {
                let (fa, fb) = (fields_of(p), fields_of(o));
                let mut fields = Vec::new();
                for (path, v) in &fb {
                    match fa.get(path) {
                        None => fields.push(FieldChange {
                            path: path.clone(),
                            before: None,
                            after: Some(v.clone()),
                        }),
                        Some(w) if w != v => fields.push(FieldChange {
                            path: path.clone(),
                            before: Some(w.clone()),
                            after: Some(v.clone()),
                        }),
                        _ => {}
                    }
                }
                for (path, w) in &fa {
                    if !fb.contains_key(path) {
                        fields.push(FieldChange {
                            path: path.clone(),
                            before: Some(w.clone()),
                            after: None,
                        });
                    }
                }
                out.push(ObjectDiff {
                    op: "changed".into(),
                    object: k.to_string(),
                    resource_version: rv(o),
                    fields,
                });
            }
            _ => {}
        }
    }
    for (k, o) in a.iter() {
        if !b.contains_key(k) {
            out.push(ObjectDiff {
                op: "deleted".into(),
                object: k.to_string(),
                resource_version: rv(o),
                fields: fields_of(o)
                    .into_iter()
                    .map(|(path, v)| FieldChange {
                        path,
                        before: Some(v),
                        after: None,
                    })
                    .collect(),
            });
        }
    }
    out
}

/// The lane that handles a request.
fn handler_lane<Q>(r: &Request<Q>) -> &'static str {
    match r {
        Request::Kube(_) => "api-server",
        Request::External(_) => "external-system",
    }
}

/// What rendering a step needs from the machine that took it (the single-controller
/// [`ClusterMachine`] and the controller-set machine implement it).
pub trait TraceCtx<T, Q, P, XS> {
    /// `desired_state_is` of the trace's (first) custom resource in `s`.
    fn cr_live(&self, s: &State<T, Q, P, XS>) -> bool;
    /// The response the API server (or external system) gives `m` on `s`.
    fn handle_msg(&self, s: &mut State<T, Q, P, XS>, m: &Msg<Q>) -> Response<P>;
    /// The custom resource of the user's actions' index `c`.
    fn slot_key(&self, c: usize) -> ObjectRef;
    /// Spec `i` of that custom resource.
    fn slot_spec(&self, c: usize, i: usize) -> Value;
    /// How the reconcile step of `key` from `prev` ends, e.g. `" -> reconcile done"` (empty
    /// when it goes on; `None` when the custom resource does not decode).
    fn ending(&self, key: &ObjectRef, prev: &State<T, Q, P, XS>) -> Option<String>;
}

impl<R, X> TraceCtx<R::T, R::ExternalRequest, R::ExternalResponse, X::State>
    for ClusterMachine<R, X>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    fn cr_live(&self, s: &StateOf<R, X>) -> bool {
        self.live_cr(s).is_some()
    }
    fn handle_msg(
        &self,
        s: &mut StateOf<R, X>,
        m: &Msg<R::ExternalRequest>,
    ) -> Response<R::ExternalResponse> {
        self.handle(s, m)
    }
    fn slot_key(&self, c: usize) -> ObjectRef {
        self.cr_key_at(c)
    }
    fn slot_spec(&self, _: usize, i: usize) -> Value {
        self.scope.specs[i].clone()
    }
    fn ending(&self, k: &ObjectRef, prev: &StateOf<R, X>) -> Option<String> {
        let o = prev.ongoing.get(k);
        let (cr, local, resp) = match o {
            Some(o) => (
                o.cr.clone(),
                o.local.clone(),
                match &o.pending {
                    Pending::Ready(r) => Some(r.clone()),
                    _ => None,
                },
            ),
            None => (
                prev.etcd.objects.get(k)?.clone(),
                R::reconcile_init_state(),
                None,
            ),
        };
        typed::<R::R>(&cr).map(|c| {
            if R::reconcile_done(&local) || R::reconcile_error(&local) {
                return " -> the reconcile ends (its state was already done/error)".to_string();
            }
            let (t, _) = R::reconcile_core(&c, resp, local);
            if R::reconcile_done(&t) {
                " -> reconcile done".to_string()
            } else if R::reconcile_error(&t) {
                format!(" -> reconcile error ({t:?})")
            } else {
                String::new()
            }
        })
    }
}

/// Renders one step (`prev` none: the initial state).
pub fn render_step<T, Q, P, XS>(
    m: &dyn TraceCtx<T, Q, P, XS>,
    index: usize,
    prev: Option<&State<T, Q, P, XS>>,
    action: Option<&Action>,
    next: &State<T, Q, P, XS>,
) -> TraceStep
where
    T: Clone,
    Q: std::fmt::Debug + Clone + PartialEq,
    P: std::fmt::Debug + Clone,
    XS: Clone,
{
    let cr_exists = m.cr_live(next);
    let (Some(prev), Some(a)) = (prev, action) else {
        return TraceStep {
            step: index,
            actor: "-".into(),
            action: if index == 0 {
                "initial state".into()
            } else {
                "nothing happens (stuttering)".into()
            },
            request: None,
            response: None,
            changes: Vec::new(),
            cr_exists,
            lane: None,
            messages: Vec::new(),
            diffs: Vec::new(),
            matches: None,
        };
    };
    let mut request = None;
    let mut response = None;
    let mut messages = Vec::new();
    let sent_by = |k: &anvil_objects::ObjectRef| {
        next.network
            .iter()
            .find(|msg| !msg.stale && &msg.from == k && !prev.network.contains(msg))
    };
    let (actor, action) = match a {
        Action::Handle(i) => {
            let msg = &prev.network[*i];
            let mut tmp = prev.clone();
            tmp.network.remove(*i);
            let resp = m.handle_msg(&mut tmp, msg);
            request = Some(describe_request(&msg.req));
            response = Some(describe_response(&resp));
            let actor = handler_lane(&msg.req);
            messages.push(TraceMessage {
                ignored: msg.stale,
                ..TraceMessage::new(actor, "controller", "response", describe_response(&resp))
            });
            let what = if msg.stale {
                format!(
                    "executes a stale request of a crashed controller (for {}); its response is ignored",
                    msg.from
                )
            } else {
                format!("executes a request of the reconcile of {}", msg.from)
            };
            (actor, what)
        }
        Action::Drop(i, reason) => {
            let msg = &prev.network[*i];
            request = Some(describe_request(&msg.req));
            messages.push(TraceMessage {
                ignored: msg.stale,
                ..TraceMessage::new(
                    "fault",
                    "controller",
                    "response",
                    format!("{reason:?} (the request was not executed)"),
                )
            });
            (
                "fault",
                format!("the request fails without being executed: the sender gets {reason:?}"),
            )
        }
        Action::LoseResponse(i, reason) => {
            let msg = &prev.network[*i];
            request = Some(describe_request(&msg.req));
            let mut tmp = prev.clone();
            tmp.network.remove(*i);
            let lost = m.handle_msg(&mut tmp, msg);
            messages.push(TraceMessage::new(
                handler_lane(&msg.req),
                "fault",
                "response",
                format!("{} (lost)", describe_response(&lost)),
            ));
            messages.push(TraceMessage {
                ignored: msg.stale,
                ..TraceMessage::new(
                    "fault",
                    "controller",
                    "response",
                    format!("{reason:?} (the request was executed)"),
                )
            });
            (
                "fault",
                format!(
                    "the request is executed, but its response is lost: the sender gets {reason:?}"
                ),
            )
        }
        Action::Start(k) | Action::Continue(k) => {
            let o = prev.ongoing.get(k);
            if let Some(Pending::Ready(r)) = o.map(|o| &o.pending) {
                response = Some(describe_response(r));
            }
            if let Some(msg) = sent_by(k) {
                request = Some(describe_request(&msg.req));
                messages.push(TraceMessage::new(
                    "controller",
                    handler_lane(&msg.req),
                    "request",
                    describe_request(&msg.req),
                ));
            }
            let ending = m.ending(k, prev);
            let verb = if matches!(a, Action::Start(_)) {
                "starts a reconcile of"
            } else {
                "reconcile step for"
            };
            (
                "controller",
                format!("{verb} {k}{}", ending.unwrap_or_default()),
            )
        }
        Action::CrashMember(i) | Action::CrashUnsent(i, _) => {
            messages.push(TraceMessage::new(
                "fault",
                "controller",
                "signal",
                format!("controller #{i} crashes and restarts"),
            ));
            let what = match a {
                Action::CrashUnsent(_, bits) => format!(
                    " before it sent {} of its write request(s) now in flight (they are never sent); its other requests in flight become stale",
                    bits.count_ones()
                ),
                _ => "; its requests in flight become stale".to_string(),
            };
            (
                "fault",
                format!("controller #{i} crashes and restarts{what}"),
            )
        }
        Action::Crash => {
            messages.push(TraceMessage::new(
                "fault",
                "controller",
                "signal",
                "crash and restart".into(),
            ));
            (
                "fault",
                format!(
                    "the controller crashes and restarts; {} request(s) in flight become stale",
                    prev.network.iter().filter(|m| !m.stale).count()
                ),
            )
        }
        Action::Disable(f) => ("fault", format!("{f:?} faults are switched off for good")),
        Action::Gc(k) => (
            "garbage-collector",
            format!(
                "judges {k} garbage (none of its owners exists) and sends a delete with its uid as precondition"
            ),
        ),
        Action::GcCollect(k) => (
            "garbage-collector",
            format!(
                "judges {k} garbage (none of its owners exists); its delete with the uid as precondition is executed at once"
            ),
        ),
        Action::GcDelete(k) => (
            "api-server",
            format!("executes the garbage collector's delete of {k} (uid precondition)"),
        ),
        Action::Builtin(k) => (
            if k.kind.kind() == "DaemonSet" {
                "daemonset-controller"
            } else {
                "statefulset-controller"
            },
            format!("updates the status of {k}"),
        ),
        Action::UserCreate(c) => ("user", format!("creates {}", m.slot_key(*c))),
        Action::UserEdit(c, i) => (
            "user",
            format!(
                "sets the spec of {} to {}",
                m.slot_key(*c),
                m.slot_spec(*c, *i)
            ),
        ),
        Action::UserDelete(c) => ("user", format!("deletes {}", m.slot_key(*c))),
        Action::OtherDelete(k) => ("other-writer", format!("deletes {k}")),
        Action::OtherUpdate(k) => (
            "other-writer",
            format!("updates {k} (scales it by hand, edits its data or annotates it)"),
        ),
        Action::PodLoss(k) => ("fault", format!("a pod of {k} is lost")),
    };
    // With the reductions on, the receiver processes a response in the step that delivers it
    // (eager steps, see `crate::model`): show what it sent next.
    let mut action = action;
    if let Action::Handle(i) | Action::Drop(i, _) | Action::LoseResponse(i, _) = a
        && let Some(msg) = prev.network.get(*i)
        && !msg.stale
    {
        let before = prev.ongoing.get(&msg.from);
        let after = next.ongoing.get(&msg.from);
        if let Some(next_msg) = sent_by(&msg.from) {
            action.push_str(&format!(
                "; the reconcile of {} processes the answer and sends {}",
                msg.from,
                describe_request(&next_msg.req)
            ));
            messages.push(TraceMessage::new(
                "controller",
                handler_lane(&next_msg.req),
                "request",
                describe_request(&next_msg.req),
            ));
        } else if before.is_some() && after.is_none() {
            action.push_str(&format!("; the reconcile of {} ends", msg.from));
        }
    }
    // Doomed stale requests are dropped from the next state (`crate::model::stale`): say so.
    if !matches!(
        a,
        Action::Crash | Action::CrashMember(_) | Action::CrashUnsent(..)
    ) {
        let stale = |s: &State<T, Q, P, XS>| s.network.iter().filter(|m| m.stale).count();
        let taken = match a {
            Action::Handle(i) | Action::Drop(i, _) | Action::LoseResponse(i, _) => {
                prev.network.get(*i).is_some_and(|m| m.stale)
            }
            _ => false,
        };
        let forgotten = stale(prev).saturating_sub(usize::from(taken) + stale(next));
        if forgotten > 0 {
            action.push_str(&format!(
                "; {forgotten} stale request(s) can no longer succeed (an outdated precondition, or a Create of an object that exists) and are forgotten"
            ));
        }
    }
    let changes = diff_objects(&prev.etcd.objects, &next.etcd.objects);
    let write = |from: &str, label: String| TraceMessage::new(from, "api-server", "request", label);
    match a {
        Action::Gc(k) | Action::GcCollect(k) => {
            messages.push(TraceMessage::new(
                "garbage-collector",
                "api-server",
                "request",
                match prev.etcd.objects.get(k).and_then(|o| o.uid()) {
                    Some(uid) => format!("Delete {k} if uid={uid}"),
                    None => format!("Delete {k}"),
                },
            ));
            if matches!(a, Action::GcCollect(_)) {
                messages.push(TraceMessage::new(
                    "api-server",
                    "garbage-collector",
                    "response",
                    format!("Delete {k}: ok"),
                ));
            }
        }
        Action::GcDelete(k) => messages.push(TraceMessage::new(
            "api-server",
            "garbage-collector",
            "response",
            if changes.is_empty() {
                format!("Delete {k}: not executed (precondition failed or object gone)")
            } else {
                format!("Delete {k}: ok")
            },
        )),
        Action::Builtin(k) => messages.push(TraceMessage::new(
            "built-in-controllers",
            "api-server",
            "request",
            format!("UpdateStatus {k}"),
        )),
        Action::UserCreate(c) => messages.push(write("user", format!("Create {}", m.slot_key(*c)))),
        Action::UserEdit(c, i) => messages.push(write(
            "user",
            format!("Update {}: spec {}", m.slot_key(*c), m.slot_spec(*c, *i)),
        )),
        Action::UserDelete(c) => messages.push(write("user", format!("Delete {}", m.slot_key(*c)))),
        Action::OtherDelete(k) => messages.push(write("other-writer", format!("Delete {k}"))),
        Action::OtherUpdate(k) => messages.push(write("other-writer", format!("Update {k}"))),
        Action::PodLoss(k) => messages.push(TraceMessage::new(
            "fault",
            "api-server",
            "signal",
            format!("a pod of {k} is lost"),
        )),
        _ => {}
    }
    TraceStep {
        step: index,
        actor: actor.into(),
        action,
        request,
        response,
        changes,
        cr_exists,
        lane: lane_of(actor).map(str::to_string),
        messages,
        diffs: diff_objects_structured(&prev.etcd.objects, &next.etcd.objects),
        matches: None,
    }
}

/// Renders a counterexample of `m`.
pub fn render_trace<R, X>(
    m: &ClusterMachine<R, X>,
    cx: &Counterexample<ClusterMachine<R, X>>,
) -> Trace
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    render_trace_inner(m, cx, None)
}

/// Renders a counterexample of `m` and records at every step whether the cluster matched
/// custom resource `cr` in etcd (`matches`: it exists and the controller's
/// `current_state_matches` holds; the trace of an ESR property passes its CR), or with `cr`
/// none every custom resource (some exists and the predicate holds for every one that
/// exists), so that a reader sees where the desired state last held.
pub fn render_trace_matching<R, X>(
    m: &ClusterMachine<R, X>,
    cx: &Counterexample<ClusterMachine<R, X>>,
    matches: &MatchesFn<R::R, X::State>,
    cr: Option<usize>,
) -> Trace
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let keys = match cr {
        Some(i) => vec![m.cr_key_at(i)],
        None => m.cr_keys().to_vec(),
    };
    let pred = |s: &StateOf<R, X>| {
        let crs: Vec<_> = keys.iter().filter_map(|k| s.etcd.objects.get(k)).collect();
        !crs.is_empty()
            && crs
                .iter()
                .all(|o| typed::<R::R>(o).is_some_and(|cr| matches(&cr, &s.etcd, &s.external)))
    };
    render_trace_inner(m, cx, Some(&pred))
}

type StatePred<'a, S> = &'a dyn Fn(&S) -> bool;

fn render_trace_inner<R, X>(
    m: &ClusterMachine<R, X>,
    cx: &Counterexample<ClusterMachine<R, X>>,
    matches: Option<StatePred<'_, StateOf<R, X>>>,
) -> Trace
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    render_any_trace(m, m, cx, matches)
}

/// Renders a counterexample of any machine whose states and actions are the cluster model's
/// (the single-controller machine, the controller-set machine), `ctx` describing its steps;
/// `matches` (if any) is recorded at every step.
pub fn render_any_trace<M, T, Q, P, XS>(
    m: &M,
    ctx: &dyn TraceCtx<T, Q, P, XS>,
    cx: &Counterexample<M>,
    matches: Option<StatePred<'_, State<T, Q, P, XS>>>,
) -> Trace
where
    M: Machine<Action = Action, State = State<T, Q, P, XS>>,
    T: Clone,
    Q: std::fmt::Debug + Clone + PartialEq,
    P: std::fmt::Debug + Clone,
    XS: Clone,
{
    let render = |steps: &[Step<M>], start: usize, first_prev: Option<&State<T, Q, P, XS>>| {
        let mut out = Vec::new();
        let mut prev = first_prev;
        for (i, s) in steps.iter().enumerate() {
            let mut st = render_step(ctx, start + i, prev, s.action.as_ref(), &s.state);
            st.matches = matches.map(|p| p(&s.state));
            out.push(st);
            prev = Some(&s.state);
        }
        out
    };
    match cx {
        Counterexample::Path { steps, .. } => {
            let steps = concretize(m, steps, None);
            Trace {
                kind: "path".into(),
                prefix: render(&steps, 0, None),
                cycle: Vec::new(),
            }
        }
        Counterexample::Lasso { prefix, cycle, .. } => {
            let prefix = concretize(m, prefix, None);
            let last = prefix.last().map(|s| s.state.clone());
            let cycle = concretize(m, cycle, last.clone());
            Trace {
                kind: "lasso".into(),
                prefix: render(&prefix, 0, None),
                cycle: render(&cycle, prefix.len(), last.as_ref()),
            }
        }
    }
}

/// Re-executes a trace of canonical states without canonicalising, so that resourceVersions
/// and uids keep the names they were created with (the canonical states rename them at every
/// step, which would make diffs show renamings as changes). Each concrete state has the
/// recorded canonical state as its representative.
fn concretize<M>(m: &M, steps: &[Step<M>], start: Option<M::State>) -> Vec<Step<M>>
where
    M: Machine<Action = Action>,
{
    let mut out: Vec<Step<M>> = Vec::new();
    let mut cur = start;
    let mut acts = Vec::new();
    for st in steps {
        let next: Step<M> = match (&st.action, &cur) {
            (None, None) => Step {
                action: None,
                state: m
                    .init_states()
                    .into_iter()
                    .find(|s| m.representative(s.clone()) == st.state)
                    .unwrap_or_else(|| st.state.clone()),
            },
            (None, Some(c)) => Step {
                action: None,
                state: c.clone(),
            },
            (Some(a), None) => Step {
                action: Some(a.clone()),
                state: st.state.clone(),
            },
            (Some(a), Some(c)) => {
                acts.clear();
                m.actions(c, &mut acts);
                let found = acts.iter().find_map(|b| {
                    if std::mem::discriminant(a) != std::mem::discriminant(b) {
                        return None;
                    }
                    let by_index = match (a, b) {
                        (Action::Handle(_), Action::Handle(_)) => true,
                        (Action::Drop(_, r1), Action::Drop(_, r2))
                        | (Action::LoseResponse(_, r1), Action::LoseResponse(_, r2)) => r1 == r2,
                        _ => false,
                    };
                    if !by_index && a != b {
                        return None;
                    }
                    let n = m.next_state(c, b)?;
                    (m.representative(n.clone()) == st.state).then(|| Step {
                        action: Some(b.clone()),
                        state: n,
                    })
                });
                found.unwrap_or_else(|| Step {
                    action: Some(a.clone()),
                    state: st.state.clone(),
                })
            }
        };
        cur = Some(next.state.clone());
        out.push(next);
    }
    out
}

/// The human-readable form of a trace.
pub fn trace_text(t: &Trace) -> String {
    let mut s = String::new();
    let step = |s: &mut String, st: &TraceStep| {
        let _ = writeln!(s, "  [{:>3}] {:<22} {}", st.step, st.actor, st.action);
        if st.actor == "controller" {
            if let Some(r) = &st.response {
                let _ = writeln!(s, "        received: {r}");
            }
            if let Some(r) = &st.request {
                let _ = writeln!(s, "        sends:    {r}");
            }
        } else {
            if let Some(r) = &st.request {
                let _ = writeln!(s, "        request:  {r}");
            }
            if let Some(r) = &st.response {
                let _ = writeln!(s, "        response: {r}");
            }
        }
        for c in &st.changes {
            let _ = writeln!(s, "        {c}");
        }
    };
    for st in &t.prefix {
        step(&mut s, st);
    }
    if t.kind == "lasso" {
        let _ = writeln!(
            s,
            "  ---- the cycle starts at step {} and repeats forever (every fairness obligation is met; no fault happens in it) ----",
            t.prefix.last().map(|x| x.step).unwrap_or(0)
        );
        for st in &t.cycle {
            step(&mut s, st);
        }
    }
    s
}

#[allow(dead_code)]
fn _assert_machine<R, X>(m: &ClusterMachine<R, X>) -> usize
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    m.init_states().len()
}
