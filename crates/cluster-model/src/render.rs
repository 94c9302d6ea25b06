//! Counterexamples rendered step by step: which actor, which request and response, which
//! objects changed (a compact diff), and where a lasso's cycle starts.

use crate::external::ExternalModel;
use crate::model::{Action, ClusterMachine, ModelReconciler, Pending, StateOf, typed};
use anvil_checker::{Counterexample, Machine, Step};
use anvil_objects::DynamicObject;
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
pub fn diff_objects(
    a: &BTreeMap<anvil_objects::ObjectRef, DynamicObject>,
    b: &BTreeMap<anvil_objects::ObjectRef, DynamicObject>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, o) in b {
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
    for (k, o) in a {
        if !b.contains_key(k) {
            out.push(format!("- {} deleted", obj_short(o)));
        }
    }
    out
}

fn render_step<R, X>(
    m: &ClusterMachine<R, X>,
    index: usize,
    prev: Option<&StateOf<R, X>>,
    step: &Step<ClusterMachine<R, X>>,
) -> TraceStep
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let next = &step.state;
    let cr_exists = m.live_cr(next).is_some();
    let (Some(prev), Some(a)) = (prev, &step.action) else {
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
        };
    };
    let mut request = None;
    let mut response = None;
    let sent_by = |k: &anvil_objects::ObjectRef| {
        next.network
            .iter()
            .find(|msg| !msg.stale && &msg.from == k && !prev.network.contains(msg))
            .map(|msg| describe_request(&msg.req))
    };
    let (actor, action) = match a {
        Action::Handle(i) => {
            let msg = &prev.network[*i];
            let mut tmp = prev.clone();
            tmp.network.remove(*i);
            let resp = m.handle(&mut tmp, msg);
            request = Some(describe_request(&msg.req));
            response = Some(describe_response(&resp));
            let actor = match msg.req {
                Request::Kube(_) => "api-server",
                Request::External(_) => "external-system",
            };
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
            (
                "fault",
                format!("the request fails without being executed: the sender gets {reason:?}"),
            )
        }
        Action::LoseResponse(i, reason) => {
            let msg = &prev.network[*i];
            request = Some(describe_request(&msg.req));
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
            request = sent_by(k);
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
                    prev.etcd.objects.get(k).cloned().expect("the CR exists"),
                    R::reconcile_init_state(),
                    None,
                ),
            };
            let ending = typed::<R::R>(&cr).map(|c| {
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
            });
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
        Action::Crash => (
            "fault",
            format!(
                "the controller crashes and restarts; {} request(s) in flight become stale",
                prev.network.iter().filter(|m| !m.stale).count()
            ),
        ),
        Action::Disable(f) => ("fault", format!("{f:?} faults are switched off for good")),
        Action::Gc(k) => (
            "garbage-collector",
            format!(
                "judges {k} garbage (none of its owners exists) and sends a delete with its uid as precondition"
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
        Action::UserCreate => ("user", "creates the custom resource".into()),
        Action::UserEdit(i) => ("user", format!("sets the spec to {}", m.scope.specs[*i])),
        Action::UserDelete => ("user", "deletes the custom resource".into()),
        Action::OtherDelete(k) => ("other-writer", format!("deletes {k}")),
        Action::OtherUpdate(k) => (
            "other-writer",
            format!("updates {k} (scales it by hand, edits its data or annotates it)"),
        ),
        Action::PodLoss(k) => ("fault", format!("a pod of {k} is lost")),
    };
    TraceStep {
        step: index,
        actor: actor.into(),
        action,
        request,
        response,
        changes: diff_objects(&prev.etcd.objects, &next.etcd.objects),
        cr_exists,
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
    let render =
        |steps: &[Step<ClusterMachine<R, X>>], start: usize, first_prev: Option<&StateOf<R, X>>| {
            let mut out = Vec::new();
            let mut prev = first_prev;
            for (i, s) in steps.iter().enumerate() {
                out.push(render_step(m, start + i, prev, s));
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
fn concretize<R, X>(
    m: &ClusterMachine<R, X>,
    steps: &[Step<ClusterMachine<R, X>>],
    start: Option<StateOf<R, X>>,
) -> Vec<Step<ClusterMachine<R, X>>>
where
    R: ModelReconciler,
    X: ExternalModel<Request = R::ExternalRequest, Response = R::ExternalResponse>,
{
    let mut out: Vec<Step<ClusterMachine<R, X>>> = Vec::new();
    let mut cur = start;
    let mut acts = Vec::new();
    for st in steps {
        let next: Step<ClusterMachine<R, X>> = match (&st.action, &cur) {
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
            "  ---- the cycle starts at step {} and repeats forever (every fairness obligation is met) ----",
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
