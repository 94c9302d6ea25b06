//! The Get -> Create-or-Update chain most controllers are made of.
//!
//! A controller lists its [`Step`]s: managed objects (each kept in its desired form: Get it,
//! Create it when missing, Update it when it differs), external requests, and a final status
//! write. [`run_step`] is a complete `reconcile_core` for such a list, with [`ChainState`] as
//! the local state; implementing [`ChainReconciler`] (the steps, and optionally a validation)
//! makes a type a [`Reconciler`] that runs them. Every managed object gets the custom resource
//! as its controller owner, and an existing object controlled by anyone else is never adopted:
//! the reconcile fails instead.
//!
//! ```
//! use anvil_objects::{DynamicObject, Kind};
//! use anvil_reconciler::chain::{self, ChainReconciler, Facts, ManagedObject, Step};
//! use anvil_reconciler::{NoExternal, Reconciler, Request};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
//! #[kube(group = "example.anvil.dev", version = "v1", kind = "Greeting", namespaced)]
//! pub struct GreetingSpec { pub text: String }
//!
//! fn config_map(cr: &Greeting, _: &Facts) -> Result<DynamicObject, String> {
//!     let cm = ConfigMap {
//!         data: Some([("text".to_string(), cr.spec.text.clone())].into()),
//!         ..Default::default()
//!     };
//!     DynamicObject::from_typed(&cm).map_err(|e| e.to_string())
//! }
//!
//! const STEPS: &[Step<Greeting, NoExternal, NoExternal>] = &[Step::Object(ManagedObject {
//!     label: "config map",
//!     kind: || Kind::of::<ConfigMap>(),
//!     name: |cr| format!("{}-text", cr.metadata.name.as_deref().unwrap_or_default()),
//!     desired: config_map,
//!     merge: chain::merge_desired,
//!     record: chain::record_nothing,
//!     adopt: chain::Adopt::Never,
//! })];
//!
//! pub struct GreetingController;
//! impl ChainReconciler for GreetingController {
//!     type R = Greeting;
//!     type ExternalRequest = NoExternal;
//!     type ExternalResponse = NoExternal;
//!     fn steps() -> &'static [Step<Greeting, NoExternal, NoExternal>] { STEPS }
//! }
//!
//! let mut cr = Greeting::new("hello", GreetingSpec { text: "hi".into() });
//! cr.metadata.namespace = Some("default".into());
//! cr.metadata.uid = Some("u-1".into());
//! let (s, req) = GreetingController::reconcile_core(&cr, None, GreetingController::reconcile_init_state());
//! assert!(matches!(req, Some(Request::Kube(anvil_reconciler::KubeRequest::Get(_)))));
//! assert!(!s.is_done());
//! ```

use crate::{
    ApiError, CustomResource, ExternalType, KubeRequest, KubeResponse, Reconciler, Request,
    Response, Tokens,
};
use anvil_objects::{DynamicObject, Kind, ObjectMeta, ObjectRef, Owner, is_controlled_by};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Values recorded by earlier steps for later ones (e.g. a ConfigMap's resourceVersion that a
/// StatefulSet's pod template carries, or a ready count for the status).
pub type Facts = BTreeMap<&'static str, String>;

/// Whether an existing object that this custom resource does not control may be taken over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adopt {
    /// Never: the reconcile fails when the object is controlled by someone else or by no one.
    Never,
    /// Update whatever is there, whoever owns it. Unsafe; exists to model broken controllers.
    Always,
}

/// An object kept in its desired form.
pub struct ManagedObject<R> {
    /// Short name for logs and counterexamples.
    pub label: &'static str,
    /// Its kind.
    pub kind: fn() -> Kind,
    /// Its name, derived from the custom resource.
    pub name: fn(&R) -> String,
    /// Its desired content (kind, spec/data, labels...). The chain sets name, namespace and the
    /// controller owner reference.
    pub desired: fn(&R, &Facts) -> Result<DynamicObject, String>,
    /// Given the existing object and the desired one, the object to write; the chain skips the
    /// write when the result equals the existing object. See [`replace_body`].
    pub merge: fn(&R, &DynamicObject, &DynamicObject) -> DynamicObject,
    /// Records facts from the object as stored (after Get, Create or Update).
    pub record: fn(&DynamicObject, &mut Facts),
    /// Adoption policy for objects not controlled by this custom resource.
    pub adopt: Adopt,
}

/// A request to the external system.
pub struct ExternalStep<R, Q, P> {
    /// Short name for logs and counterexamples.
    pub label: &'static str,
    /// The request to send.
    pub request: fn(&R, &Facts) -> Q,
    /// Checks the response (an `Err` ends the reconcile with an error) and records facts.
    pub response: fn(&R, &P, &mut Facts) -> Result<(), String>,
}

