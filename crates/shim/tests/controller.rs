//! The shim's controller on the real control plane (`ControlPlane::shared()`, with the real
//! garbage collector and StatefulSet controller): the demo reconciler converges, its children
//! are owned and garbage-collected, graceful shutdown works, invalid and runaway reconciles
//! are stopped, external requests are served, and crash injection at every write point of the
//! demo is followed by convergence of a fresh controller.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anvil_demo::{DemoApp, DemoAppSpec, DemoController, current_state_matches};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::{KubeRequest, KubeResponse, NoExternal, Reconciler, Request, Response};
use anvil_shim::{
    CancellationToken, ExternalShim, FnShim, NoExternalShim, Outcome, ShimConfig, ShimError,
    execute, reconcile_once, run,
};
use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

const TIMEOUT: Duration = Duration::from_secs(60);
/// See the garbage-collection step of `demo_converges_is_garbage_collected_and_shuts_down`.
const GC_TIMEOUT: Duration = Duration::from_secs(120);

fn cp() -> &'static ControlPlane {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    assert!(
        cp.has_controller_manager(),
        "kube-controller-manager is required"
    );
    cp
}

/// Logs of the shim when `RUST_LOG` is set (e.g. `RUST_LOG=anvil_shim=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn setup(prefix: &str) -> (kube::Client, String) {
    init_tracing();
    let cp = cp();
    cp.apply_crd(anvil_demo::crd()).await.expect("demo CRD");
    let client = cp.client().await.expect("client");
    let ns = cp.fresh_namespace(prefix).await.expect("namespace");
    (client, ns)
}

fn config(ns: &str) -> ShimConfig {
    ShimConfig::new("anvil-demo-test")
        .with_namespace(ns)
        .owns::<ConfigMap>()
        .owns::<StatefulSet>()
        .with_backoff(Duration::from_millis(200), Duration::from_secs(2))
}

async fn create_app(client: &kube::Client, ns: &str, name: &str, message: &str) -> DemoApp {
    let mut app = DemoApp::new(
        name,
        DemoAppSpec {
            replicas: 2,
            image: "registry.example/demo:1".into(),
            message: message.into(),
        },
    );
    app.metadata.namespace = Some(ns.into());
    Api::<DemoApp>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &app)
        .await
        .expect("DemoApp created")
}

/// The objects the demo cares about in `ns`, read through `execute(List)`.
async fn view(client: &kube::Client, ns: &str) -> BTreeMap<ObjectRef, DynamicObject> {
    let mut out = BTreeMap::new();
    for kind in [
        Kind::of::<ConfigMap>(),
        Kind::of::<StatefulSet>(),
        Kind::of::<DemoApp>(),
    ] {
        let req = KubeRequest::List {
            kind,
            namespace: ns.into(),
            label_selector: BTreeMap::new(),
        };
        match execute(client, &req).await {
            KubeResponse::List(Ok(items)) => {
                out.extend(items.into_iter().map(|o| (o.object_ref(), o)));
            }
            other => panic!("list failed: {other:?}"),
        }
    }
    out
}

async fn matches(client: &kube::Client, cr: &DemoApp) -> bool {
    let ns = cr.metadata.namespace.as_deref().unwrap();
    current_state_matches(cr, &view(client, ns).await)
}

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(TIMEOUT, what, check).await
}

async fn eventually_within<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            cp().logs()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

type Running = tokio::task::JoinHandle<Result<(), ShimError>>;

fn start(client: &kube::Client, config: ShimConfig) -> Running {
    tokio::spawn(run::<DemoController>(
        client.clone(),
        config,
        NoExternalShim,
    ))
}

async fn stop(token: &CancellationToken, running: Running) {
    token.cancel();
    let result = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("graceful shutdown within 20 s")
        .expect("the controller task did not panic");
    assert!(result.is_ok(), "clean shutdown: {result:?}");
}

