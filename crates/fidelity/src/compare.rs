//! Comparing what the model answers with what the real API server answers.
//!
//! Three steps, each explicit:
//!
//! 1. **Consistent renaming** ([`Pairing`]): every resourceVersion, uid and generated name seen
//!    on the real side is paired with the one seen at the same place on the model side. The
//!    pairing must stay a bijection (equal values on one side iff equal on the other), and for
//!    resourceVersions it must preserve order. Real values are then replaced by their model
//!    partners, so objects can be compared as JSON.
//! 2. **Normalisation** ([`normalise_real`], [`server_defaults`]): fields only the real server
//!    populates (timestamps, managedFields, allocated cluster IPs) are removed from the real
//!    object; the real server's *defaults* for the fields our requests leave out are applied to
//!    the model's object (they would be filled in the same way for any object the model
//!    stores). Both are listed in FIDELITY.md.
//! 3. **Known differences** ([`known_differences`]): the one place where reported model
//!    differences are accepted, each with its FIDELITY.md entry. Everything else must be equal.

use crate::kinds::TestKind;
use anvil_cluster_model::api::DELETION_TIME;
use anvil_cluster_model::tokens::{Space, parse, token};
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::{ErrorReason, KubeRequest, KubeResponse};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The bijections between real and model resourceVersions, uids and generated names.
#[derive(Debug, Default)]
pub struct Pairing {
    rv: BTreeMap<u64, u64>,
    rv_back: BTreeMap<u64, u64>,
    uid: BTreeMap<String, String>,
    uid_back: BTreeMap<String, String>,
    name: BTreeMap<String, String>,
    name_back: BTreeMap<String, String>,
}

/// Generated names are paired per kind: `"<kind> <name>"`.
fn name_key(kind: &Kind, name: &str) -> String {
    format!("{kind:?} {name}")
}

fn model_rv_number(m: &str) -> Result<u64, String> {
    match parse(m) {
        Some((Space::Rv, n)) => Ok(n),
        _ => Err(format!(
            "model resourceVersion {m:?} is not a resourceVersion token"
        )),
    }
}

/// The model's resourceVersion token number `n`, as the model writes it.
fn rv(n: u64) -> String {
    token(Space::Rv, n)
}

fn pair_eq(
    fwd: &mut BTreeMap<String, String>,
    back: &mut BTreeMap<String, String>,
    what: &str,
    real: &str,
    model: &str,
) -> Result<(), String> {
    match (fwd.get(real), back.get(model)) {
        (Some(m), _) if m != model => Err(format!(
            "{what}: real {real:?} was paired with model {m:?}, now with {model:?}"
        )),
        (_, Some(r)) if r != real => Err(format!(
            "{what}: model {model:?} was paired with real {r:?}, now with {real:?}"
        )),
        _ => {
            fwd.insert(real.to_string(), model.to_string());
            back.insert(model.to_string(), real.to_string());
            Ok(())
        }
    }
}

impl Pairing {
    /// Pairs two resourceVersions: a bijection that preserves order.
    pub fn pair_rv(&mut self, real: &str, model: &str) -> Result<(), String> {
        let r: u64 = real
            .parse()
            .map_err(|_| format!("real resourceVersion {real:?} is not a number"))?;
        let m = model_rv_number(model)?;
        match (self.rv.get(&r), self.rv_back.get(&m)) {
            (Some(&pm), _) if pm != m => {
                return Err(format!(
                    "resourceVersion: real {r} was paired with model {}, now with {} \
                     (equality differs)",
                    rv(pm),
                    rv(m)
                ));
            }
            (_, Some(&pr)) if pr != r => {
                return Err(format!(
                    "resourceVersion: model {} was paired with real {pr}, now with {r} \
                     (equality differs)",
                    rv(m)
                ));
            }
            (Some(_), _) => return Ok(()),
            _ => {}
        }
        if let Some((&lr, &lm)) = self.rv.range(..r).next_back()
            && lm >= m
        {
            return Err(format!(
                "resourceVersion order differs: real {lr} < {r} but model {} >= {}",
                rv(lm),
                rv(m)
            ));
        }
        if let Some((&hr, &hm)) = self.rv.range(r + 1..).next()
            && hm <= m
        {
            return Err(format!(
                "resourceVersion order differs: real {hr} > {r} but model {} <= {}",
                rv(hm),
                rv(m)
            ));
        }
        self.rv.insert(r, m);
        self.rv_back.insert(m, r);
        Ok(())
    }

    /// Pairs two uids (equality only).
    pub fn pair_uid(&mut self, real: &str, model: &str) -> Result<(), String> {
        pair_eq(&mut self.uid, &mut self.uid_back, "uid", real, model)
    }

