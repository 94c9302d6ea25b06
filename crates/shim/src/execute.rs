//! Executing one [`KubeRequest`] against a real API server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::{ApiError, ErrorReason, KubeRequest, KubeResponse, Preconditions};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject as KubeObject, GroupVersionKind, ListParams,
    PostParams,
};
use tracing::Instrument;

use crate::telemetry;

/// How many times a `GetThen*` request reads and writes before it gives up on repeated
/// `Conflict`s (the last `Conflict` is then returned).
pub const GET_THEN_ATTEMPTS: u32 = 5;

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static GET_THEN_RETRIES: AtomicU64 = AtomicU64::new(0);
static GET_THEN_EXHAUSTED: AtomicU64 = AtomicU64::new(0);
static GET_THEN_ABORTS: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters of [`execute`] (monotonic; read them before and after to measure).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Requests executed.
    pub requests: u64,
    /// Requests answered with an error.
    pub failed: u64,
    /// `GetThen*` writes retried after a `Conflict` (each retry re-reads the object).
    pub get_then_conflict_retries: u64,
    /// `GetThen*` requests that gave up after [`GET_THEN_ATTEMPTS`] conflicting attempts.
    pub get_then_exhausted: u64,
    /// `GetThen*` requests answered with `TransactionAbort` (object not controlled by the owner).
    pub get_then_aborts: u64,
}

/// A snapshot of the process-wide [`Metrics`].
pub fn metrics() -> Metrics {
    Metrics {
        requests: REQUESTS.load(Ordering::Relaxed),
        failed: FAILED.load(Ordering::Relaxed),
        get_then_conflict_retries: GET_THEN_RETRIES.load(Ordering::Relaxed),
        get_then_exhausted: GET_THEN_EXHAUSTED.load(Ordering::Relaxed),
        get_then_aborts: GET_THEN_ABORTS.load(Ordering::Relaxed),
    }
}

fn plurals() -> &'static RwLock<HashMap<Kind, String>> {
    static PLURALS: OnceLock<RwLock<HashMap<Kind, String>>> = OnceLock::new();
    PLURALS.get_or_init(Default::default)
}

/// Records the resource (plural) name of a kind, for kinds whose plural is not the lower-case
/// kind plus `s`/`es` that [`ApiResource::from_gvk`] guesses. [`crate::run`] registers the
/// custom resource type and every kind given with [`crate::ShimConfig::owns`].
pub fn register_plural(kind: &Kind, plural: &str) {
    plurals()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(kind.clone(), plural.to_string());
}

/// [`register_plural`] for a typed resource (any `k8s-openapi` type or kube `CustomResource`).
pub fn register_resource<K: kube::Resource<DynamicType = ()>>() {
    register_plural(&Kind::of::<K>(), &K::plural(&()));
}

/// The [`ApiResource`] of a kind: the registered plural if any, else kube's guess.
pub fn api_resource(kind: &Kind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(kind.group(), kind.version(), kind.kind());
    let registered = plurals()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(kind)
        .cloned();
    match registered {
        Some(plural) => ApiResource::from_gvk_with_plural(&gvk, &plural),
        None => ApiResource::from_gvk(&gvk),
    }
}

/// An `Api` for `kind` in `namespace` (empty namespace: cluster scoped, or all namespaces for
/// List).
pub fn dynamic_api(client: &Client, kind: &Kind, namespace: &str) -> Api<KubeObject> {
    let ar = api_resource(kind);
    if namespace.is_empty() {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), namespace, &ar)
    }
}

fn other(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorReason::Other, message)
}

/// Converts to kube's dynamic object.
pub(crate) fn to_kube(obj: &DynamicObject) -> Result<KubeObject, ApiError> {
    serde_json::from_value(obj.to_json())
        .map_err(|e| other(format!("cannot encode {}: {e}", obj.object_ref())))
}

/// Converts from kube's dynamic object: `managedFields` are dropped (the model has none), and
/// `apiVersion`/`kind` are filled in from `kind` when the server left them out (list items).
pub(crate) fn from_kube(kind: &Kind, obj: KubeObject) -> Result<DynamicObject, ApiError> {
    let mut json = serde_json::to_value(obj).map_err(|e| other(format!("cannot decode: {e}")))?;
    if let Some(map) = json.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| kind.api_version().into());
        map.entry("kind").or_insert_with(|| kind.kind().into());
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
    }
    DynamicObject::from_json(json).map_err(|e| other(format!("cannot decode a {kind:?}: {e}")))
}

