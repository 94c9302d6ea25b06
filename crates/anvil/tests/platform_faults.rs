//! Faults of the platform during a run with many custom resources, on a real (private)
//! control plane: `anvil run demo` runs as a child process while
//!
//! 1. kube-apiserver is killed (SIGKILL) and restarted (same port, etcd and certificates),
//! 2. etcd is killed and restarted (same data directory),
//! 3. kube-apiserver is stopped (SIGSTOP) for longer than the controller's client timeout
//!    (`--request-timeout-seconds`), then continued (SIGCONT): requests hang instead of
//!    failing.
//!
//! Each fault hits right after a burst of changes (new `DemoApp`s, new messages), so that
//! reconciles are cut in the middle. Each time, the controller must keep running, say so in
//! its log and on `/readyz` (503 during the outage, 200 after), and once the platform is back
//! every `DemoApp` must converge with its children existing exactly once, controlled by it,
//! with the right content, and no other object in the namespace.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anvil_demo::{DemoApp, DemoAppSpec, current_state_matches};
use anvil_objects::Kind;
use anvil_testenv::{Component, ControlPlane};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;

/// `DemoApp`s before the first fault; each fault phase adds [`ADDED_PER_PHASE`] more.
const INITIAL: usize = 24;
const ADDED_PER_PHASE: usize = 4;
/// The controller's client-side request timeout (`--request-timeout-seconds`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the API server stays stopped: longer than the client timeout.
const PAUSE: Duration = Duration::from_secs(10);
/// Deadline for convergence after the platform is back (backoffs of failed reconciles
/// included).
const CONVERGE: Duration = Duration::from_secs(120);
/// Deadline for `/readyz` to report an outage, or its end.
const READINESS: Duration = Duration::from_secs(45);

fn app(name: &str, ns: &str, message: &str) -> DemoApp {
    let mut app = DemoApp::new(
        name,
        DemoAppSpec {
            replicas: 1,
            image: "nginx:1".into(),
            message: message.into(),
        },
    );
    app.metadata.namespace = Some(ns.to_string());
    app
}

/// The test's record of what every `DemoApp` should say.
struct Expected {
    ns: String,
    messages: BTreeMap<String, String>,
}

impl Expected {
    /// Creates `count` more `DemoApp`s (numbered on) with `message`.
    async fn create(&mut self, client: &kube::Client, count: usize, message: &str) {
        let apps = Api::<DemoApp>::namespaced(client.clone(), &self.ns);
        let first = self.messages.len();
        for i in first..first + count {
            let name = format!("app-{i:03}");
            apps.create(&PostParams::default(), &app(&name, &self.ns, message))
                .await
                .unwrap_or_else(|e| panic!("creating {name}: {e}"));
            self.messages.insert(name, message.to_string());
        }
    }