async fn children_owned_by(client: &kube::Client, cr: &DemoApp) {
    let ns = cr.metadata.namespace.as_deref().unwrap();
    let owner = Owner::of_reference(&anvil_objects::controller_owner_ref(cr).unwrap());
    let v = view(client, ns).await;
    let name = cr.metadata.name.as_deref().unwrap();
    for key in [
        ObjectRef::new(Kind::of::<ConfigMap>(), ns, format!("{name}-config")),
        ObjectRef::new(Kind::of::<StatefulSet>(), ns, name),
    ] {
        let obj = v.get(&key).unwrap_or_else(|| panic!("{key} exists"));
        assert!(
            is_controlled_by(obj, &owner),
            "{key} is controlled by the CR: {obj:?}"
        );
    }
}

#[tokio::test]
async fn demo_converges_is_garbage_collected_and_shuts_down() {
    let (client, ns) = setup("ctl-demo").await;
    let token = CancellationToken::new();
    let running = start(&client, config(&ns).with_shutdown(token.clone()));

    let began = Instant::now();
    let cr = create_app(&client, &ns, "app", "hello").await;
    eventually("the demo to converge", || matches(&client, &cr)).await;
    eprintln!("converged after {:?}", began.elapsed());
    children_owned_by(&client, &cr).await;

    // A spec change (triggered by the CR watch) converges too.
    let apps: Api<DemoApp> = Api::namespaced(client.clone(), &ns);
    let patched = apps
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"message": "bye", "replicas": 1}})),
        )
        .await
        .unwrap();
    eventually("the demo to follow the spec change", || {
        matches(&client, &patched)
    })
    .await;

    // A child deleted by someone else is recreated (triggered by the owned-kind watch).
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .delete("app-config", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the ConfigMap to be recreated", || {
        matches(&client, &patched)
    })
    .await;

    eprintln!(
        "followed the spec change and recreated the ConfigMap after {:?}",
        began.elapsed()
    );
    // Deleting the CR: the real garbage collector removes the children. The garbage collector
    // of kube-controller-manager discovers new CRDs every 30 s and only then watches their
    // objects, so this can take ~30-45 s on a fresh control plane.
    apps.delete("app", &DeleteParams::default()).await.unwrap();
    eventually_within(
        GC_TIMEOUT,
        "the children to be garbage-collected",
        || async {
            let v = view(&client, &ns).await;
            !v.keys().any(|k| {
                k.name == "app" || k.name == "app-config" || k.kind == Kind::of::<DemoApp>()
            })
        },
    )
    .await;
    eprintln!("garbage-collected after {:?}", began.elapsed());

    stop(&token, running).await;
}