fn name_of(obj: &DynamicObject) -> Result<&str, ApiError> {
    if obj.name().is_empty() {
        Err(ApiError::new(
            ErrorReason::BadRequest,
            format!("a {:?} to update needs metadata.name", obj.kind()),
        ))
    } else {
        Ok(obj.name())
    }
}

/// Every object of `kinds` in `namespace`, read with this shim's own List (what a reconcile
/// sees): a `ClusterView` for desired-state predicates in tests and tools. The first failed
/// List is returned as its error.
pub async fn list_view(
    client: &Client,
    namespace: &str,
    kinds: impl IntoIterator<Item = Kind>,
) -> Result<std::collections::BTreeMap<ObjectRef, DynamicObject>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for kind in kinds {
        let req = KubeRequest::List {
            kind,
            namespace: namespace.to_string(),
            label_selector: Default::default(),
        };
        match execute(client, &req).await {
            KubeResponse::List(Ok(items)) => {
                out.extend(items.into_iter().map(|o| (o.object_ref(), o)));
            }
            KubeResponse::List(Err(e)) => return Err(e),
            unexpected => return Err(other(format!("a List answered {unexpected:?}"))),
        }
    }
    Ok(out)
}

/// Executes one request and returns its response. Never panics on server or transport
/// failures: they come back as `Err(ApiError)` inside the response (transport failures as
/// `Other`), never as success. See the crate docs for the request -> kube call table.
pub async fn execute(client: &Client, req: &KubeRequest) -> KubeResponse {
    let key = req
        .key()
        .map(|k| k.to_string())
        .unwrap_or_else(|| match req {
            KubeRequest::List {
                kind, namespace, ..
            } => format!("{kind}/{namespace}"),
            _ => String::new(),
        });
    let span = tracing::debug_span!("request", verb = req.verb(), key = %key);
    async {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        let resp = execute_inner(client, req).await;
        let kind = match req {
            KubeRequest::List { kind, .. } => kind.clone(),
            other => other
                .key()
                .map(|k| k.kind)
                .unwrap_or_else(|| Kind::new("", "")),
        };
        let outcome = match resp.error() {
            Some(e) => {
                FAILED.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(reason = ?e.reason, message = %e.message, "request failed");
                format!("{:?}", e.reason)
            }
            None => {
                tracing::debug!("request succeeded");
                "ok".to_string()
            }
        };
        telemetry::record_request(kind.group(), kind.kind(), req.verb(), &outcome);
        resp
    }
    .instrument(span)
    .await
}

async fn execute_inner(client: &Client, req: &KubeRequest) -> KubeResponse {
    match req {
        KubeRequest::Get(key) => KubeResponse::Get(get(client, key).await),
        KubeRequest::List {
            kind,
            namespace,
            label_selector,
        } => {
            let api = dynamic_api(client, kind, namespace);
            let selector = label_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut lp = ListParams::default();
            if !selector.is_empty() {
                lp = lp.labels(&selector);
            }
            let result = match api.list(&lp).await {
                Ok(list) => list
                    .items
                    .into_iter()
                    .map(|o| from_kube(kind, o))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|mut items| {
                        items.sort_by(|a, b| {
                            (a.namespace(), a.name()).cmp(&(b.namespace(), b.name()))
                        });
                        items
                    }),
                Err(e) => Err(ApiError::from(&e)),
            };
            KubeResponse::List(result)
        }
        KubeRequest::Create(obj) => KubeResponse::Create(create(client, obj).await),
        KubeRequest::Delete { key, preconditions } => {
            KubeResponse::Delete(delete(client, key, preconditions.clone()).await)
        }
        KubeRequest::Update(obj) => KubeResponse::Update(replace(client, obj, false).await),
        KubeRequest::UpdateStatus(obj) => {
            KubeResponse::UpdateStatus(replace(client, obj, true).await)
        }
        KubeRequest::GetThenUpdate { obj, owner } => {
            KubeResponse::GetThenUpdate(get_then_update(client, obj, owner, false).await)
        }
        KubeRequest::GetThenUpdateStatus { obj, owner } => {
            KubeResponse::GetThenUpdateStatus(get_then_update(client, obj, owner, true).await)
        }
        KubeRequest::GetThenDelete { key, owner } => {
            KubeResponse::GetThenDelete(get_then_delete(client, key, owner).await)
        }
    }
}