    /// Sets the message of every `DemoApp` to `message`.
    async fn set_message(&mut self, client: &kube::Client, message: &str) {
        let apps = Api::<DemoApp>::namespaced(client.clone(), &self.ns);
        for (name, m) in self.messages.iter_mut() {
            apps.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "message": message } })),
            )
            .await
            .unwrap_or_else(|e| panic!("patching {name}: {e}"));
            *m = message.to_string();
        }
    }

    /// `Ok` when every `DemoApp` exists with the expected message and matches the cluster
    /// (`current_state_matches`), its ConfigMap and StatefulSet exist exactly once, each with
    /// one owner reference (the controller reference to that `DemoApp`), and the namespace
    /// holds no other ConfigMap (but the controller manager's `kube-root-ca.crt`),
    /// StatefulSet or `DemoApp`. `Err` says what is off.
    async fn check(&self, client: &kube::Client) -> Result<(), String> {
        let ns = &self.ns;
        let lp = ListParams::default();
        let apps = Api::<DemoApp>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .map_err(|e| format!("listing DemoApps: {e}"))?
            .items;
        let cms = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .map_err(|e| format!("listing ConfigMaps: {e}"))?
            .items;
        let stss = Api::<StatefulSet>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .map_err(|e| format!("listing StatefulSets: {e}"))?
            .items;
        let names = |items: Vec<Option<String>>| -> Vec<String> {
            let mut v: Vec<String> = items.into_iter().map(Option::unwrap_or_default).collect();
            v.sort();
            v
        };
        let app_names = names(apps.iter().map(|a| a.metadata.name.clone()).collect());
        let want_apps: Vec<String> = self.messages.keys().cloned().collect();
        if app_names != want_apps {
            return Err(format!(
                "DemoApps lost or added: {app_names:?}, want {want_apps:?}"
            ));
        }
        let mut want_cms: Vec<String> = want_apps.iter().map(|n| format!("{n}-config")).collect();
        want_cms.push("kube-root-ca.crt".into());
        want_cms.sort();
        let cm_names = names(cms.iter().map(|c| c.metadata.name.clone()).collect());
        if cm_names != want_cms {
            return Err(format!("ConfigMaps: {cm_names:?}, want {want_cms:?}"));
        }
        let sts_names = names(stss.iter().map(|s| s.metadata.name.clone()).collect());
        if sts_names != want_apps {
            return Err(format!("StatefulSets: {sts_names:?}, want {want_apps:?}"));
        }
        let view = snapshot(
            client,
            ns,
            &[
                Kind::of::<DemoApp>(),
                Kind::of::<ConfigMap>(),
                Kind::of::<StatefulSet>(),
            ],
        )
        .await;
        let uid_of: BTreeMap<&str, &str> = apps
            .iter()
            .map(|a| {
                (
                    a.metadata.name.as_deref().unwrap_or_default(),
                    a.metadata.uid.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        let owned_once = |kind: &str, name: &str, owner: &str, refs: Option<&Vec<_>>| {
            let refs: &Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> =
                match refs {
                    Some(r) => r,
                    None => return Err(format!("{kind} {name} has no owner")),
                };
            match refs.as_slice() {
                [r] if r.controller == Some(true) && r.uid == uid_of[owner] => Ok(()),
                other => Err(format!("{kind} {name} has owners {other:?}")),
            }
        };
        for a in &apps {
            let name = a.metadata.name.as_deref().unwrap_or_default();
            if a.spec.message != self.messages[name] {
                return Err(format!("{name} lost its message: {:?}", a.spec.message));
            }
            if !current_state_matches(a, &view) {
                return Err(format!("{name} has not converged"));
            }
        }
        for cm in cms
            .iter()
            .filter(|c| c.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        {
            let name = cm.metadata.name.as_deref().unwrap_or_default();
            let owner = name.trim_end_matches("-config");
            owned_once(
                "ConfigMap",
                name,
                owner,
                cm.metadata.owner_references.as_ref(),
            )?;
        }
        for sts in &stss {
            let name = sts.metadata.name.as_deref().unwrap_or_default();
            owned_once(
                "StatefulSet",
                name,
                name,
                sts.metadata.owner_references.as_ref(),
            )?;
        }
        Ok(())
    }
}

/// `/readyz` of the controller: `Some((code, body))`, `None` while nothing answers.
fn readyz(port: u16) -> Option<(u16, String)> {
    http_get(port, "/readyz")
}

struct Run<'a> {
    cp: &'a ControlPlane,
    client: kube::Client,
    controller: Running,
    port: u16,
    expected: Expected,
}

impl Run<'_> {
    fn context(&mut self) -> String {
        let alive = self.controller.is_running();
        format!(
            "controller running: {alive}\n----- controller log -----\n{}\n{}",
            self.controller.logs(),
            self.cp.logs()
        )
    }

    /// Polls `/readyz` until `want_ready` (200) or not (503 naming the API server).
    async fn wait_readiness(&mut self, want_ready: bool, phase: &str) {
        let deadline = Instant::now() + READINESS;
        loop {
            let answer = readyz(self.port);
            let ok = match (&answer, want_ready) {
                (Some((200, _)), true) => true,
                (Some((503, body)), false) => {
                    assert!(
                        body.contains("the API server is unreachable or failing"),
                        "{phase}: /readyz says {body:?}"
                    );
                    true
                }
                _ => false,
            };
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let ctx = self.context();
                panic!(
                    "{phase}: /readyz did not become {} within {READINESS:?} (last: {answer:?})\n{ctx}",
                    if want_ready { "ready" } else { "not ready" }
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every `DemoApp` converged (see [`Expected::check`]) and the controller and
    /// every control-plane process still run.
    async fn converged(&mut self, phase: &str) {
        let began = Instant::now();
        let deadline = began + CONVERGE;
        loop {
            if !self.controller.is_running() {
                let ctx = self.context();
                panic!("{phase}: the controller exited\n{ctx}");
            }
            let last = self.expected.check(&self.client).await;
            if last.is_ok() {
                eprintln!(
                    "{phase}: {} DemoApps converged {:?} after the platform was back",
                    self.expected.messages.len(),
                    began.elapsed()
                );
                break;
            }
            if Instant::now() > deadline {
                let ctx = self.context();
                panic!("{phase}: not converged after {CONVERGE:?}: {last:?}\n{ctx}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Err(e) = self.cp.check_running() {
            panic!("{phase}: {e}\n{}", self.cp.logs());
        }
        assert_eq!(
            readyz(self.port).map(|(c, _)| c),
            Some(200),
            "{phase}: ready"
        );
    }

    /// A burst of changes the controller is busy with when the fault hits.
    async fn burst(&mut self, message: &str) {
        self.expected
            .create(&self.client, ADDED_PER_PHASE, message)
            .await;
        self.expected.set_message(&self.client, message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_rides_out_apiserver_and_etcd_outages() {
    let began = Instant::now();
    let cp = ControlPlane::start().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    cp.apply_crd(anvil_demo::crd()).await.unwrap();
    let ns = cp.fresh_namespace("faults").await.unwrap();
    let port = free_port();
    let kubeconfig = cp.kubeconfig_path().to_path_buf();
    let log = std::env::temp_dir().join(format!(
        "anvil-platform-faults-{}-{port}.log",
        std::process::id()
    ));
    let controller = Running::spawn(
        anvil(&[
            "run",
            "demo",
            "--namespace",
            &ns,
            "--metrics-port",
            &port.to_string(),
            "--metrics-host",
            "127.0.0.1",
            "--request-timeout-seconds",
            &REQUEST_TIMEOUT.as_secs().to_string(),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG"),
        log,
    );
    let mut run = Run {
        cp: &cp,
        client: client.clone(),
        controller,
        port,
        expected: Expected {
            ns: ns.clone(),
            messages: BTreeMap::new(),
        },
    };
    run.wait_readiness(true, "start").await;
    run.expected.create(&client, INITIAL, "v0").await;
    run.converged("before the faults").await;

    // 1. kube-apiserver killed and restarted on the same port, etcd and certificates.
    run.burst("v1").await;
    cp.kill(Component::ApiServer).unwrap();
    run.wait_readiness(false, "kube-apiserver killed").await;
    cp.restart(Component::ApiServer)
        .await
        .unwrap_or_else(|e| panic!("kube-apiserver restarts: {e}"));
    run.wait_readiness(true, "kube-apiserver restarted").await;
    run.converged("kube-apiserver restarted").await;

    // 2. etcd killed and restarted on the same data directory.
    run.burst("v2").await;
    cp.kill(Component::Etcd).unwrap();
    run.wait_readiness(false, "etcd killed").await;
    cp.restart(Component::Etcd)
        .await
        .unwrap_or_else(|e| panic!("etcd restarts: {e}"));
    run.wait_readiness(true, "etcd restarted").await;
    run.converged("etcd restarted").await;

    // 3. kube-apiserver stopped (SIGSTOP) for longer than the client timeout: connections
    //    hang instead of failing.
    run.burst("v3").await;
    cp.pause(Component::ApiServer).unwrap();
    let paused = Instant::now();
    run.wait_readiness(false, "kube-apiserver stopped").await;
    if let Some(rest) = PAUSE.checked_sub(paused.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert!(paused.elapsed() > REQUEST_TIMEOUT);
    assert!(
        run.controller.is_running(),
        "the controller exited while the API server was stopped\n{}",
        run.controller.logs()
    );
    cp.resume(Component::ApiServer).unwrap();
    cp.wait_ready(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("kube-apiserver continues: {e}"));
    run.wait_readiness(true, "kube-apiserver continued").await;
    run.converged("kube-apiserver continued").await;

    // The outages were reported in the log, each one ended, and nothing panicked.
    let logs = run.controller.logs();
    let starts = logs
        .matches("the API server is unreachable or failing")
        .count();
    let ends = logs.matches("the API server answers again").count();
    assert!(
        starts >= 3 && ends >= 3,
        "{starts} outage starts and {ends} ends logged:\n{logs}"
    );
    assert!(
        logs.contains("no answer from the API server"),
        "the client timeout during SIGSTOP is logged:\n{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    // No child was created twice: a second create of the same name would have failed, so
    // successful creates are at most one per DemoApp (a create whose answer was lost in an
    // outage is not counted as ok).
    let metrics = http_get(port, "/metrics").expect("metrics").1;
    let n = run.expected.messages.len() as f64;
    for (group, kind) in [("", "ConfigMap"), ("apps", "StatefulSet")] {
        let created = sample(
            &metrics,
            "anvil_api_requests_total",
            &[
                ("group", group),
                ("kind", kind),
                ("verb", "Create"),
                ("outcome", "ok"),
            ],
        )
        .unwrap_or(0.0);
        assert!(
            created <= n && created >= 1.0,
            "{created} {kind}s created for {n} DemoApps"
        );
    }
    let failed = sample(
        &metrics,
        "anvil_reconciles_total",
        &[("controller", "demo"), ("outcome", "failed")],
    )
    .unwrap_or(0.0);
    eprintln!(
        "platform faults: {} DemoApps, {failed} reconciles failed during the outages, whole \
         test {:?}; the controller's reports:",
        run.expected.messages.len(),
        began.elapsed()
    );
    for line in logs
        .lines()
        .filter(|l| l.contains("the API server"))
        .take(20)
    {
        eprintln!("  {line}");
    }
    assert!(run.controller.is_running());
}