/// A write of the custom resource's status: Get the custom resource, then UpdateStatus when
/// the status differs.
pub struct StatusStep<R> {
    /// The desired status.
    pub status: fn(&R, &Facts) -> Value,
}

/// One step of a chain.
pub enum Step<R, Q, P> {
    /// Keep an object in its desired form.
    Object(ManagedObject<R>),
    /// Call the external system.
    External(ExternalStep<R, Q, P>),
    /// Write the status.
    Status(StatusStep<R>),
}

/// Where a chain is waiting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub enum Phase {
    /// About to start the current step.
    #[default]
    Start,
    /// Waiting for the Get of a managed object.
    AwaitGet,
    /// Waiting for its Create.
    AwaitCreate,
    /// Waiting for its Update.
    AwaitUpdate,
    /// Waiting for the external system.
    AwaitExternal,
    /// Waiting for the Get of the custom resource before a status write.
    AwaitStatusGet,
    /// Waiting for the UpdateStatus.
    AwaitStatusUpdate,
    /// All steps succeeded.
    Done,
    /// A step failed; the message says which and why.
    Error(String),
}

/// The local state of a chain reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Tokens)]
pub struct ChainState {
    /// Index of the current step.
    pub step: usize,
    /// What the current step waits for.
    pub phase: Phase,
    /// Facts recorded so far.
    pub facts: Facts,
}

impl ChainState {
    /// All steps succeeded.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// A step failed.
    pub fn is_error(&self) -> bool {
        matches!(self.phase, Phase::Error(_))
    }
}

/// A controller that is a chain of [`Step`]s. Every implementor is a [`Reconciler`] with
/// [`ChainState`] as its local state: each reconcile starts from the default state, runs
/// [`ChainReconciler::reconcile_step`] (by default [`run_step`] over
/// [`ChainReconciler::steps`]), and is done or failed as the [`ChainState`] says.
pub trait ChainReconciler: 'static {
    /// The custom resource type.
    type R: CustomResource;
    /// Requests to the external system ([`crate::NoExternal`] when there is none).
    type ExternalRequest: ExternalType;
    /// Responses from the external system ([`crate::NoExternal`] when there is none).
    type ExternalResponse: ExternalType;

    /// The steps of a reconcile, in order.
    fn steps() -> &'static [Step<Self::R, Self::ExternalRequest, Self::ExternalResponse>];

    /// One `reconcile_core` step. The default runs [`ChainReconciler::steps`] with
    /// [`run_step`]; override it to wrap the chain.
    fn reconcile_step(
        cr: &Self::R,
        resp: Option<Response<Self::ExternalResponse>>,
        state: ChainState,
    ) -> (ChainState, Option<Request<Self::ExternalRequest>>) {
        run_step(Self::steps(), cr, resp, state)
    }

    /// As [`Reconciler::validate`]: the default accepts every object that deserialised.
    fn validate(cr: &Self::R) -> Result<(), String> {
        let _ = cr;
        Ok(())
    }
}

impl<C: ChainReconciler> Reconciler for C {
    type R = <C as ChainReconciler>::R;
    type T = ChainState;
    type ExternalRequest = <C as ChainReconciler>::ExternalRequest;
    type ExternalResponse = <C as ChainReconciler>::ExternalResponse;

    fn reconcile_init_state() -> ChainState {
        ChainState::default()
    }

    fn reconcile_core(
        cr: &Self::R,
        resp: Option<Response<Self::ExternalResponse>>,
        state: ChainState,
    ) -> (ChainState, Option<Request<Self::ExternalRequest>>) {
        C::reconcile_step(cr, resp, state)
    }

    fn reconcile_done(state: &ChainState) -> bool {
        state.is_done()
    }

    fn reconcile_error(state: &ChainState) -> bool {
        state.is_error()
    }

    fn validate(cr: &Self::R) -> Result<(), String> {
        <C as ChainReconciler>::validate(cr)
    }
}

