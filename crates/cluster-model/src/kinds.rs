//! Per-kind API server behaviour: scope, status subresource, generation, validation.

use crate::crd::{CrdError, CrdValidator};
use anvil_objects::{DynamicObject, Kind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Validation of one object (a built-in kind's own rules, written in Rust).
pub type ValidateFn = fn(&DynamicObject) -> Result<(), String>;
/// Transition validation `(old, new)` of a built-in kind (immutable fields).
pub type TransitionFn = fn(&DynamicObject, &DynamicObject) -> Result<(), String>;

/// How the API server treats one kind.
#[derive(Clone)]
pub struct KindInfo {
    /// The kind.
    pub kind: Kind,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Has a `status` subresource: Update ignores `status`, UpdateStatus only writes it,
    /// creation sets it to [`KindInfo::default_status`].
    pub status_subresource: bool,
    /// Status set on creation when the kind has a status subresource (`None`: no status).
    pub default_status: Option<Value>,
    /// Whether an Update without `metadata.resourceVersion` is accepted (built-in kinds: yes;
    /// custom resources: no, the API server answers `Invalid`).
    pub unconditional_update: bool,
    /// Whether `metadata.generation` is maintained (set to 1, bumped on spec changes).
    pub tracks_generation: bool,
    /// True for custom resources.
    pub custom: bool,
    /// UpdateStatus takes the object's metadata (labels, annotations, owner references,
    /// finalizers) from the request body and only keeps the old spec, as the StatefulSet
    /// status strategy does; otherwise (custom resources, most kinds) UpdateStatus changes only
    /// `status`.
    pub status_update_takes_metadata: bool,
    /// An Update of a missing object creates it (Services allow create-on-update).
    pub create_on_update: bool,
    /// Validation rules.
    pub validate: Option<ValidateFn>,
    /// Transition rules.
    pub validate_transition: Option<TransitionFn>,
    /// A custom resource's schema and CEL rules, from its CRD.
    pub crd: Option<Arc<CrdValidator>>,
}

impl std::fmt::Debug for KindInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KindInfo({:?})", self.kind)
    }
}

impl KindInfo {
    /// A permissive built-in kind: namespaced, no status subresource, unconditional updates.
    pub fn builtin(kind: Kind) -> Self {
        KindInfo {
            kind,
            namespaced: true,
            status_subresource: false,
            default_status: None,
            unconditional_update: true,
            tracks_generation: false,
            custom: false,
            status_update_takes_metadata: false,
            create_on_update: false,
            validate: None,
            validate_transition: None,
            crd: None,
        }
    }

    /// A namespaced custom resource kind with a status subresource (creation drops any
    /// status, as the API server does for custom resources), generation tracking, and no
    /// unconditional updates.
    pub fn custom_resource(kind: Kind) -> Self {
        KindInfo {
            kind,
            namespaced: true,
            status_subresource: true,
            default_status: None,
            unconditional_update: false,
            tracks_generation: true,
            custom: true,
            status_update_takes_metadata: false,
            create_on_update: false,
            validate: None,
            validate_transition: None,
            crd: None,
        }
    }

    /// The custom resource kind of `crd` (the JSON of an `apiextensions.k8s.io/v1`
    /// `CustomResourceDefinition`, e.g. `serde_json::to_value(K::crd())` for a kube
    /// `CustomResourceExt` type), validated by the CRD's own schema and CEL rules (see
    /// [`crate::crd`]). Its storage version, scope and status subresource come from the CRD.
    /// `Err` if the CRD is malformed or one of its rules does not compile.
    pub fn custom_resource_from_crd(crd: &Value) -> Result<Self, CrdError> {
        let v = CrdValidator::from_crd(crd)?;
        let mut info = KindInfo::custom_resource(v.kind().clone());
        info.namespaced = v.namespaced();
        info.status_subresource = v.status_subresource();
        info.crd = Some(Arc::new(v));
        Ok(info)
    }

    /// Checks a write: `new` alone on a create (`old` is `None`), `new` over the stored `old`
    /// on an update: the kind's rules, its transition rules, and its CRD's rules.
    pub fn validate_write(
        &self,
        old: Option<&DynamicObject>,
        new: &DynamicObject,
    ) -> Result<(), String> {
        if let Some(v) = self.validate {
            v(new)?;
        }
        if let (Some(t), Some(old)) = (self.validate_transition, old) {
            t(old, new)?;
        }
        if let Some(c) = &self.crd {
            c.validate(new, old)?;
        }
        Ok(())
    }

    /// With validation rules.
    pub fn with_validation(mut self, f: ValidateFn) -> Self {
        self.validate = Some(f);
        self
    }

    /// With transition rules.
    pub fn with_transition_validation(mut self, f: TransitionFn) -> Self {
        self.validate_transition = Some(f);
        self
    }

    /// With this default status.
    pub fn with_default_status(mut self, status: Option<Value>) -> Self {
        self.default_status = status;
        self
    }
}

/// The kinds the API server knows. Unknown kinds get [`KindInfo::builtin`] behaviour.
#[derive(Clone, Debug)]
pub struct KindRegistry {
    kinds: Arc<BTreeMap<Kind, KindInfo>>,
    fallback: KindInfo,
    id: u64,
}

impl Default for KindRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

fn spec_field<'a>(o: &'a DynamicObject, f: &str) -> Option<&'a Value> {
    o.spec().and_then(|s| s.get(f))
}