/// Crash injection at every write point of the demo's first reconcile: for N = 1, 2, ... a
/// controller that crashes after its N-th write is started on a fresh CR; after the crash, a
/// fresh controller (without crash injection) must converge. The sweep ends at the first N
/// for which the crashing controller converges without ever crashing.
#[tokio::test]
async fn crash_injection_sweep_over_every_write_point() {
    let (client, ns) = setup("ctl-crash").await;
    let mut crashed_at = Vec::new();
    for n in 1..=10usize {
        let name = format!("crash-{n}");
        let cr = create_app(&client, &ns, &name, "hello").await;
        let token = CancellationToken::new();
        let mut running = start(
            &client,
            config(&ns)
                .with_crash_after_writes(Some(n))
                .with_shutdown(token.clone()),
        );
        // Either the controller crashes, or it converges without crashing.
        let deadline = Instant::now() + TIMEOUT;
        let crashed = loop {
            if running.is_finished() {
                let result = (&mut running).await.unwrap();
                match result {
                    Err(ShimError::Crashed { object, writes }) => {
                        assert_eq!(writes, n);
                        assert_eq!(object.name, name);
                        break true;
                    }
                    other => panic!("expected a crash, got {other:?}"),
                }
            }
            if matches(&client, &cr).await {
                // Converged; give a crash that is about to happen a moment to show up.
                tokio::time::sleep(Duration::from_millis(500)).await;
                if !running.is_finished() {
                    break false;
                }
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "N = {n}: neither crash nor convergence"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if !crashed {
            stop(&token, running).await;
            eprintln!(
                "N = {n}: converged without crashing; crashes happened at N = {crashed_at:?}"
            );
            assert!(
                !crashed_at.is_empty(),
                "at least one write point was tested"
            );
            return;
        }
        crashed_at.push(n);
        // The crash left a partial state (or the full one if the last write was the crash
        // point); a fresh controller converges from it.
        let token = CancellationToken::new();
        let fresh = start(&client, config(&ns).with_shutdown(token.clone()));
        eventually(&format!("convergence after the crash at write {n}"), || {
            matches(&client, &cr)
        })
        .await;
        children_owned_by(&client, &cr).await;
        stop(&token, fresh).await;
    }
    panic!("the demo still crashed with N = 10: {crashed_at:?}");
}

/// The demo with a stricter validation, to reach the invalid path (the CRD's CEL rules keep
/// the API server from storing objects the demo's own validation rejects).
struct StrictDemo;

impl Reconciler for StrictDemo {
    type R = DemoApp;
    type T = <DemoController as Reconciler>::T;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn reconcile_init_state() -> Self::T {
        DemoController::reconcile_init_state()
    }
    fn reconcile_core(
        cr: &DemoApp,
        resp: Option<Response<NoExternal>>,
        state: Self::T,
    ) -> (Self::T, Option<Request<NoExternal>>) {
        DemoController::reconcile_core(cr, resp, state)
    }
    fn reconcile_done(state: &Self::T) -> bool {
        DemoController::reconcile_done(state)
    }
    fn reconcile_error(state: &Self::T) -> bool {
        DemoController::reconcile_error(state)
    }
    fn validate(cr: &DemoApp) -> Result<(), String> {
        if cr.spec.message.contains("forbidden") {
            Err(format!("message {:?} is not allowed", cr.spec.message))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn invalid_resource_gets_an_event_and_no_reconcile() {
    let (client, ns) = setup("ctl-invalid").await;
    create_app(&client, &ns, "bad", "forbidden words").await;
    let cfg = ShimConfig::new("anvil-strict-test").with_namespace(&ns);
    let outcome = reconcile_once::<StrictDemo>(&client, &cfg, &NoExternalShim, &ns, "bad")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Invalid("message \"forbidden words\" is not allowed".into())
    );
    // No child was created.
    let v = view(&client, &ns).await;
    assert!(
        !v.keys()
            .any(|k| k.name.starts_with("bad") && k.kind != Kind::of::<DemoApp>()),
        "{v:?}"
    );
    // A Warning event names the problem.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    eventually("the InvalidSpec event", || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("InvalidSpec")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("bad")
                    && e.note.as_deref().is_some_and(|n| n.contains("not allowed"))
            })
    })
    .await;
}