/// Adds `want`'s labels and annotations to `meta`, and sets its owner references when it has
/// none (the metadata half of [`replace_body`] and [`merge_desired`]).
fn merge_metadata(meta: &mut ObjectMeta, want: &ObjectMeta) {
    if let Some(labels) = &want.labels {
        let l = meta.labels.get_or_insert_with(Default::default);
        l.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(annotations) = &want.annotations {
        let a = meta.annotations.get_or_insert_with(Default::default);
        a.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if meta
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        meta.owner_references = want.owner_references.clone();
    }
}

/// The default merge: the existing object (keeping its metadata: resourceVersion, uid,
/// finalizers...) with the desired object's labels, annotations and owner references added,
/// and every top-level body field of the desired object (spec, data...) replaced, except
/// `status`.
pub fn replace_body<R>(_: &R, existing: &DynamicObject, desired: &DynamicObject) -> DynamicObject {
    existing.modify(|p| {
        merge_metadata(&mut p.metadata, desired.metadata());
        for (k, v) in desired.body() {
            if k != "status" {
                p.body.insert(k.clone(), v.clone());
            }
        }
    })
}

/// The recommended merge: the existing object with the desired object laid over it. Labels
/// and annotations are added, owner references are set when there are none, and every
/// top-level body field but `status` is overlaid by [`overlay_json`], so fields the API server
/// defaulted (and the desired object does not mention) are kept, and an up-to-date object
/// merges to itself (no write).
pub fn merge_desired<R>(_: &R, existing: &DynamicObject, desired: &DynamicObject) -> DynamicObject {
    existing.modify(|p| {
        merge_metadata(&mut p.metadata, desired.metadata());
        for (k, v) in desired.body() {
            if k == "status" {
                continue;
            }
            match p.body.get_mut(k) {
                Some(existing) => overlay_json(existing, v),
                None => {
                    p.body.insert(k.clone(), v.clone());
                }
            }
        }
    })
}

/// Lays `desired` over `target`: objects are merged key by key (keys only in `target` stay),
/// lists of named objects (by `name`: containers, ports, volumes...; or by `metadata.name`:
/// volumeClaimTemplates) with the same names in the same order are merged element by element,
/// and everything else is replaced.
pub fn overlay_json(target: &mut Value, desired: &Value) {
    match (target, desired) {
        (Value::Object(t), Value::Object(d)) => {
            for (k, v) in d {
                match t.get_mut(k) {
                    Some(existing) => overlay_json(existing, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(d)) if same_names(t, d) => {
            for (existing, v) in t.iter_mut().zip(d) {
                overlay_json(existing, v);
            }
        }
        (t, d) => *t = d.clone(),
    }
}

fn same_names(a: &[Value], b: &[Value]) -> bool {
    // `name` (containers, ports, volumes...) or `metadata.name` (volumeClaimTemplates, whose
    // server-filled `spec.volumeMode` and `status` must survive the merge).
    let name = |v: &Value| {
        v.get("name")
            .or_else(|| v.get("metadata").and_then(|m| m.get("name")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    a.len() == b.len()
        && !a.is_empty()
        && a.iter()
            .zip(b)
            .all(|(x, y)| name(x).is_some() && name(x) == name(y))
}

/// A `record` that records nothing.
pub fn record_nothing(_: &DynamicObject, _: &mut Facts) {}

/// The owner identity of a custom resource as stored (it needs a name and a uid).
pub fn owner_of<R: CustomResource>(cr: &R) -> Option<Owner> {
    cr.controller_owner_ref(&())
        .map(|r| Owner::of_reference(&r))
}

fn key_of_cr<R: CustomResource>(cr: &R) -> ObjectRef {
    let meta = cr.meta();
    ObjectRef::new(
        Kind::of::<R>(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn fail<Q>(mut s: ChainState, why: String) -> (ChainState, Option<Request<Q>>) {
    s.phase = Phase::Error(why);
    (s, None)
}

fn desired_object<R: CustomResource>(
    m: &ManagedObject<R>,
    cr: &R,
    facts: &Facts,
) -> Result<DynamicObject, String> {
    let owner = owner_of(cr).ok_or("the custom resource has no name or uid")?;
    let obj = (m.desired)(cr, facts)?;
    let kind = (m.kind)();
    if obj.kind() != &kind {
        return Err(format!(
            "{}: desired object is a {:?}, not a {kind:?}",
            m.label,
            obj.kind()
        ));
    }
    let namespace = cr.meta().namespace.clone();
    let name = (m.name)(cr);
    Ok(obj.modify(|p| {
        p.metadata.name = Some(name);
        p.metadata.namespace = namespace;
        p.metadata.owner_references = Some(vec![owner.controller_reference()]);
    }))
}

/// One `reconcile_core` step of the chain `steps`.
pub fn run_step<R: CustomResource, Q, P>(
    steps: &[Step<R, Q, P>],
    cr: &R,
    resp: Option<Response<P>>,
    mut s: ChainState,
) -> (ChainState, Option<Request<Q>>) {
    let Some(step) = steps.get(s.step) else {
        s.phase = Phase::Done;
        return (s, None);
    };
    let phase = std::mem::take(&mut s.phase);
    match (phase, step, resp) {
        (Phase::Start, Step::Object(m), _) => {
            let key = ObjectRef::new(
                (m.kind)(),
                cr.meta().namespace.clone().unwrap_or_default(),
                (m.name)(cr),
            );
            s.phase = Phase::AwaitGet;
            (s, Some(Request::Kube(KubeRequest::Get(key))))
        }
        (Phase::Start, Step::External(x), _) => {
            let q = (x.request)(cr, &s.facts);
            s.phase = Phase::AwaitExternal;
            (s, Some(Request::External(q)))
        }
        (Phase::Start, Step::Status(_), _) => {
            s.phase = Phase::AwaitStatusGet;
            (s, Some(Request::Kube(KubeRequest::Get(key_of_cr(cr)))))
        }
        (Phase::AwaitGet, Step::Object(m), Some(Response::Kube(KubeResponse::Get(got)))) => {
            let desired = match desired_object(m, cr, &s.facts) {
                Ok(d) => d,
                Err(e) => return fail(s, format!("{}: {e}", m.label)),
            };
            match got {
                Ok(existing) => {
                    let owner = owner_of(cr).expect("desired_object checked the owner");
                    if m.adopt == Adopt::Never && !is_controlled_by(&existing, &owner) {
                        return fail(
                            s,
                            format!(
                                "{}: {} exists and is not controlled by this resource",
                                m.label,
                                existing.object_ref()
                            ),
                        );
                    }
                    let merged = (m.merge)(cr, &existing, &desired);
                    if merged == existing {
                        (m.record)(&existing, &mut s.facts);
                        advance(steps, cr, s)
                    } else {
                        s.phase = Phase::AwaitUpdate;
                        (s, Some(Request::Kube(KubeRequest::Update(merged))))
                    }
                }
                Err(e) if e.is_not_found() => {
                    s.phase = Phase::AwaitCreate;
                    (s, Some(Request::Kube(KubeRequest::Create(desired))))
                }
                Err(e) => fail(s, format!("{}: get failed: {e}", m.label)),
            }
        }
        (Phase::AwaitCreate, Step::Object(m), Some(Response::Kube(KubeResponse::Create(r))))
        | (Phase::AwaitUpdate, Step::Object(m), Some(Response::Kube(KubeResponse::Update(r)))) => {
            match r {
                Ok(stored) => {
                    (m.record)(&stored, &mut s.facts);
                    advance(steps, cr, s)
                }
                Err(e) => fail(s, format!("{}: write failed: {e}", m.label)),
            }
        }
        (Phase::AwaitExternal, Step::External(x), Some(Response::External(p))) => {
            match (x.response)(cr, &p, &mut s.facts) {
                Ok(()) => advance(steps, cr, s),
                Err(e) => fail(s, format!("{}: {e}", x.label)),
            }
        }
        (Phase::AwaitStatusGet, Step::Status(st), Some(Response::Kube(KubeResponse::Get(got)))) => {
            match got {
                Ok(current) => {
                    let status = (st.status)(cr, &s.facts);
                    if current.status() == Some(&status) {
                        advance(steps, cr, s)
                    } else {
                        let updated = current.modify(|p| {
                            p.body.insert("status".into(), status);
                        });
                        s.phase = Phase::AwaitStatusUpdate;
                        (s, Some(Request::Kube(KubeRequest::UpdateStatus(updated))))
                    }
                }
                Err(e) => fail(s, format!("status: get failed: {e}")),
            }
        }
        (
            Phase::AwaitStatusUpdate,
            Step::Status(_),
            Some(Response::Kube(KubeResponse::UpdateStatus(r))),
        ) => match r {
            Ok(_) => advance(steps, cr, s),
            Err(e) => fail(s, format!("status: write failed: {e}")),
        },
        (Phase::Done, _, _) => {
            s.phase = Phase::Done;
            (s, None)
        }
        (Phase::Error(e), _, _) => fail(s, e),
        (phase, _, resp) => {
            let got = match resp {
                None => "no response".to_string(),
                Some(Response::Kube(k)) => format!("a {:?}", k.error().map(ApiError::to_string)),
                Some(Response::External(_)) => "an external response".to_string(),
            };
            let why = format!("step {} in phase {phase:?} got {got}", s.step);
            fail(s, why)
        }
    }
}

fn advance<R: CustomResource, Q, P>(
    steps: &[Step<R, Q, P>],
    cr: &R,
    mut s: ChainState,
) -> (ChainState, Option<Request<Q>>) {
    s.step += 1;
    s.phase = Phase::Start;
    run_step(steps, cr, None, s)
}