    /// Pairs two generated names of objects of `kind` (equality only; names are per kind).
    pub fn pair_name(&mut self, kind: &Kind, real: &str, model: &str) -> Result<(), String> {
        pair_eq(
            &mut self.name,
            &mut self.name_back,
            "generated name",
            &name_key(kind, real),
            &name_key(kind, model),
        )
    }

    /// The model partner of a real generated name of an object of `kind` (the name itself
    /// when unpaired).
    pub fn model_name(&self, kind: &Kind, real: &str) -> String {
        self.name
            .get(&name_key(kind, real))
            .and_then(|m| m.split_once(' '))
            .map_or_else(|| real.to_string(), |(_, n)| n.to_string())
    }

    /// Number of distinct resourceVersions paired so far.
    pub fn rvs(&self) -> usize {
        self.rv.len()
    }

    /// Pairs the tokens of a real and a model object (resourceVersion, uid, and the name when
    /// it was generated).
    pub fn pair_objects(
        &mut self,
        real: &DynamicObject,
        model: &DynamicObject,
    ) -> Result<(), String> {
        match (real.resource_version(), model.resource_version()) {
            (Some(r), Some(m)) => self.pair_rv(r, m)?,
            (None, None) => {}
            (r, m) => return Err(format!("resourceVersion: real {r:?}, model {m:?}")),
        }
        let new_object = real.uid().is_some_and(|u| !self.uid.contains_key(u));
        if new_object && real.metadata().generate_name.is_some() {
            // The model reuses the smallest free generated name: a new object may take the
            // name of a deleted one (FIDELITY.md, "Generated names").
            if let Some(old) = self.name_back.remove(&name_key(model.kind(), model.name())) {
                self.name.remove(&old);
            }
        }
        match (real.uid(), model.uid()) {
            (Some(r), Some(m)) => self.pair_uid(r, m)?,
            (None, None) => {}
            (r, m) => return Err(format!("uid: real {r:?}, model {m:?}")),
        }
        if real.metadata().generate_name.is_some() && model.metadata().generate_name.is_some() {
            self.pair_name(real.kind(), real.name(), model.name())?;
        }
        Ok(())
    }

    /// The real object in the model's vocabulary: paired tokens and names replaced.
    pub fn translate(&self, real: &DynamicObject) -> Value {
        let mut j = real.to_json();
        let meta = j["metadata"].as_object_mut().expect("metadata");
        if let Some(Value::String(rv)) = meta.get_mut("resourceVersion")
            && let Some(m) = rv.parse().ok().and_then(|r: u64| self.rv.get(&r))
        {
            *rv = token(Space::Rv, *m);
        }
        if let Some(Value::String(uid)) = meta.get_mut("uid")
            && let Some(m) = self.uid.get(uid.as_str())
        {
            *uid = m.clone();
        }
        if let Some(Value::String(name)) = meta.get_mut("name") {
            *name = self.model_name(real.kind(), name);
        }
        if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
            for r in refs {
                if let Some(Value::String(uid)) = r.get_mut("uid")
                    && let Some(m) = self.uid.get(uid.as_str())
                {
                    *uid = m.clone();
                }
            }
        }
        j
    }
}

/// Removes what only the real server populates: creationTimestamp, managedFields, the
/// deletionTimestamp's value (its presence is kept, as the model's fixed time), the
/// deletionGracePeriodSeconds that accompanies it, and a Service's allocated cluster IPs.
pub fn normalise_real(kind: TestKind, j: &mut Value) {
    let meta = j["metadata"].as_object_mut().expect("metadata");
    meta.remove("creationTimestamp");
    meta.remove("managedFields");
    if meta.contains_key("deletionTimestamp") {
        meta.insert("deletionTimestamp".into(), DELETION_TIME.into());
        if meta.get("deletionGracePeriodSeconds") == Some(&json!(0)) {
            meta.remove("deletionGracePeriodSeconds");
        }
    }
    if kind == TestKind::Service
        && let Some(spec) = j.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
}

fn default(m: &mut Map<String, Value>, k: &str, v: Value) {
    m.entry(k.to_string()).or_insert(v);
}