#[tokio::test]
async fn reconcile_once_not_found_done_and_idempotent() {
    let (client, ns) = setup("ctl-once").await;
    let cfg = ShimConfig::new("anvil-once-test").with_namespace(&ns);
    let missing = reconcile_once::<DemoController>(&client, &cfg, &NoExternalShim, &ns, "nope")
        .await
        .unwrap();
    assert_eq!(missing, Outcome::NotFound);

    let cr = create_app(&client, &ns, "once", "hi").await;
    let first = reconcile_once::<DemoController>(&client, &cfg, &NoExternalShim, &ns, "once")
        .await
        .unwrap();
    let Outcome::Done { writes, .. } = first else {
        panic!("{first:?}")
    };
    assert!(
        writes >= 2,
        "created the ConfigMap and the StatefulSet: {first:?}"
    );
    // The StatefulSet controller may change the StatefulSet's status meanwhile; a few more
    // reconciles reach the fixed point where nothing is written.
    let mut last = None;
    for _ in 0..20 {
        let o = reconcile_once::<DemoController>(&client, &cfg, &NoExternalShim, &ns, "once")
            .await
            .unwrap();
        if matches!(o, Outcome::Done { writes: 0, .. }) && matches(&client, &cr).await {
            return;
        }
        last = Some(o);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no write-free reconcile: {last:?}");
}

/// A reconciler that never finishes: every step asks for nothing and stays busy.
struct Runaway;

impl Reconciler for Runaway {
    type R = DemoApp;
    type T = u64;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn reconcile_init_state() -> u64 {
        0
    }
    fn reconcile_core(
        _: &DemoApp,
        _: Option<Response<NoExternal>>,
        n: u64,
    ) -> (u64, Option<Request<NoExternal>>) {
        (n + 1, None)
    }
    fn reconcile_done(_: &u64) -> bool {
        false
    }
    fn reconcile_error(_: &u64) -> bool {
        false
    }
}

#[tokio::test]
async fn runaway_reconciler_is_stopped_by_the_step_bound() {
    let (client, ns) = setup("ctl-runaway").await;
    create_app(&client, &ns, "loop", "hi").await;
    let cfg = ShimConfig::new("anvil-runaway-test")
        .with_namespace(&ns)
        .with_max_steps(50);
    let err = reconcile_once::<Runaway>(&client, &cfg, &NoExternalShim, &ns, "loop")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ShimError::TooManySteps { steps: 50, .. }),
        "{err}"
    );
}

/// A reconciler with an external system: it asks for the length of the CR's message and
/// finishes when it has it.
struct Measure;

impl Reconciler for Measure {
    type R = DemoApp;
    type T = Option<usize>;
    type ExternalRequest = String;
    type ExternalResponse = usize;
    fn reconcile_init_state() -> Option<usize> {
        None
    }
    fn reconcile_core(
        cr: &DemoApp,
        resp: Option<Response<usize>>,
        _: Option<usize>,
    ) -> (Option<usize>, Option<Request<String>>) {
        match resp {
            Some(Response::External(n)) => (Some(n), None),
            _ => (None, Some(Request::External(cr.spec.message.clone()))),
        }
    }
    fn reconcile_done(s: &Option<usize>) -> bool {
        s.is_some()
    }
    fn reconcile_error(_: &Option<usize>) -> bool {
        false
    }
}

#[tokio::test]
async fn external_requests_go_through_the_external_shim() {
    let (client, ns) = setup("ctl-external").await;
    create_app(&client, &ns, "ext", "twelve chars").await;
    let cfg = ShimConfig::new("anvil-external-test").with_namespace(&ns);
    let shim = FnShim(|q: String| async move { q.len() });
    let shim: &dyn ExternalShim<String, usize> = &shim;
    let outcome = reconcile_once::<Measure>(&client, &cfg, shim, &ns, "ext")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Done {
            steps: 2,
            writes: 0
        }
    );
}

/// Counts reconciles of [`Flaky`] (test instrumentation only; a real `reconcile_core` has no
/// global state).
static FLAKY_RECONCILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A reconciler that fails until a ConfigMap named `gate` exists in the CR's namespace.
struct Flaky;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FlakyState {
    Init,
    AwaitGate,
    Done,
    Error,
}