fn sts_validate(o: &DynamicObject) -> Result<(), String> {
    if let Some(r) = spec_field(o, "replicas").and_then(Value::as_i64)
        && r < 0
    {
        return Err("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    Ok(())
}

fn svc_validate(o: &DynamicObject) -> Result<(), String> {
    // ValidateLoadBalancerStatus: ingress points only for Services of type LoadBalancer
    let ingress = o
        .status()
        .and_then(|s| s.get("loadBalancer"))
        .and_then(|l| l.get("ingress"))
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty());
    let lb = spec_field(o, "type").and_then(Value::as_str) == Some("LoadBalancer");
    if ingress && !lb {
        return Err(
            "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` \
                    is 'LoadBalancer'"
                .into(),
        );
    }
    Ok(())
}

fn sts_transition(old: &DynamicObject, new: &DynamicObject) -> Result<(), String> {
    // ValidateStatefulSetStatusUpdate: status.collisionCount cannot be decremented (nor
    // dropped once set)
    let collisions = |o: &DynamicObject| {
        o.status()
            .and_then(|s| s.get("collisionCount"))
            .and_then(Value::as_i64)
    };
    if let Some(was) = collisions(old)
        && collisions(new).is_none_or(|now| now < was)
    {
        return Err(format!(
            "status.collisionCount: Invalid value: {}: cannot be decremented",
            collisions(new).unwrap_or(0)
        ));
    }
    for f in [
        "selector",
        "serviceName",
        "volumeClaimTemplates",
        "podManagementPolicy",
    ] {
        if spec_field(old, f) != spec_field(new, f) {
            return Err(format!(
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', \
                 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', \
                 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden ({f})"
            ));
        }
    }
    Ok(())
}

fn selector_immutable(old: &DynamicObject, new: &DynamicObject) -> Result<(), String> {
    if spec_field(old, "selector") != spec_field(new, "selector") {
        return Err("spec.selector: Invalid value: field is immutable".into());
    }
    Ok(())
}

impl KindRegistry {
    /// The built-in kinds the examples use: ConfigMap, Secret, Service, Pod,
    /// PersistentVolumeClaim, ServiceAccount, StatefulSet, DaemonSet, Deployment, Role,
    /// RoleBinding, PodDisruptionBudget.
    pub fn builtin() -> Self {
        let mut m = BTreeMap::new();
        for (av, k) in [
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "ServiceAccount"),
            ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ] {
            let kind = Kind::new(av, k);
            m.insert(kind.clone(), KindInfo::builtin(kind));
        }
        let svc = Kind::new("v1", "Service");
        let mut i = KindInfo::builtin(svc.clone());
        i.status_subresource = true;
        i.default_status = Some(json!({}));
        i.create_on_update = true;
        i.validate = Some(svc_validate);
        // the Service status strategy only keeps the old spec
        i.status_update_takes_metadata = true;
        m.insert(svc, i);
        for (av, k) in [
            ("v1", "Pod"),
            ("v1", "PersistentVolumeClaim"),
            ("policy/v1", "PodDisruptionBudget"),
            ("apps/v1", "Deployment"),
        ] {
            let kind = Kind::new(av, k);
            let mut i = KindInfo::builtin(kind.clone());
            i.status_subresource = true;
            i.default_status = Some(json!({}));
            i.tracks_generation = true;
            m.insert(kind, i);
        }
        let sts = Kind::new("apps/v1", "StatefulSet");
        let mut i = KindInfo::builtin(sts.clone());
        i.status_subresource = true;
        i.default_status = Some(json!({"replicas": 0, "availableReplicas": 0}));
        i.tracks_generation = true;
        i.validate = Some(sts_validate);
        i.validate_transition = Some(sts_transition);
        i.status_update_takes_metadata = true;
        m.insert(sts, i);
        let ds = Kind::new("apps/v1", "DaemonSet");
        let mut i = KindInfo::builtin(ds.clone());
        i.status_subresource = true;
        i.default_status = Some(json!({
            "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
            "numberMisscheduled": 0, "numberReady": 0
        }));
        i.tracks_generation = true;
        i.validate_transition = Some(selector_immutable);
        m.insert(ds, i);
        let mut r = KindRegistry {
            kinds: Arc::new(m),
            fallback: KindInfo::builtin(Kind::new("v1", "Unknown")),
            id: 0,
        };
        r.id = r.compute_id();
        r
    }

    fn compute_id(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = anvil_objects::StableHasher::new();
        for i in self.kinds.values() {
            i.kind.hash(&mut h);
            (i.namespaced, i.status_subresource, i.unconditional_update).hash(&mut h);
            (
                i.tracks_generation,
                i.custom,
                i.status_update_takes_metadata,
                i.create_on_update,
            )
                .hash(&mut h);
            i.default_status
                .as_ref()
                .map(|v| v.to_string())
                .hash(&mut h);
            i.validate.map(|f| f as usize).hash(&mut h);
            i.validate_transition.map(|f| f as usize).hash(&mut h);
            i.crd.as_ref().map(|c| c.id()).hash(&mut h);
        }
        h.finish()
    }

    /// A fingerprint of the registered behaviour (memoisation key).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Adds (or replaces) a kind.
    pub fn register(&mut self, info: KindInfo) -> &mut Self {
        Arc::make_mut(&mut self.kinds).insert(info.kind.clone(), info);
        self.id = self.compute_id();
        self
    }

    /// With this kind registered.
    pub fn with(mut self, info: KindInfo) -> Self {
        self.register(info);
        self
    }

    /// How the API server treats `kind`.
    pub fn info(&self, kind: &Kind) -> &KindInfo {
        self.kinds.get(kind).unwrap_or(&self.fallback)
    }

    /// All registered kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &KindInfo> {
        self.kinds.values()
    }
}