/// The real server's defaults for the fields our requests leave unset, applied to the model's
/// object (see FIDELITY.md, "Server defaults").
pub fn server_defaults(kind: TestKind, j: &mut Value) {
    let o = j.as_object_mut().expect("object");
    match kind {
        TestKind::ConfigMap | TestKind::Widget => {}
        TestKind::Secret => default(o, "type", json!("Opaque")),
        TestKind::Service => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                default(spec, "type", json!("ClusterIP"));
                default(spec, "sessionAffinity", json!("None"));
                default(spec, "ipFamilies", json!(["IPv4"]));
                default(spec, "ipFamilyPolicy", json!("SingleStack"));
                default(spec, "internalTrafficPolicy", json!("Cluster"));
                if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            default(p, "targetPort", port);
                        }
                    }
                }
            }
            if let Some(st) = o.get_mut("status").and_then(Value::as_object_mut) {
                default(st, "loadBalancer", json!({}));
            }
        }
        TestKind::StatefulSet => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                default(spec, "replicas", json!(1));
                default(spec, "podManagementPolicy", json!("OrderedReady"));
                default(spec, "revisionHistoryLimit", json!(10));
                default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                if let Some(ps) = spec
                    .get_mut("template")
                    .and_then(|t| t.get_mut("spec"))
                    .and_then(Value::as_object_mut)
                {
                    default(ps, "dnsPolicy", json!("ClusterFirst"));
                    default(ps, "restartPolicy", json!("Always"));
                    default(ps, "schedulerName", json!("default-scheduler"));
                    default(ps, "securityContext", json!({}));
                    default(ps, "terminationGracePeriodSeconds", json!(30));
                    if let Some(Value::Array(cs)) = ps.get_mut("containers") {
                        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                            default(c, "imagePullPolicy", json!("IfNotPresent"));
                            default(c, "resources", json!({}));
                            default(c, "terminationMessagePath", json!("/dev/termination-log"));
                            default(c, "terminationMessagePolicy", json!("File"));
                        }
                    }
                }
            }
        }
    }
}

/// Known, reported differences between the model and the real API server in *objects*,
/// accepted here and only here. Each rule names its entry in FIDELITY.md. Returns the rules
/// that applied. (None are open at the moment: every object difference found so far has been
/// fixed in the model; see FIDELITY.md, "Fixed".)
pub fn known_differences(
    _kind: TestKind,
    _real: &mut Value,
    _model: &mut Value,
) -> Vec<&'static str> {
    Vec::new()
}

/// Compares a real and a model object: pairs their tokens, normalises, applies the known
/// differences. `Err` describes the difference.
pub fn compare_objects(
    pairing: &mut Pairing,
    kind: TestKind,
    real: &DynamicObject,
    model: &DynamicObject,
    applied: &mut Vec<&'static str>,
) -> Result<(), String> {
    pairing.pair_objects(real, model).map_err(|e| {
        format!(
            "{e}\n    real:  {}\n    model: {}",
            real.to_json(),
            model.to_json()
        )
    })?;
    let mut r = pairing.translate(real);
    normalise_real(kind, &mut r);
    let mut m = model.to_json();
    server_defaults(kind, &mut m);
    applied.extend(known_differences(kind, &mut r, &mut m));
    if r == m {
        Ok(())
    } else {
        let mut diffs = Vec::new();
        diff("", &r, &m, &mut diffs);
        Err(format!(
            "objects differ at {}\n    real (normalised):  {r}\n    model (defaulted): {m}",
            diffs.join(", ")
        ))
    }
}

fn diff(path: &str, r: &Value, m: &Value, out: &mut Vec<String>) {
    match (r, m) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(&p, x, y, out),
                    (x, y) => out.push(format!("{p} (real {x:?}, model {y:?})")),
                }
            }
        }
        _ if r != m => out.push(format!("{path} (real {r}, model {m})")),
        _ => {}
    }
}

/// How a known difference in an *answer* (rather than in an object) is accepted.
#[derive(Clone, Debug)]
pub enum Exception {
    /// The real server created this object where the model answered NotFound: it is deleted
    /// on the real side and the model's answer (and store) kept.
    UndoRealCreate(anvil_objects::ObjectRef),
    /// The real server rejected a request for a reason the model does not reach (it stops
    /// earlier with another error); neither side changed, the model's answer is kept.
    OtherError,
}

/// Known, deliberate differences in answers (FIDELITY.md, "Known differences"): when the
/// model's answer `m` to `req` differs from the real answer `r` in one of these exact ways,
/// returns the entry's id and how the two sides are realigned. Anything else is an
/// unexplained difference.
pub fn known_exception(
    kind: TestKind,
    req: &KubeRequest,
    m: &KubeResponse,
    r: &KubeResponse,
) -> Option<(&'static str, Exception)> {
    let m_err = m.error().map(|e| e.reason);
    let r_ok = r.error().is_none();
    match (req, m_err) {
        // FIDELITY.md K1 (deliberate): an UpdateStatus of a missing Service is a
        // create-on-update on the real server (through the status subresource, without the
        // cluster IP allocation; with its uid precondition and status validation); the model
        // answers NotFound. A real object so created is deleted again; the model's NotFound
        // is kept.
        (KubeRequest::UpdateStatus(obj), Some(ErrorReason::NotFound))
            if kind == TestKind::Service =>
        {
            let id = "K1 UpdateStatus of a missing Service";
            if r_ok {
                Some((id, Exception::UndoRealCreate(obj.object_ref())))
            } else {
                Some((id, Exception::OtherError))
            }
        }
        _ => None,
    }
}