impl Reconciler for Flaky {
    type R = DemoApp;
    type T = FlakyState;
    type ExternalRequest = NoExternal;
    type ExternalResponse = NoExternal;
    fn reconcile_init_state() -> FlakyState {
        FlakyState::Init
    }
    fn reconcile_core(
        cr: &DemoApp,
        resp: Option<Response<NoExternal>>,
        s: FlakyState,
    ) -> (FlakyState, Option<Request<NoExternal>>) {
        match (s, resp) {
            (FlakyState::Init, _) => {
                FLAKY_RECONCILES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let key = ObjectRef::new(
                    Kind::of::<ConfigMap>(),
                    cr.metadata.namespace.clone().unwrap_or_default(),
                    "gate",
                );
                (
                    FlakyState::AwaitGate,
                    Some(Request::Kube(KubeRequest::Get(key))),
                )
            }
            (FlakyState::AwaitGate, Some(Response::Kube(KubeResponse::Get(Ok(_))))) => {
                (FlakyState::Done, None)
            }
            _ => (FlakyState::Error, None),
        }
    }
    fn reconcile_done(s: &FlakyState) -> bool {
        *s == FlakyState::Done
    }
    fn reconcile_error(s: &FlakyState) -> bool {
        *s == FlakyState::Error
    }
}

#[tokio::test]
async fn errors_are_retried_with_backoff_and_success_waits_for_the_requeue_period() {
    use std::sync::atomic::Ordering::SeqCst;
    let (client, ns) = setup("ctl-backoff").await;
    create_app(&client, &ns, "flaky", "hi").await;
    let token = CancellationToken::new();
    let cfg = ShimConfig::new("anvil-flaky-test")
        .with_namespace(&ns)
        .with_backoff(Duration::from_millis(100), Duration::from_millis(800))
        .with_shutdown(token.clone());
    let running = tokio::spawn(run::<Flaky>(client.clone(), cfg, NoExternalShim));

    // Failing reconciles are retried, with backoff: 100, 200, 400, 800, 800... ms.
    eventually("three failed reconciles", || async {
        FLAKY_RECONCILES.load(SeqCst) >= 3
    })
    .await;
    let at = FLAKY_RECONCILES.load(SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let retries = FLAKY_RECONCILES.load(SeqCst) - at;
    assert!(
        (1..=6).contains(&retries),
        "about 2 s / 800 ms retries with backoff, not a busy loop: {retries}"
    );

    // Once the gate exists, the next retry succeeds, and then the controller waits for the
    // requeue period (60 s) or a change.
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("gate".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = FLAKY_RECONCILES.load(SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        FLAKY_RECONCILES.load(SeqCst),
        settled,
        "no reconcile after success until the requeue period"
    );
    stop(&token, running).await;
}

const SIGNAL_CHILD_KUBECONFIG: &str = "ANVIL_SHIM_SIGNAL_CHILD_KUBECONFIG";
const SIGNAL_CHILD_NAMESPACE: &str = "ANVIL_SHIM_SIGNAL_CHILD_NAMESPACE";

/// The child half of `sigterm_shuts_the_controller_down_gracefully`: a no-op unless started
/// by that test (with the environment variables set), then a controller with signal handling.
#[tokio::test]
async fn signal_child() {
    let (Ok(kubeconfig), Ok(ns)) = (
        std::env::var(SIGNAL_CHILD_KUBECONFIG),
        std::env::var(SIGNAL_CHILD_NAMESPACE),
    ) else {
        return;
    };
    init_tracing();
    let cluster = anvil_shim::connect(Some(std::path::Path::new(&kubeconfig)))
        .await
        .unwrap();
    let cfg = config(&ns).with_signal_handling(true);
    let result = run::<DemoController>(cluster.client, cfg, NoExternalShim).await;
    println!("CHILD-RESULT {result:?}");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn sigterm_shuts_the_controller_down_gracefully() {
    let (client, ns) = setup("ctl-signal").await;
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "signal_child", "--nocapture", "--test-threads=1"])
        .env(SIGNAL_CHILD_KUBECONFIG, cp().kubeconfig_path())
        .env(SIGNAL_CHILD_NAMESPACE, &ns)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the child's controller has made the demo converge, it is running (and its signal
    // handlers are installed).
    let cr = create_app(&client, &ns, "sig", "hi").await;
    eventually("the child controller to converge", || matches(&client, &cr)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not stop within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD-RESULT Ok(())"),
        "child exited with {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