async fn get(client: &Client, key: &ObjectRef) -> Result<DynamicObject, ApiError> {
    if key.name.is_empty() {
        return Err(ApiError::new(
            ErrorReason::BadRequest,
            format!("a Get of a {:?} needs a name", key.kind),
        ));
    }
    let api = dynamic_api(client, &key.kind, &key.namespace);
    match api.get(&key.name).await {
        Ok(o) => from_kube(&key.kind, o),
        Err(e) => Err(ApiError::from(&e)),
    }
}

async fn create(client: &Client, obj: &DynamicObject) -> Result<DynamicObject, ApiError> {
    let api = dynamic_api(client, obj.kind(), obj.namespace());
    let body = to_kube(obj)?;
    match api.create(&PostParams::default(), &body).await {
        Ok(o) => from_kube(obj.kind(), o),
        Err(e) => Err(ApiError::from(&e)),
    }
}

async fn delete(
    client: &Client,
    key: &ObjectRef,
    preconditions: Option<Preconditions>,
) -> Result<(), ApiError> {
    if key.name.is_empty() {
        // An empty name would address the collection (a delete-collection): refuse.
        return Err(ApiError::new(
            ErrorReason::BadRequest,
            format!("a Delete of a {:?} needs a name", key.kind),
        ));
    }
    let api = dynamic_api(client, &key.kind, &key.namespace);
    let dp = DeleteParams {
        preconditions: preconditions.map(|p| kube::api::Preconditions {
            uid: p.uid,
            resource_version: p.resource_version,
        }),
        ..DeleteParams::default()
    };
    // 200 (the object, possibly only marked for deletion) and 202 (a Status) are both success.
    match api.delete(&key.name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) => Err(ApiError::from(&e)),
    }
}

async fn replace(
    client: &Client,
    obj: &DynamicObject,
    status: bool,
) -> Result<DynamicObject, ApiError> {
    let name = name_of(obj)?;
    let api = dynamic_api(client, obj.kind(), obj.namespace());
    let body = to_kube(obj)?;
    let pp = PostParams::default();
    let result = if status {
        api.replace_status(name, &pp, &body).await
    } else {
        api.replace(name, &pp, &body).await
    };
    match result {
        Ok(o) => from_kube(obj.kind(), o),
        Err(e) => Err(ApiError::from(&e)),
    }
}

fn abort(current: &DynamicObject, owner: &Owner) -> ApiError {
    GET_THEN_ABORTS.fetch_add(1, Ordering::Relaxed);
    telemetry::record_get_then_abort();
    ApiError::new(
        ErrorReason::TransactionAbort,
        format!(
            "{} is not controlled by {} {} (uid {})",
            current.object_ref(),
            owner.kind,
            owner.name,
            owner.uid
        ),
    )
}

fn note_conflict(attempt: u32, verb: &str, e: &ApiError) {
    if attempt < GET_THEN_ATTEMPTS {
        GET_THEN_RETRIES.fetch_add(1, Ordering::Relaxed);
        telemetry::record_get_then_retry();
        tracing::info!(attempt, verb, message = %e.message, "conflict; re-reading and retrying");
    } else {
        GET_THEN_EXHAUSTED.fetch_add(1, Ordering::Relaxed);
        telemetry::record_get_then_exhausted();
        tracing::warn!(attempt, verb, message = %e.message, "conflict; giving up");
    }
}

async fn get_then_update(
    client: &Client,
    obj: &DynamicObject,
    owner: &Owner,
    status: bool,
) -> Result<DynamicObject, ApiError> {
    let key = obj.object_ref();
    let verb = if status {
        "GetThenUpdateStatus"
    } else {
        "GetThenUpdate"
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = get(client, &key).await?;
        if !is_controlled_by(&current, owner) {
            return Err(abort(&current, owner));
        }
        let rv = current.metadata().resource_version.clone();
        let write = obj.modify(|p| p.metadata.resource_version = rv);
        match replace(client, &write, status).await {
            Err(e) if e.reason == ErrorReason::Conflict => {
                note_conflict(attempt, verb, &e);
                if attempt >= GET_THEN_ATTEMPTS {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

async fn get_then_delete(client: &Client, key: &ObjectRef, owner: &Owner) -> Result<(), ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = get(client, key).await?;
        if !is_controlled_by(&current, owner) {
            return Err(abort(&current, owner));
        }
        let preconditions = Preconditions {
            uid: current.uid().map(str::to_string),
            resource_version: current.resource_version().map(str::to_string),
        };
        match delete(client, key, Some(preconditions)).await {
            Err(e) if e.reason == ErrorReason::Conflict => {
                note_conflict(attempt, "GetThenDelete", &e);
                if attempt >= GET_THEN_ATTEMPTS {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}
